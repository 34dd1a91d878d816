"""Data distribution: registered tables, connectors, extracts, the orchestrator and the manifest.

Admins register tables (:mod:`agnes.data.registration`); sync jobs (:mod:`agnes.jobs.tables`)
run a connector (:mod:`agnes.data.connectors`) to write the table under the
``extract.duckdb`` contract (:mod:`agnes.data.extracts`), and the orchestrator
(:mod:`agnes.data.orchestrator`) rebuilds the master views. Analysts fetch the parquet files
they are granted with ``agnes pull`` (:mod:`agnes.data.distribution`, answered from the
per-process :mod:`agnes.data.table_index`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from duckdb import DuckDBPyConnection
from flask import Flask, current_app

from agnes import markers, signals
from agnes.access import Principal, ResourceItem, ResourceType, register_resource_type
from agnes.data import table_index
from agnes.models import tables
from agnes.secrets import secret_environment


def data_dir() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"])


def secrets_env() -> dict[str, str]:
    """Variables connectors may read secrets from: ``state/.env_overlay`` under the process env."""
    return secret_environment()


def list_table_items(con: DuckDBPyConnection) -> list[ResourceItem]:
    """Grantable tables for the access tree (grouped by source)."""
    return [ResourceItem(t.id, t.name, t.source_name) for t in tables.list_tables(con)]


def is_table_granted(principal: Principal, table_id: str) -> bool:
    """The table check of :mod:`agnes.access`: a grant to one of the caller's groups (from the
    per-process table index, so a download costs no state-store unit)."""
    return table_index.current().is_granted(principal.group_ids, table_id)


def _grants_changed(sender: object, **kwargs: Any) -> None:
    if str(kwargs.get("resource_type")) == ResourceType.TABLE.value:
        markers.TABLES.bump()


def init_app(app: Flask) -> None:
    """Make tables grantable (items and access check); table grants refresh the table index."""
    register_resource_type(ResourceType.TABLE, list_items=list_table_items, is_granted=is_table_granted)
    signals.grant_created.connect(_grants_changed, weak=False)
    signals.grant_revoked.connect(_grants_changed, weak=False)
