"""Telemetry tables: uploaded session files, private sessions, the processor's checkpoints,
usage events, per-file summaries and the popularity rollups (migration 0050).

Paths are relative to ``<AGNES_DATA_DIR>/sessions``. Rollups: ``usage_item_daily`` is rebuilt
for the days a batch touched; ``usage_item_window`` (``last_7d``, ``last_30d``) is rebuilt whole
from the events, so its distinct-user counts are true window counts, not sums of days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
from duckdb import DuckDBPyConnection

from agnes.models import Record

# Windows of usage_item_window: name -> days.
WINDOWS = {"last_7d": 7, "last_30d": 30}
# Event item types that belong to a plugin (a plugin row unions their users).
PLUGIN_ITEM_TYPES = ("skill", "agent", "command", "mcp")

EVENT_COLUMNS = (
    "path",
    "user_id",
    "session_id",
    "line_no",
    "event_uuid",
    "occurred_at",
    "event_type",
    "item_type",
    "tool_name",
    "name",
    "item_name",
    "source",
    "parent",
    "parent_name",
    "prefix",
    "is_error",
    "is_sidechain",
    "model",
    "processor_version",
)
EVENT_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("user_id", pa.string()),
        ("session_id", pa.string()),
        ("line_no", pa.int32()),
        ("event_uuid", pa.string()),
        ("occurred_at", pa.timestamp("us")),
        ("event_type", pa.string()),
        ("item_type", pa.string()),
        ("tool_name", pa.string()),
        ("name", pa.string()),
        ("item_name", pa.string()),
        ("source", pa.string()),
        ("parent", pa.string()),
        ("parent_name", pa.string()),
        ("prefix", pa.string()),
        ("is_error", pa.bool_()),
        ("is_sidechain", pa.bool_()),
        ("model", pa.string()),
        ("processor_version", pa.int32()),
    ]
)
SUMMARY_COLUMNS = (
    "path",
    "user_id",
    "session_id",
    "kind",
    "started_at",
    "ended_at",
    "active_seconds",
    "wall_seconds",
    "lines",
    "bad_lines",
    "user_messages",
    "assistant_messages",
    "tool_calls",
    "tool_errors",
    "skill_calls",
    "subagent_calls",
    "mcp_calls",
    "slash_commands",
    "primary_model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "cc_version",
    "processor_version",
    "processed_at",
)


# -- session files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFile(Record):
    path: str
    user_id: str
    session_id: str
    kind: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    updated_at: datetime


_FILE_COLUMNS = "path, user_id, session_id, kind, size_bytes, sha256, uploaded_at, updated_at"


def get_session_file(con: DuckDBPyConnection, path: str) -> SessionFile | None:
    row = con.execute(f"SELECT {_FILE_COLUMNS} FROM session_files WHERE path = ?", [path]).fetchone()
    return SessionFile(*row) if row else None


def upsert_session_file(con: DuckDBPyConnection, record: SessionFile) -> None:
    con.execute(
        f"INSERT INTO session_files ({_FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (path) DO UPDATE SET size_bytes = excluded.size_bytes, sha256 = excluded.sha256, "
        "updated_at = excluded.updated_at",
        [
            record.path,
            record.user_id,
            record.session_id,
            record.kind,
            record.size_bytes,
            record.sha256,
            record.uploaded_at,
            record.updated_at,
        ],
    )


def list_session_files(con: DuckDBPyConnection, user_id: str, session_id: str | None = None) -> list[SessionFile]:
    """A user's stored files (one session's when ``session_id``), by path."""
    sql = f"SELECT {_FILE_COLUMNS} FROM session_files WHERE user_id = ?"
    params: list[Any] = [user_id]
    if session_id is not None:
        sql += " AND session_id = ?"
        params.append(session_id)
    return [SessionFile(*r) for r in con.execute(sql + " ORDER BY path", params).fetchall()]


# -- private sessions ----------------------------------------------------------------------------


def is_private(con: DuckDBPyConnection, user_id: str, session_id: str) -> bool:
    row = con.execute(
        "SELECT 1 FROM private_sessions WHERE user_id = ? AND session_id = ?", [user_id, session_id]
    ).fetchone()
    return row is not None


def mark_private(con: DuckDBPyConnection, user_id: str, session_id: str, at: datetime) -> bool:
    """Record the mark; False when it was already there."""
    if is_private(con, user_id, session_id):
        return False
    con.execute(
        "INSERT INTO private_sessions (user_id, session_id, marked_at) VALUES (?, ?, ?)", [user_id, session_id, at]
    )
    return True


def delete_session(con: DuckDBPyConnection, user_id: str, session_id: str) -> dict[str, Any]:
    """Delete every row of one session (files, checkpoints, events, summaries).

    Returns ``{"files": n, "events": n, "days": [date, ...]}`` (the days whose rollups changed).
    """
    days = _event_days(con, "user_id = ? AND session_id = ?", [user_id, session_id])
    where = "user_id = ? AND session_id = ?"
    events = con.execute(f"DELETE FROM usage_events WHERE {where}", [user_id, session_id]).fetchone()
    con.execute(f"DELETE FROM usage_session_summary WHERE {where}", [user_id, session_id])
    con.execute(
        f"DELETE FROM usage_file_state WHERE path IN (SELECT path FROM session_files WHERE {where})",
        [user_id, session_id],
    )
    files = con.execute(f"DELETE FROM session_files WHERE {where}", [user_id, session_id]).fetchone()
    return {"files": int(files[0]) if files else 0, "events": int(events[0]) if events else 0, "days": days}


# -- the processor's checkpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class PendingFile:
    path: str
    user_id: str
    session_id: str
    kind: str
    sha256: str
    attempts: int  # failures so far for these bytes


def pending_files(con: DuckDBPyConnection, processor_version: int) -> list[PendingFile]:
    """Files whose bytes or processor version differ from their checkpoint, parked ones left out
    (until their bytes change); oldest upload first."""
    rows = con.execute(
        """
        SELECT f.path, f.user_id, f.session_id, f.kind, f.sha256,
               CASE WHEN s.sha256 = f.sha256 AND s.processor_version = ? THEN s.attempts ELSE 0 END
        FROM session_files f LEFT JOIN usage_file_state s ON s.path = f.path
        WHERE s.path IS NULL OR s.sha256 <> f.sha256 OR s.processor_version <> ?
           OR (s.last_error IS NOT NULL AND NOT s.parked)
        ORDER BY f.updated_at, f.path
        """,
        [processor_version, processor_version],
    ).fetchall()
    return [PendingFile(*r) for r in rows]


@dataclass(frozen=True)
class FileState(Record):
    path: str
    sha256: str
    processor_version: int
    processed_at: datetime
    lines: int
    bad_lines: int
    events: int
    attempts: int
    last_error: str | None
    parked: bool


_STATE_COLUMNS = "path, sha256, processor_version, processed_at, lines, bad_lines, events, attempts, last_error, parked"


def get_file_state(con: DuckDBPyConnection, path: str) -> FileState | None:
    row = con.execute(f"SELECT {_STATE_COLUMNS} FROM usage_file_state WHERE path = ?", [path]).fetchone()
    return FileState(*row) if row else None


def put_file_state(con: DuckDBPyConnection, state: FileState) -> None:
    con.execute(
        f"INSERT OR REPLACE INTO usage_file_state ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            state.path,
            state.sha256,
            state.processor_version,
            state.processed_at,
            state.lines,
            state.bad_lines,
            state.events,
            state.attempts,
            state.last_error,
            state.parked,
        ],
    )


def list_parked(con: DuckDBPyConnection, limit: int = 100) -> list[FileState]:
    rows = con.execute(
        f"SELECT {_STATE_COLUMNS} FROM usage_file_state WHERE parked ORDER BY processed_at DESC LIMIT ?", [limit]
    ).fetchall()
    return [FileState(*r) for r in rows]


# -- events and summaries ------------------------------------------------------------------------


def _event_days(con: DuckDBPyConnection, where: str, params: list[Any]) -> list[date]:
    rows = con.execute(
        f"SELECT DISTINCT CAST(occurred_at AS DATE) FROM usage_events WHERE occurred_at IS NOT NULL AND {where}",
        params,
    ).fetchall()
    return [r[0] for r in rows]


def replace_file_rows(con: DuckDBPyConnection, paths: list[str], events: pa.Table, summaries: pa.Table) -> list[date]:
    """Replace the events and summaries of ``paths`` with the given Arrow tables (one insert each).

    Returns the days whose rollups changed (days of the old and the new events).
    """
    if not paths:
        return []
    days = set(_event_days(con, "path IN (SELECT unnest(?))", [paths]))
    con.execute("DELETE FROM usage_events WHERE path IN (SELECT unnest(?))", [paths])
    con.execute("DELETE FROM usage_session_summary WHERE path IN (SELECT unnest(?))", [paths])
    if events.num_rows:
        con.register("agnes_new_events", events)
        try:
            con.execute(f"INSERT INTO usage_events ({', '.join(EVENT_COLUMNS)}) SELECT * FROM agnes_new_events")
        finally:
            con.unregister("agnes_new_events")
        column = events.column("occurred_at")
        days.update(v.date() for v in column.to_pylist() if v is not None)
    if summaries.num_rows:
        con.register("agnes_new_summaries", summaries)
        try:
            con.execute(
                f"INSERT INTO usage_session_summary ({', '.join(SUMMARY_COLUMNS)}) SELECT * FROM agnes_new_summaries"
            )
        finally:
            con.unregister("agnes_new_summaries")
    return sorted(days)


def delete_events_before(con: DuckDBPyConnection, cutoff: datetime) -> dict[str, Any]:
    """Delete events older than ``cutoff`` (prune); rollups stay. Returns the count."""
    row = con.execute("DELETE FROM usage_events WHERE occurred_at < ?", [cutoff]).fetchone()
    return {"events": int(row[0]) if row else 0}


# -- rollups -------------------------------------------------------------------------------------

_DAILY_SQL = """
INSERT INTO usage_item_daily (day, source, item_type, parent, name, calls, errors, users)
SELECT CAST(occurred_at AS DATE), source, item_type, parent, name,
       count(*), count(*) FILTER (WHERE is_error), count(DISTINCT user_id)
