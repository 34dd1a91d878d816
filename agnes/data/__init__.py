"""Data distribution: registered tables, connectors, extracts, the orchestrator and the manifest.

Admins register tables (:mod:`agnes.data.registry`); sync jobs (:mod:`agnes.jobs.tables`)
run a connector (:mod:`agnes.data.connectors`) to write the table under the
``extract.duckdb`` contract (:mod:`agnes.data.extracts`), and the orchestrator
(:mod:`agnes.data.orchestrator`) rebuilds the master views. Analysts fetch the parquet files
they are granted with ``agnes pull`` (:mod:`agnes.views.api.data`).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app


def data_dir() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"])


def secrets_env() -> dict[str, str]:
    """Variables connectors may read secrets from: ``state/.env_overlay`` under the process env."""
    from agnes.secrets import secret_environment

    return secret_environment()


def _list_table_items(con):  # type: ignore[no-untyped-def]
    from agnes.access import ResourceItem
    from agnes.models import tables

    return [ResourceItem(t.id, t.name, t.source_name) for t in tables.list_tables(con)]


def _grants_changed(sender: object, **kwargs: object) -> None:
    if str(kwargs.get("resource_type")) == "table":
        from agnes.data import snapshot

        snapshot.bump()


def init_app(app: Flask) -> None:
    """Make tables grantable (items for the access tree); table grants refresh the manifest snapshot."""
    from agnes import signals
    from agnes.access import ResourceType, register_resource_items

    register_resource_items(ResourceType.TABLE, _list_table_items)
    signals.grant_created.connect(_grants_changed)
    signals.grant_revoked.connect(_grants_changed)
