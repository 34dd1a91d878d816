"""``table_registry``, ``sync_state``, ``sync_history``, ``view_ownership`` and ``metric_definitions``.

Plain SQL over a state-store cursor. JSON columns (``source_spec``, ``columns``, ``details``)
are stored as text and decoded here, so callers only see Python values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id, utcnow


@dataclass(frozen=True)
class TableEntry(Record):
    """One registered table. ``id`` is its view name and parquet file name."""

    id: str
    name: str
    description: str
    source_type: str
    source_name: str
    source_spec: dict[str, Any]
    query_mode: str
    schedule: str | None
    primary_key: str | None
    owner_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SyncState(Record):
    """Latest sync outcome of one table (``status`` is ``ok`` or ``failed``)."""

    PRIVATE = frozenset({"table_id", "file_mtime_ns", "columns"})

    table_id: str
    status: str
    last_attempt: datetime | None
    last_success: datetime | None
    rows: int | None
    size_bytes: int | None
    hash: str | None
    file_mtime_ns: int | None
    columns: list[list[str]] = field(default_factory=list)
    error: str | None = None
    sha256: str | None = None  # None for files published before SHA-256 was recorded
    warning: str | None = None  # what the last successful sync noticed (a CSV read as 0 rows)


@dataclass(frozen=True)
class SyncRun(Record):
    id: str
    table_id: str
    started_at: datetime
    finished_at: datetime
    status: str
    rows: int | None
    size_bytes: int | None
    duration_ms: float | None
    error: str | None
    triggered_by: str | None
    warning: str | None = None


@dataclass(frozen=True)
class Metric:
    id: str
    name: str
    category: str
    display_name: str
    description: str
    type: str
    unit: str
    grain: str
    table_name: str
    expression: str
    time_column: str
    sql: str
    details: dict[str, Any]
    source: str
    updated_at: datetime


# -- registry ------------------------------------------------------------------------------

_TABLE_COLUMNS = (
    "id, name, description, source_type, source_name, source_spec, query_mode, schedule, primary_key,"
    " owner_id, created_at, updated_at"
)


def _table(row: tuple[Any, ...]) -> TableEntry:
    values = list(row)
    values[5] = json.loads(values[5] or "{}")
    return TableEntry(*values)


def list_tables(con: DuckDBPyConnection, *, source_name: str | None = None) -> list[TableEntry]:
    """All registered tables ordered by id (optionally of one source)."""
    if source_name is not None:
        rows = con.execute(
            f"SELECT {_TABLE_COLUMNS} FROM table_registry WHERE source_name = ? ORDER BY id", [source_name]
        ).fetchall()
    else:
        rows = con.execute(f"SELECT {_TABLE_COLUMNS} FROM table_registry ORDER BY id").fetchall()
    return [_table(r) for r in rows]


def get_table(con: DuckDBPyConnection, table_id: str) -> TableEntry | None:
    row = con.execute(f"SELECT {_TABLE_COLUMNS} FROM table_registry WHERE id = ?", [table_id]).fetchone()
    return _table(row) if row else None


def create_table(
    con: DuckDBPyConnection,
    *,
    table_id: str,
    name: str,
    description: str,
    source_type: str,
    source_name: str,
    source_spec: dict[str, Any],
    query_mode: str,
    schedule: str | None,
    primary_key: str | None,
    owner_id: str | None,
) -> TableEntry:
    """Insert a registry row. Raises ``duckdb.ConstraintException`` when the id exists."""
    now = utcnow()
    con.execute(
        f"INSERT INTO table_registry ({_TABLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            table_id,
            name,
            description,
            source_type,
            source_name,
            json.dumps(source_spec, sort_keys=True),
            query_mode,
            schedule,
            primary_key,
            owner_id,
            now,
            now,
        ],
    )
    entry = get_table(con, table_id)
    assert entry is not None
    return entry


# Columns update_table may change.
UPDATABLE = frozenset({"name", "description", "source_spec", "query_mode", "schedule", "primary_key"})


def update_table(con: DuckDBPyConnection, table_id: str, **changes: Any) -> None:
    """Change registry fields (names from :data:`UPDATABLE`); ``updated_at`` is set to now."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    if "source_spec" in changes:
        changes["source_spec"] = json.dumps(changes["source_spec"], sort_keys=True)
    assignments = ", ".join(f"{name} = ?" for name in changes)
    params = [*changes.values(), utcnow(), table_id]
    sep = ", " if assignments else ""
    con.execute(f"UPDATE table_registry SET {assignments}{sep}updated_at = ? WHERE id = ?", params)


def delete_table(con: DuckDBPyConnection, table_id: str) -> None:
    """Delete a registry row with its sync state and history."""
    con.execute("DELETE FROM sync_state WHERE table_id = ?", [table_id])
    con.execute("DELETE FROM sync_history WHERE table_id = ?", [table_id])
    con.execute("DELETE FROM table_registry WHERE id = ?", [table_id])


# -- sync state and history ------------------------------------------------------------------