FROM usage_events
WHERE occurred_at IS NOT NULL AND CAST(occurred_at AS DATE) IN (SELECT unnest(?))
GROUP BY ALL
UNION ALL
SELECT CAST(occurred_at AS DATE), source, 'plugin', parent, any_value(parent_name),
       count(*), count(*) FILTER (WHERE is_error), count(DISTINCT user_id)
FROM usage_events
WHERE occurred_at IS NOT NULL AND CAST(occurred_at AS DATE) IN (SELECT unnest(?))
  AND parent <> '' AND item_type IN ('skill', 'agent', 'command', 'mcp')
GROUP BY CAST(occurred_at AS DATE), source, parent
"""


def refresh_daily(con: DuckDBPyConnection, days: list[date]) -> None:
    """Rebuild ``usage_item_daily`` for ``days`` from the events."""
    if not days:
        return
    con.execute("DELETE FROM usage_item_daily WHERE day IN (SELECT unnest(?))", [days])
    con.execute(_DAILY_SQL, [days, days])


_WINDOW_SQL = """
INSERT INTO usage_item_window
    (period, source, item_type, parent, name, calls, errors, users, active_days, last_used_at, refreshed_at)
WITH w(period, since) AS (SELECT * FROM (VALUES ('last_7d', ?::TIMESTAMP), ('last_30d', ?::TIMESTAMP)))
SELECT w.period, e.source, e.item_type, e.parent, e.name, count(*), count(*) FILTER (WHERE e.is_error),
       count(DISTINCT e.user_id), count(DISTINCT CAST(e.occurred_at AS DATE)), max(e.occurred_at), ?
