"""Data distribution: registered tables, connectors, extracts, the orchestrator and the manifest.

Admins register tables (:mod:`agnes.data.registration`); sync jobs (:mod:`agnes.jobs.tables`)
run a connector (:mod:`agnes.data.connectors`) to write the table under the
``extract.duckdb`` contract (:mod:`agnes.data.extracts`), and the orchestrator
(:mod:`agnes.data.orchestrator`) rebuilds the master views. Analysts fetch the parquet files
they are granted with ``agnes pull`` (:mod:`agnes.data.distribution`, answered from the
per-process :mod:`agnes.data.table_index`). Tables too big to pull stay at their source
(:mod:`agnes.data.sources`): :mod:`agnes.data.remote` checks analysts' SQL with sqlglot and runs
it there, samples them, estimates and streams snapshots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from duckdb import DuckDBPyConnection
from flask import Flask, current_app

from agnes import markers, signals
from agnes.access import ItemFacts, Principal, ResourceItem, ResourceType, can_access, register_resource_type
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
    return [ResourceItem(table_id, name, source) for table_id, name, source in tables.list_table_labels(con)]


def is_table_granted(principal: Principal, table_id: str) -> bool:
    """The table check of :mod:`agnes.access`: a grant to one of the caller's groups (from the
    per-process table index, so a download costs no state-store unit)."""
    return table_index.current().is_granted(principal.group_ids, table_id)


def get_table_item(con: DuckDBPyConnection, table_id: str) -> ResourceItem | None:
    entry = tables.get_table(con, table_id)
    return ResourceItem(entry.id, entry.name, entry.source_name) if entry else None


def table_facts(principal: Principal, table_id: str) -> ItemFacts:
    """Whether the table exists, has been synced, and is in the user's ``agnes pull`` manifest."""
    index = table_index.current()
    entry = index.tables.get(table_id)
    if entry is None:
        return ItemFacts(exists=False, label=table_id)
    state = index.states.get(table_id)
    synced = state is not None and state.last_success is not None
    served = principal.user.active and synced and can_access(principal, ResourceType.TABLE, table_id)
    notes = []
    if not synced:
        notes.append(f"{entry.name} has not been synced yet: there is nothing to download.")
    if entry.query_mode == "remote":
        notes.append(f"{entry.name} is a remote table: it is queried at its source, not downloaded.")
    notes.append(
        f"{entry.name} is in their agnes pull manifest."
        if served
        else f"{entry.name} is not in their agnes pull manifest."
    )
    return ItemFacts(exists=True, label=entry.name, served=served, notes=tuple(notes))


def _grants_changed(sender: object, **kwargs: Any) -> None:
    if str(kwargs.get("resource_type")) == ResourceType.TABLE.value:
        markers.TABLES.bump()


def init_app(app: Flask) -> None:
    """Make tables grantable (items and access check); table grants refresh the table index."""
    register_resource_type(
        ResourceType.TABLE,
        list_items=list_table_items,
        is_granted=is_table_granted,
        facts=table_facts,
        get_item=get_table_item,
    )
    signals.grant_created.connect(_grants_changed, weak=False)
    signals.grant_revoked.connect(_grants_changed, weak=False)
