"""A per-process snapshot of what the manifest and downloads need, so they cost no state-store unit.

``agnes pull`` asks for the manifest every session and then one download per changed table;
each state-store unit costs a few milliseconds (attach, query, detach), and the manifest's
latency budget is 5 ms. The snapshot (registry, sync state, table grants) is reloaded in one
read unit when the *generation* changes: a small file (``analytics/.generation``) replaced
whenever a table is registered, changed, synced or granted, by any process. A stat tells
whether it changed. Because a writer bumps the generation just before its transaction commits,
a snapshot is also reloaded after :data:`MAX_AGE` seconds, which bounds any staleness.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from agnes.models.tables import SyncState, TableEntry

# Seconds a snapshot is trusted without a generation change.
MAX_AGE = 5.0
GENERATION_FILE = ".generation"


@dataclass(frozen=True)
class Snapshot:
    key: tuple[int, int]
    loaded_at: float
    tables: dict[str, TableEntry]
    states: dict[str, SyncState]
    grants: dict[str, frozenset[str]]  # table id -> group ids granted it

    def can_access(self, group_ids: tuple[str, ...], is_admin: bool, table_id: str) -> bool:
        return is_admin or bool(self.grants.get(table_id, frozenset()).intersection(group_ids))


def _generation_path(data_dir: Path) -> Path:
    return Path(data_dir) / "analytics" / GENERATION_FILE


def bump(data_dir: Path | None = None) -> None:
    """Mark the data tables as changed (all processes reload their snapshot).

    Called inside a write unit (a grant revoked), it marks again after the commit, so a
    thread that reloaded from the rows before the commit does not keep them.
    """
    from agnes.models.db import StateStoreError
    from agnes.state import state_store

    path = _generation_path(data_dir or Path(current_app.config["AGNES_DATA_DIR"]))
    _replace(path)
    try:
        state_store().after_commit(lambda: _replace(path))
    except StateStoreError:
        pass


def _replace(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{GENERATION_FILE}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(str(time.time_ns()))
    os.replace(tmp, path)  # a new inode: the key changes even within one clock tick


def _key(data_dir: Path) -> tuple[int, int]:
    try:
        stat = _generation_path(data_dir).stat()
    except FileNotFoundError:
        return (0, 0)
    return (stat.st_ino, stat.st_mtime_ns)


_lock = threading.Lock()


def current() -> Snapshot:
    """The snapshot for this process, reloaded when stale (one read unit)."""
    from agnes.models import tables
    from agnes.state import state_store

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    data_dir = Path(app.config["AGNES_DATA_DIR"])
    key = _key(data_dir)
    cached: Snapshot | None = app.extensions.get("agnes_data_snapshot")
    if cached is not None and cached.key == key and time.monotonic() - cached.loaded_at < MAX_AGE:
        return cached
    with _lock:
        cached = app.extensions.get("agnes_data_snapshot")
        if cached is not None and cached.key == key and time.monotonic() - cached.loaded_at < MAX_AGE:
            return cached
        loaded_at = time.monotonic()
        with state_store().read() as con:
            entries = {t.id: t for t in tables.list_tables(con)}
            states = tables.list_sync_states(con)
            rows = con.execute(
                "SELECT resource_id, list(group_id) FROM resource_grants WHERE resource_type = 'table'"
                " GROUP BY resource_id"
            ).fetchall()
        snapshot = Snapshot(key, loaded_at, entries, states, {r[0]: frozenset(r[1]) for r in rows})
        app.extensions["agnes_data_snapshot"] = snapshot
        return snapshot