_STATE_COLUMNS = (
    "table_id, status, last_attempt, last_success, rows, size_bytes, hash, file_mtime_ns, columns, error, sha256,"
    " warning"
)


def _state(row: tuple[Any, ...]) -> SyncState:
    values = list(row)
    values[8] = json.loads(values[8]) if values[8] else []
    return SyncState(*values)


def get_sync_state(con: DuckDBPyConnection, table_id: str) -> SyncState | None:
    row = con.execute(f"SELECT {_STATE_COLUMNS} FROM sync_state WHERE table_id = ?", [table_id]).fetchone()
    return _state(row) if row else None


def list_sync_states(con: DuckDBPyConnection) -> dict[str, SyncState]:
    rows = con.execute(f"SELECT {_STATE_COLUMNS} FROM sync_state").fetchall()
    return {row[0]: _state(row) for row in rows}


def record_sync(
    con: DuckDBPyConnection,
    table_id: str,
    *,
    status: str,
    started_at: datetime,
    rows: int | None = None,
    size_bytes: int | None = None,
    hash: str | None = None,
    sha256: str | None = None,
    file_mtime_ns: int | None = None,
    columns: list[list[str]] | None = None,
    error: str | None = None,
    triggered_by: str | None = None,
    warning: str | None = None,
) -> SyncRun:
    """Record one sync attempt: a history row, and the table's state.

    ``hash`` and ``sha256`` are the MD5 and SHA-256 hex digests of the published parquet.
    A failure keeps the previous successful figures (the previous extract stays published)
    and only sets ``status``, ``error`` and ``last_attempt``.
    """
    finished = utcnow()
    duration = round((finished - started_at).total_seconds() * 1000, 2)
    run = SyncRun(
        new_id(), table_id, started_at, finished, status, rows, size_bytes, duration, error, triggered_by, warning
    )
    # The previous successful count, kept with the run (the Changes tab lists row-count changes).
    previous = (
        con.execute(
            "SELECT rows FROM sync_state WHERE table_id = ? AND last_success IS NOT NULL", [table_id]
        ).fetchone()
        if status == "ok"
        else None
    )
    con.execute(
        "INSERT INTO sync_history (id, table_id, started_at, finished_at, status, rows, size_bytes, duration_ms,"
        " error, triggered_by, warning, previous_rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.id,
            table_id,
            started_at,
            finished,
            status,
            rows,
            size_bytes,
            duration,
            error,
            triggered_by,
            warning,
            previous[0] if previous else None,
        ],
    )
    if status == "ok":
        con.execute(
            f"INSERT INTO sync_state ({_STATE_COLUMNS}) VALUES (?, 'ok', ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)"
            " ON CONFLICT (table_id) DO UPDATE SET status = 'ok', last_attempt = excluded.last_attempt,"
            " last_success = excluded.last_success, rows = excluded.rows, size_bytes = excluded.size_bytes,"
            " hash = excluded.hash, file_mtime_ns = excluded.file_mtime_ns, columns = excluded.columns,"
            " error = NULL, sha256 = excluded.sha256, warning = excluded.warning",
            [
                table_id,
                started_at,
                finished,
                rows,
                size_bytes,
                hash,
                file_mtime_ns,
                json.dumps(columns or []),
                sha256,
                warning,
            ],
        )
    else:
        con.execute(
            "INSERT INTO sync_state (table_id, status, last_attempt, error) VALUES (?, 'failed', ?, ?)"
            " ON CONFLICT (table_id) DO UPDATE SET status = 'failed', last_attempt = excluded.last_attempt,"
            " error = excluded.error",
            [table_id, started_at, error],
        )
    return run


def list_history(con: DuckDBPyConnection, table_id: str, *, limit: int = 20) -> list[SyncRun]:
    rows = con.execute(
        "SELECT id, table_id, started_at, finished_at, status, rows, size_bytes, duration_ms, error, triggered_by,"
        " warning FROM sync_history WHERE table_id = ? ORDER BY started_at DESC LIMIT ?",
        [table_id, limit],
    ).fetchall()
    return [SyncRun(*r) for r in rows]


# -- view ownership --------------------------------------------------------------------------


def latest_runs(con: DuckDBPyConnection) -> dict[str, SyncRun]:
    """The newest sync history row of every table that has one."""
    rows = con.execute(
        "SELECT id, table_id, started_at, finished_at, status, rows, size_bytes, duration_ms, error, triggered_by,"
        " warning FROM sync_history"
        " QUALIFY row_number() OVER (PARTITION BY table_id ORDER BY started_at DESC, id DESC) = 1"
    ).fetchall()
    return {r[1]: SyncRun(*r) for r in rows}


@dataclass(frozen=True)
class RowCountChange(Record):
    """A successful table sync whose row count differs from the table's previous successful sync."""

    id: str  # the sync_history row
    table_id: str
    table_name: str | None  # None once unregistered
    finished_at: datetime
    rows: int | None
    previous_rows: int | None  # None: the table's first successful sync
    triggered_by: str | None


