"""``google_sync_runs``: each Google Workspace group sync (the whole directory, or one user's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id

# Runs kept (older ones are deleted as new ones arrive).
KEEP = 500


@dataclass(frozen=True)
class SyncRun(Record):
    id: str
    scope: str  # all | user
    user_id: str | None
    started_at: datetime
    finished_at: datetime
    status: str  # ok | failed | braked
    added: int
    removed: int
    groups: int
    message: str | None


def record_run(
    con: DuckDBPyConnection,
    *,
    scope: str,
    user_id: str | None,
    started_at: datetime,
    finished_at: datetime,
    status: str,
    added: int = 0,
    removed: int = 0,
    groups: int = 0,
    message: str | None = None,
) -> SyncRun:
    run = SyncRun(new_id(), scope, user_id, started_at, finished_at, status, added, removed, groups, message)
    con.execute(
        "INSERT INTO google_sync_runs (id, scope, user_id, started_at, finished_at, status, added, removed, groups,"
        " message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run.id, scope, user_id, started_at, finished_at, status, added, removed, groups, message],
    )
    con.execute(
        "DELETE FROM google_sync_runs WHERE id NOT IN"
        " (SELECT id FROM google_sync_runs ORDER BY started_at DESC LIMIT ?)",
        [KEEP],
    )
    return run


def latest_runs(con: DuckDBPyConnection, *, scope: str | None = None, limit: int = 5) -> list[SyncRun]:
    """Newest first."""
    sql = (
        "SELECT id, scope, user_id, started_at, finished_at, status, added, removed, groups, message"
        " FROM google_sync_runs"
    )
    params: list[object] = []
    if scope:
        sql += " WHERE scope = ?"
        params.append(scope)
    rows = con.execute(sql + " ORDER BY started_at DESC LIMIT ?", [*params, limit]).fetchall()
    return [SyncRun(*r) for r in rows]