FROM usage_events e JOIN w ON e.occurred_at >= w.since
GROUP BY ALL
UNION ALL
SELECT w.period, e.source, 'plugin', e.parent, any_value(e.parent_name), count(*), count(*) FILTER (WHERE e.is_error),
       count(DISTINCT e.user_id), count(DISTINCT CAST(e.occurred_at AS DATE)), max(e.occurred_at), ?
FROM usage_events e JOIN w ON e.occurred_at >= w.since
WHERE e.parent <> '' AND e.item_type IN ('skill', 'agent', 'command', 'mcp')
GROUP BY w.period, e.source, e.parent
"""


def refresh_windows(con: DuckDBPyConnection, now: datetime) -> None:
    """Rebuild ``usage_item_window`` (true distinct users over the last 7 and 30 days before ``now``)."""
    con.execute("DELETE FROM usage_item_window")
    since7 = now - timedelta(days=WINDOWS["last_7d"])
    since30 = now - timedelta(days=WINDOWS["last_30d"])
    con.execute(_WINDOW_SQL, [since7, since30, now, now])

    set_meta(con, "windows_refreshed_at", now.isoformat(), now)


def get_meta(con: DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM telemetry_meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def set_meta(con: DuckDBPyConnection, key: str, value: str, now: datetime) -> None:
    con.execute("INSERT OR REPLACE INTO telemetry_meta (key, value, updated_at) VALUES (?, ?, ?)", [key, value, now])
