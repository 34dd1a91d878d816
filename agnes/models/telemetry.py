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

from agnes.models import Record, findings, otel_events

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
    "prompt_id",
    "tool_use_id",
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
        ("prompt_id", pa.string()),
        ("tool_use_id", pa.string()),
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
    """Delete every row of one session (files, checkpoints, events, summaries, failure findings,
    and the events Claude Code exported of it over OpenTelemetry).

    Returns ``{"files": n, "events": n, "otel_events": n, "days": [date, ...]}`` (the days whose
    rollups changed).
    """
    days = _event_days(con, "user_id = ? AND session_id = ?", [user_id, session_id])
    otel, otel_days = otel_events.delete_session_events(con, user_id, session_id)
    where = "user_id = ? AND session_id = ?"
    events = con.execute(f"DELETE FROM usage_events WHERE {where}", [user_id, session_id]).fetchone()
    con.execute(f"DELETE FROM usage_session_summary WHERE {where}", [user_id, session_id])
    con.execute(
        f"DELETE FROM usage_file_state WHERE path IN (SELECT path FROM session_files WHERE {where})",
        [user_id, session_id],
    )
    findings.delete_session_findings(con, user_id, session_id)
    files = con.execute(f"DELETE FROM session_files WHERE {where}", [user_id, session_id]).fetchone()
    return {
        "files": int(files[0]) if files else 0,
        "events": int(events[0]) if events else 0,
        "otel_events": otel,
        "days": sorted(set(days) | set(otel_days)),
    }


# -- the processor's checkpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class PendingFile:
    path: str
    user_id: str
    session_id: str
    kind: str
    sha256: str
    attempts: int  # failures so far for these bytes