def list_row_count_changes(
    con: DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    triggered_by: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[RowCountChange]:
    """Successful syncs that changed a table's row count (or were its first), newest first by
    ``(finished_at, id)``; ``before`` is the keyset cursor of the previous page's last row."""
    clauses = ["s.status = 'ok'", "s.rows IS NOT NULL", "s.rows IS DISTINCT FROM s.previous_rows"]
    params: list[Any] = []
    for clause, value in (
        ("s.finished_at >= ?", since),
        ("s.finished_at < ?", until),
        ("s.triggered_by = ?", triggered_by),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    if before is not None:
        clauses.append("(s.finished_at < ? OR (s.finished_at = ? AND s.id < ?))")
        params += [before[0], before[0], before[1]]
    rows = con.execute(
        "SELECT s.id, s.table_id, t.name, s.finished_at, s.rows, s.previous_rows, s.triggered_by FROM ("
        f" SELECT * FROM sync_history s WHERE {' AND '.join(clauses)} ORDER BY s.finished_at DESC, s.id DESC LIMIT ?)"
        " s LEFT JOIN table_registry t ON t.id = s.table_id ORDER BY s.finished_at DESC, s.id DESC",
        [*params, limit],
    ).fetchall()
    return [RowCountChange(*r) for r in rows]


def count_syncs_since(con: DuckDBPyConnection, since: datetime) -> dict[str, int]:
    """Table syncs that started at or after ``since``, by status: ``{"ok": n, "failed": n}``."""
    counts = {"ok": 0, "failed": 0}
    for status, count in con.execute(
        "SELECT status, count(*) FROM sync_history WHERE started_at >= ? GROUP BY status", [since]
    ).fetchall():
        counts[status] = int(count)
    return counts


def view_owners(con: DuckDBPyConnection) -> dict[str, str]:
    """``{view_name: source_name}``."""
    return dict(con.execute("SELECT view_name, source_name FROM view_ownership").fetchall())


def set_view_owner(con: DuckDBPyConnection, view_name: str, source_name: str) -> None:
    con.execute(
        "INSERT INTO view_ownership (view_name, source_name, registered_at) VALUES (?, ?, ?)"
        " ON CONFLICT (view_name) DO UPDATE SET source_name = excluded.source_name,"
        " registered_at = excluded.registered_at",
        [view_name, source_name, utcnow()],
    )


def release_view(con: DuckDBPyConnection, view_name: str) -> None:
    con.execute("DELETE FROM view_ownership WHERE view_name = ?", [view_name])


# -- metrics ---------------------------------------------------------------------------------

_METRIC_COLUMNS = (
    "id, name, category, display_name, description, type, unit, grain, table_name, expression, time_column,"
    " sql, details, source, updated_at"
)


def _metric(row: tuple[Any, ...]) -> Metric:
    values = list(row)
    values[12] = json.loads(values[12] or "{}")
    return Metric(*values)


def upsert_metric(con: DuckDBPyConnection, metric: dict[str, Any]) -> None:
    """Insert or replace one metric; ``metric`` has every column of :class:`Metric` but updated_at."""
    values = [
        metric["id"],
        metric["name"],
        metric["category"],
        metric.get("display_name", ""),
        metric.get("description", ""),
        metric.get("type", ""),
        metric.get("unit", ""),
        metric.get("grain", ""),
        metric.get("table_name", ""),
        metric.get("expression", ""),
        metric.get("time_column", ""),
        metric.get("sql", ""),
        json.dumps(metric.get("details", {}), sort_keys=True, default=str),
        metric.get("source", "yaml"),
        utcnow(),
    ]
    con.execute("DELETE FROM metric_definitions WHERE id = ?", [metric["id"]])
    con.execute(f"INSERT INTO metric_definitions ({_METRIC_COLUMNS}) VALUES ({', '.join('?' * 15)})", values)


def list_metrics(con: DuckDBPyConnection, *, category: str | None = None) -> list[Metric]:
    if category:
        rows = con.execute(
            f"SELECT {_METRIC_COLUMNS} FROM metric_definitions WHERE category = ? ORDER BY id", [category]
        ).fetchall()
    else:
        rows = con.execute(f"SELECT {_METRIC_COLUMNS} FROM metric_definitions ORDER BY id").fetchall()
    return [_metric(r) for r in rows]


def get_metric(con: DuckDBPyConnection, metric_id: str) -> Metric | None:
    row = con.execute(f"SELECT {_METRIC_COLUMNS} FROM metric_definitions WHERE id = ?", [metric_id]).fetchone()
    return _metric(row) if row else None


def delete_metric(con: DuckDBPyConnection, metric_id: str) -> bool:
    found = con.execute("SELECT 1 FROM metric_definitions WHERE id = ?", [metric_id]).fetchone()
    con.execute("DELETE FROM metric_definitions WHERE id = ?", [metric_id])
    return found is not None


def list_table_labels(con: DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """``(id, name, source name)`` of every table by source then id (the access page lists them all)."""
    rows = con.execute("SELECT id, name, source_name FROM table_registry ORDER BY source_name, id").fetchall()
    return [(r[0], r[1], r[2]) for r in rows]
