"""A per-process index of what the manifest and downloads need, so they cost no state-store unit.

``agnes pull`` asks for the manifest every session and then one download per changed table;
each state-store unit costs a few milliseconds (attach, query, detach), and the manifest's
latency budget is 5 ms. The index (registry, sync state, table grants) is reloaded in one read
unit when the change marker :data:`agnes.markers.TABLES` changes: a writer replaces it whenever a
table is registered, changed, synced or granted, in any process. An index is also reloaded after
:data:`MAX_AGE` seconds, which bounds any staleness.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass

from flask import current_app

from agnes import markers
from agnes.models import grants, tables
from agnes.models.tables import SyncState, TableEntry
from agnes.state import state_store

# Seconds an index is trusted without a marker change.
MAX_AGE = 5.0


@dataclass(frozen=True)
class TableIndex:
    """Registered tables, their sync state and which groups are granted each (one process's copy)."""

    marker: str
    loaded_at: float
    tables: dict[str, TableEntry]
    states: dict[str, SyncState]
    grants: dict[str, frozenset[str]]  # table id -> group ids granted it
    schemas: dict[str, str]  # table id -> schema_fingerprint() of its columns

    def is_granted(self, group_ids: tuple[str, ...] | list[str], table_id: str) -> bool:
        """True when one of ``group_ids`` is granted ``table_id`` (no admin shortcut here)."""
        return bool(self.grants.get(table_id, frozenset()).intersection(group_ids))


def schema_fingerprint(columns: list[list[str]]) -> str:
    """16 hex characters that change when a table's ``[[name, type], ...]`` change ("" when unknown)."""
    if not columns:
        return ""
    return hashlib.sha256(json.dumps(columns).encode()).hexdigest()[:16]


_lock = threading.Lock()


def current() -> TableIndex:
    """The index for this process, reloaded when stale (one read unit)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    marker = markers.TABLES.current()
    cached: TableIndex | None = app.extensions.get("agnes_table_index")
    if cached is not None and cached.marker == marker and time.monotonic() - cached.loaded_at < MAX_AGE:
        return cached
    with _lock:
        cached = app.extensions.get("agnes_table_index")
        if cached is not None and cached.marker == marker and time.monotonic() - cached.loaded_at < MAX_AGE:
            return cached
        loaded_at = time.monotonic()
        with state_store().read() as con:
            entries = {t.id: t for t in tables.list_tables(con)}
            states = tables.list_sync_states(con)
            granted = grants.groups_by_resource(con, "table")
        schemas = {table_id: schema_fingerprint(state.columns) for table_id, state in states.items()}
        index = TableIndex(marker, loaded_at, entries, states, granted, schemas)
        app.extensions["agnes_table_index"] = index
        return index