def pending_files(con: DuckDBPyConnection, processor_version: int, *, suffix: str = "") -> list[PendingFile]:
    """Files whose bytes or processor version differ from their checkpoint, parked ones left out
    (until their bytes change); oldest upload first. ``suffix`` names the reprocess's shadow tables."""
    rows = con.execute(
        f"""
        SELECT f.path, f.user_id, f.session_id, f.kind, f.sha256,
               CASE WHEN s.sha256 = f.sha256 AND s.processor_version = ? THEN s.attempts ELSE 0 END
        FROM session_files f LEFT JOIN usage_file_state{suffix} s ON s.path = f.path
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


def put_file_state(con: DuckDBPyConnection, state: FileState, *, suffix: str = "") -> None:
    con.execute(
        f"INSERT OR REPLACE INTO usage_file_state{suffix} ({_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


STATE_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("processor_version", pa.int32()),
        ("processed_at", pa.timestamp("us")),
        ("lines", pa.int32()),
        ("bad_lines", pa.int32()),
        ("events", pa.int32()),
        ("attempts", pa.int32()),
        ("last_error", pa.string()),
        ("parked", pa.bool_()),
    ]
)


def put_file_states(con: DuckDBPyConnection, states: list[FileState], *, suffix: str = "") -> None:
    """Write many checkpoints at once (replacing those of the same paths): one delete, one insert."""
    if not states:
        return
    table = pa.Table.from_pylist([s.__dict__ for s in states], schema=STATE_SCHEMA)
    con.execute(f"DELETE FROM usage_file_state{suffix} WHERE path IN (SELECT unnest(?))", [[s.path for s in states]])
    con.register("agnes_new_states", table)
    try:
        con.execute(f"INSERT INTO usage_file_state{suffix} ({_STATE_COLUMNS}) SELECT * FROM agnes_new_states")
    finally:
        con.unregister("agnes_new_states")


def list_parked(con: DuckDBPyConnection, limit: int = 100) -> list[FileState]:
    rows = con.execute(
        f"SELECT {_STATE_COLUMNS} FROM usage_file_state WHERE parked ORDER BY processed_at DESC LIMIT ?", [limit]
    ).fetchall()
    return [FileState(*r) for r in rows]


# -- events and summaries ------------------------------------------------------------------------


def _event_days(con: DuckDBPyConnection, where: str, params: list[Any], suffix: str = "") -> list[date]:
    rows = con.execute(
        f"SELECT DISTINCT CAST(occurred_at AS DATE) FROM usage_events{suffix}"
        f" WHERE occurred_at IS NOT NULL AND {where}",
        params,
    ).fetchall()
    return [r[0] for r in rows]


def replace_file_rows(
    con: DuckDBPyConnection, paths: list[str], events: pa.Table, summaries: pa.Table, *, suffix: str = ""
) -> list[date]:
    """Replace the events and summaries of ``paths`` with the given Arrow tables (one insert each).

    Returns the days whose rollups changed (days of the old and the new events).
    """
    if not paths:
        return []
    days = set(_event_days(con, "path IN (SELECT unnest(?))", [paths], suffix))
    con.execute(f"DELETE FROM usage_events{suffix} WHERE path IN (SELECT unnest(?))", [paths])
    con.execute(f"DELETE FROM usage_session_summary{suffix} WHERE path IN (SELECT unnest(?))", [paths])
    if events.num_rows:
        con.register("agnes_new_events", events)
        try:
            con.execute(f"INSERT INTO usage_events{suffix} ({', '.join(EVENT_COLUMNS)}) SELECT * FROM agnes_new_events")
        finally:
            con.unregister("agnes_new_events")
        column = events.column("occurred_at")
        days.update(v.date() for v in column.to_pylist() if v is not None)
    if summaries.num_rows:
        con.register("agnes_new_summaries", summaries)
        try:
            con.execute(
                f"INSERT INTO usage_session_summary{suffix} ({', '.join(SUMMARY_COLUMNS)})"
                " SELECT * FROM agnes_new_summaries"
            )
        finally:
            con.unregister("agnes_new_summaries")
    return sorted(days)


def delete_events_before(con: DuckDBPyConnection, cutoff: datetime) -> dict[str, Any]:
    """Delete events older than ``cutoff`` (prune); rollups stay. Returns the count."""
    row = con.execute("DELETE FROM usage_events WHERE occurred_at < ?", [cutoff]).fetchone()
    con.execute("DELETE FROM usage_otel_only WHERE occurred_at < ?", [cutoff])
    return {"events": int(row[0]) if row else 0}


# -- rollups -------------------------------------------------------------------------------------

# Every use counted once: the transcripts' uses, and the OTLP uses no transcript reported
# (``usage_otel_only``, rebuilt per session by the processor: otel_events.refresh_otel_only).
_USE_COLUMNS = "user_id, occurred_at, source, item_type, parent, parent_name, name, is_error"


def _uses(suffix: str) -> str:
    return (
        f"(SELECT {_USE_COLUMNS} FROM usage_events{suffix}"
        f" UNION ALL SELECT {_USE_COLUMNS} FROM usage_otel_only{suffix})"
    )


# Per user and day first (usage_user_daily), then the items' days and the windows from it: a
# processing run rebuilds the user rows of the days it touched only, and the windows read those
# small rows instead of a month of events. Parameter: the days.
_USER_DAILY_SQL = """
INSERT INTO usage_user_daily{s}
    (day, source, item_type, parent, name, parent_name, user_id, calls, errors, last_used_at)
SELECT CAST(occurred_at AS DATE), source, item_type, parent, name, any_value(parent_name), user_id,
       count(*), count(*) FILTER (WHERE is_error), max(occurred_at)
FROM {uses} e
WHERE occurred_at IS NOT NULL AND CAST(occurred_at AS DATE) IN (SELECT unnest(?))
GROUP BY CAST(occurred_at AS DATE), source, item_type, parent, name, user_id
"""

_DAILY_SQL = """
INSERT INTO usage_item_daily{s} (day, source, item_type, parent, name, calls, errors, users)
SELECT day, source, item_type, parent, name, sum(calls), sum(errors), count(DISTINCT user_id)
FROM usage_user_daily{s} WHERE day IN (SELECT unnest(?))
GROUP BY ALL
UNION ALL
SELECT day, source, 'plugin', parent, any_value(parent_name), sum(calls), sum(errors), count(DISTINCT user_id)
FROM usage_user_daily{s}
WHERE day IN (SELECT unnest(?)) AND parent <> '' AND item_type IN ('skill', 'agent', 'command', 'mcp')
GROUP BY day, source, parent
"""


def refresh_daily(con: DuckDBPyConnection, days: list[date], *, suffix: str = "") -> None:
    """Rebuild ``usage_user_daily`` and ``usage_item_daily`` for ``days`` from the uses (the
    transcripts' and the unmatched OTLP ones)."""
    if not days:
        return
    for table in ("usage_user_daily", "usage_item_daily"):
        con.execute(f"DELETE FROM {table}{suffix} WHERE day IN (SELECT unnest(?))", [days])
    con.execute(_USER_DAILY_SQL.format(s=suffix, uses=_uses(suffix)), [days])
    con.execute(_DAILY_SQL.format(s=suffix), [days, days])


def all_event_days(con: DuckDBPyConnection, *, suffix: str = "") -> list[date]:
    """Every day with a use (of a transcript, or an OTLP one)."""
    otel = con.execute(f"SELECT DISTINCT CAST(occurred_at AS DATE) FROM usage_otel_only{suffix}").fetchall()
    return sorted(set(_event_days(con, "TRUE", [], suffix)) | {r[0] for r in otel})


# Windows of whole days ending today: last_7d is today and the 6 days before (the week the trend
# compares with the 7 days before it). Parameters: the first day of each window, now twice.
_WINDOW_SQL = """
INSERT INTO usage_item_window{s}
    (period, source, item_type, parent, name, calls, errors, users, active_days, last_used_at, refreshed_at)
WITH w(period, since) AS (SELECT * FROM (VALUES ('last_7d', ?::DATE), ('last_30d', ?::DATE)))
SELECT w.period, e.source, e.item_type, e.parent, e.name, sum(e.calls), sum(e.errors),
       count(DISTINCT e.user_id), count(DISTINCT e.day), max(e.last_used_at), ?
FROM usage_user_daily{s} e JOIN w ON e.day >= w.since
GROUP BY ALL
UNION ALL
SELECT w.period, e.source, 'plugin', e.parent, any_value(e.parent_name), sum(e.calls), sum(e.errors),
       count(DISTINCT e.user_id), count(DISTINCT e.day), max(e.last_used_at), ?
FROM usage_user_daily{s} e JOIN w ON e.day >= w.since
WHERE e.parent <> '' AND e.item_type IN ('skill', 'agent', 'command', 'mcp')
GROUP BY w.period, e.source, e.parent
"""


def refresh_windows(con: DuckDBPyConnection, now: datetime, *, suffix: str = "") -> None:
    """Rebuild ``usage_item_window``: true distinct users, calls and active days over the last 7
    and 30 days (whole days, today included), from ``usage_user_daily``."""
    con.execute(f"DELETE FROM usage_item_window{suffix}")
    today = now.date()
    since7 = today - timedelta(days=WINDOWS["last_7d"] - 1)
    since30 = today - timedelta(days=WINDOWS["last_30d"] - 1)
    con.execute(_WINDOW_SQL.format(s=suffix), [since7, since30, now, now])
    if suffix:
        return

    set_meta(con, "windows_refreshed_at", now.isoformat(), now)


def get_meta(con: DuckDBPyConnection, key: str) -> str | None:
    row = con.execute("SELECT value FROM telemetry_meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def set_meta(con: DuckDBPyConnection, key: str, value: str, now: datetime) -> None:
    con.execute("INSERT OR REPLACE INTO telemetry_meta (key, value, updated_at) VALUES (?, ?, ?)", [key, value, now])


# -- reads for pages -----------------------------------------------------------------------------


def window_rows(con: DuckDBPyConnection, item_types: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """``(period, source, item_type, parent, name, calls, errors, users, active_days, last_used_at)``
    of ``usage_item_window`` for the item types."""
    return con.execute(
        "SELECT period, source, item_type, parent, name, calls, errors, users, active_days, last_used_at"
        " FROM usage_item_window WHERE item_type IN (SELECT unnest(?))",
        [list(item_types)],
    ).fetchall()


def daily_rows(con: DuckDBPyConnection, item_types: tuple[str, ...], since: date) -> list[tuple[Any, ...]]:
    """``(day, source, item_type, parent, name, calls, errors, users)`` from ``since`` on."""
    return con.execute(
        "SELECT day, source, item_type, parent, name, calls, errors, users FROM usage_item_daily"
        " WHERE item_type IN (SELECT unnest(?)) AND day >= ?",
        [list(item_types), since],
    ).fetchall()


def subscriber_counts(con: DuckDBPyConnection) -> dict[str, int]:
    """Users who have each curated plugin in their stack: ``{"<marketplace>/<plugin>": n}``."""
    rows = con.execute(
        "SELECT marketplace_id || '/' || plugin_name, count(*) FROM user_plugin_subscriptions GROUP BY ALL"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


@dataclass(frozen=True)
class SessionRow(Record):
    """A user's session as the admin user page lists it (main transcript and its summary)."""

    session_id: str
    file: str
    size_bytes: int
    uploaded_at: datetime
    subagents: int
    started_at: datetime | None
    ended_at: datetime | None
    active_seconds: float | None
    tool_calls: int | None
    tool_errors: int | None
    primary_model: str | None
    tokens: int | None
    processed: bool


def list_user_sessions(
    con: DuckDBPyConnection, user_id: str, *, limit: int, offset: int
) -> tuple[list[SessionRow], int]:
    """A user's sessions, newest first, and how many there are."""
    rows = con.execute(
        """
        SELECT f.session_id, regexp_extract(f.path, '[^/]+$'), f.size_bytes, f.updated_at,
               (SELECT count(*) FROM session_files x
                WHERE x.user_id = f.user_id AND x.session_id = f.session_id AND x.kind = 'subagent'),
               s.started_at, s.ended_at, s.active_seconds, s.tool_calls, s.tool_errors, s.primary_model,
               s.input_tokens + s.output_tokens + s.cache_read_tokens + s.cache_creation_tokens,
               s.path IS NOT NULL
        FROM session_files f LEFT JOIN usage_session_summary s ON s.path = f.path
        WHERE f.user_id = ? AND f.kind = 'main'
        ORDER BY coalesce(s.started_at, f.updated_at) DESC, f.session_id
        LIMIT ? OFFSET ?
        """,
        [user_id, limit, offset],
    ).fetchall()
    total = con.execute("SELECT count(*) FROM session_files WHERE user_id = ? AND kind = 'main'", [user_id]).fetchone()
    return [SessionRow(*r) for r in rows], int(total[0]) if total else 0


def sessions_per_day(con: DuckDBPyConnection, since: datetime, user_id: str | None = None) -> dict[date, int]:
    """Main sessions started per day from ``since`` (one user's, or everyone's)."""
    sql = "SELECT CAST(started_at AS DATE), count(*) FROM usage_session_summary WHERE kind = 'main' AND started_at >= ?"
    params: list[Any] = [since]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    return {r[0]: int(r[1]) for r in con.execute(sql + " GROUP BY 1", params).fetchall()}


def user_downloads(con: DuckDBPyConnection, user_id: str, since: datetime) -> list[tuple[Any, ...]]:
    """``(action, resource, count, last)`` of a user's table and marketplace fetches since ``since``
    (the ``data.download`` and ``marketplace.download`` audit rows), most recent first."""
    return con.execute(
        """
        SELECT action, resource, count(*), max(timestamp) FROM audit_log
        WHERE user_id = ? AND timestamp >= ? AND action IN ('data.download', 'marketplace.download')
        GROUP BY action, resource ORDER BY max(timestamp) DESC LIMIT 200
        """,
        [user_id, since],
    ).fetchall()


def events_per_day_by_source(con: DuckDBPyConnection, since: date) -> list[tuple[date, str, int]]:
    """``(day, source, calls)`` from the daily rollup (plugin rows left out: they repeat their items)."""
    return con.execute(
        "SELECT day, source, sum(calls) FROM usage_item_daily WHERE day >= ? AND item_type <> 'plugin'"
        " GROUP BY ALL ORDER BY day",
        [since],
    ).fetchall()


def usage_kpis(con: DuckDBPyConnection, since: datetime) -> dict[str, Any]:
    """Figures since ``since``: events, tool calls and errors, sessions, active users, tokens."""
    events = con.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE event_type <> 'slash_command'),
               count(*) FILTER (WHERE is_error), count(DISTINCT user_id)
        FROM usage_events WHERE occurred_at >= ?
        """,
        [since],
    ).fetchone()
    sessions = con.execute(
        """
        SELECT count(*) FILTER (WHERE kind = 'main'), coalesce(sum(active_seconds), 0),
               coalesce(sum(input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens), 0)
        FROM usage_session_summary WHERE started_at >= ?
        """,
        [since],
    ).fetchone()
    files = con.execute("SELECT count(*), count(*) FILTER (WHERE parked) FROM usage_file_state").fetchone()
    calls = int(events[1]) if events else 0
    errors = int(events[2]) if events else 0
    return {
        "events": int(events[0]) if events else 0,
        "tool_calls": calls,
        "errors": errors,
        "error_rate": round(errors / calls, 4) if calls else 0.0,
        "active_users": int(events[3]) if events else 0,
        "sessions": int(sessions[0]) if sessions else 0,
        "active_hours": round(float(sessions[1]) / 3600, 1) if sessions else 0.0,
        "tokens": int(sessions[2]) if sessions else 0,
        "files_processed": int(files[0]) if files else 0,
        "files_parked": int(files[1]) if files else 0,
    }


def top_window_items(
    con: DuckDBPyConnection, item_types: tuple[str, ...], *, period: str = "last_30d", limit: int = 20
) -> list[tuple[Any, ...]]:
    """``(item_type, source, parent, name, calls, errors, users, last_used_at)``, most calls first."""
    return con.execute(
        """
        SELECT item_type, source, parent, name, calls, errors, users, last_used_at FROM usage_item_window
        WHERE period = ? AND item_type IN (SELECT unnest(?))
        ORDER BY calls DESC, users DESC, name LIMIT ?
        """,
        [period, list(item_types), limit],
    ).fetchall()


# -- reprocessing into shadow tables -------------------------------------------------------------

# The tables a reprocess fills beside the live ones and swaps in at the end.
REPROCESSED_TABLES = (
    "usage_file_state",
    "usage_events",
    "usage_otel_only",
    "usage_session_summary",
    "usage_user_daily",
    "usage_item_daily",
    "usage_item_window",
)
SHADOW = "_next"


def create_shadow_tables(con: DuckDBPyConnection) -> None:
    """Empty copies of :data:`REPROCESSED_TABLES` (same columns and keys) named ``<table>_next``;
    leftovers of an interrupted reprocess are dropped first."""
    for table in REPROCESSED_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}{SHADOW}")
        row = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() AND table_name = ?", [table]
        ).fetchone()
        if row is None:
            raise LookupError(f"table {table} is missing")
        ddl = row[0].replace(f"CREATE TABLE {table}(", f"CREATE TABLE {table}{SHADOW}(", 1)
        con.execute(ddl)


def drop_shadow_tables(con: DuckDBPyConnection) -> None:
    for table in REPROCESSED_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}{SHADOW}")


def swap_shadow_tables(con: DuckDBPyConnection) -> None:
    """Replace the live tables by the shadow ones (one write unit: readers see old or new)."""
    for table in REPROCESSED_TABLES:
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE {table}{SHADOW} RENAME TO {table}")


def all_session_files(con: DuckDBPyConnection) -> list[PendingFile]:
    """Every stored file as a pending one (a reprocess reads them all), oldest upload first."""
    rows = con.execute(
        "SELECT path, user_id, session_id, kind, sha256, 0 FROM session_files ORDER BY updated_at, path"
    ).fetchall()
    return [PendingFile(*r) for r in rows]


def outdated_files(con: DuckDBPyConnection, processor_version: int) -> int:
    """Checkpoints written by another processor version (a bump reprocesses everything)."""
    row = con.execute(
        "SELECT count(*) FROM usage_file_state WHERE processor_version <> ?", [processor_version]
    ).fetchone()
    return int(row[0]) if row else 0


# -- export ---------------------------------------------------------------------------------------

EXPORT_COLUMNS = {
    "events": (
        "user_id, session_id, occurred_at, event_type, item_type, tool_name, name, item_name, source, parent,"
        " parent_name, prefix, is_error, is_sidechain, model, event_uuid, line_no, path",
        "usage_events",
        "occurred_at",
    ),
    "sessions": (
        ", ".join(c for c in SUMMARY_COLUMNS if c != "processor_version"),
        "usage_session_summary",
        "started_at",
    ),
}
COPY_FORMATS = {"csv": "(FORMAT CSV, HEADER)", "json": "(FORMAT JSON)", "parquet": "(FORMAT PARQUET, COMPRESSION ZSTD)"}


def copy_export(
    con: DuckDBPyConnection,
    what: str,
    fmt: str,
    target: str,
    *,
    since: datetime | None,
    until: datetime | None,
    user_id: str | None,
    source: str | None,
) -> int:
    """Write the rows of ``what`` (``events`` | ``sessions``) matching the filters to ``target`` in
    ``fmt`` (``csv`` | ``json`` (one object per line) | ``parquet``), ordered by time; returns the
    row count. DuckDB streams the COPY to disk, so memory does not grow with the rows."""
    columns, table, when = EXPORT_COLUMNS[what]
    where, params = ["TRUE"], []
    if since is not None:
        where.append(f"{when} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{when} < ?")
        params.append(until)
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    if source is not None and what == "events":
        where.append("source = ?")
        params.append(source)
    literal = target.replace("'", "''")
    row = con.execute(
        f"COPY (SELECT {columns} FROM {table} WHERE {' AND '.join(where)} ORDER BY {when}, user_id)"
        f" TO '{literal}' {COPY_FORMATS[fmt]}",
        params,
    ).fetchone()
    return int(row[0]) if row else 0


# -- the telemetry-only database (what `agnes admin ask` may read) ---------------------------------

# Tables copied into it: name -> SELECT over the state store (users: id, email, name only).
ASK_TABLES = {
    "usage_events": f"SELECT {EXPORT_COLUMNS['events'][0]} FROM usage_events",
    "usage_session_summary": f"SELECT {EXPORT_COLUMNS['sessions'][0]} FROM usage_session_summary",
    "usage_item_daily": "SELECT * FROM usage_item_daily",
    "usage_item_window": "SELECT * FROM usage_item_window",
    "users": "SELECT id, email, name FROM users",
}


def write_telemetry_database(con: DuckDBPyConnection, target: str) -> None:
    """Copy :data:`ASK_TABLES` into a new DuckDB file ``target`` (which must not exist)."""
    literal = target.replace("'", "''")
    con.execute(f"ATTACH '{literal}' AS agnes_telemetry_out")
    try:
        for name, select in ASK_TABLES.items():
            con.execute(f"CREATE TABLE agnes_telemetry_out.{name} AS {select}")
    finally:
        con.execute("DETACH agnes_telemetry_out")
