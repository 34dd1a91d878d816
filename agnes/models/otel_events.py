"""``otel_events``, ``claude_code_plugin_loads`` and ``claude_code_served_versions``.

Events arrive in batches (one OTLP request) and go in as one Arrow table per batch; an event
whose key is already stored (an exporter's retry) is skipped. ``plugin_loaded`` events also
move the per-installation row of what Claude Code runs now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from duckdb import DuckDBPyConnection

from agnes.models import Record

# Columns of otel_events in table order (``source`` keeps its default, 'otel').
EVENT_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("event_key", pa.string()),
    ("user_id", pa.string()),
    ("session_id", pa.string()),
    ("prompt_id", pa.string()),
    ("event_name", pa.string()),
    ("occurred_at", pa.timestamp("us")),
    ("received_at", pa.timestamp("us")),
    ("installation", pa.string()),
    ("host", pa.string()),
    ("app_version", pa.string()),
    ("skill_name", pa.string()),
    ("invocation_trigger", pa.string()),
    ("tool_name", pa.string()),
    ("tool_use_id", pa.string()),
    ("success", pa.bool_()),
    ("duration_ms", pa.float64()),
    ("error", pa.string()),
    ("plugin_name", pa.string()),
    ("plugin_version", pa.string()),
    ("marketplace_name", pa.string()),
    ("ref_marketplace", pa.string()),
    ("ref_plugin", pa.string()),
    ("hook_event", pa.string()),
    ("hook_failures", pa.int32()),
    ("model", pa.string()),
    ("status_code", pa.string()),
    ("cost_usd", pa.float64()),
    ("tokens", pa.int64()),
    ("token_type", pa.string()),
    ("attributes", pa.string()),
)
EVENT_SCHEMA = pa.schema(list(EVENT_COLUMNS))
_NAMES = ", ".join(name for name, _ in EVENT_COLUMNS)


def insert_events(con: DuckDBPyConnection, table: pa.Table) -> None:
    """Insert a batch of events (an Arrow table of :data:`EVENT_SCHEMA`).

    Events already stored under the same key (an exporter's retry, a spool file committed
    twice) are skipped: the check reads only the rows in the batch's ``occurred_at`` range (row
    groups outside it are skipped by their min/max), and a key repeated inside the batch is
    inserted once. Events of a session its owner marked private (``private_sessions``,
    ``agnes mark-private``) are dropped.
    """
    if not table.num_rows:
        return
    first, last = pc.min(table["occurred_at"]).as_py(), pc.max(table["occurred_at"]).as_py()
    con.register("incoming_otel_events", table)
    try:
        con.execute(
            f"""INSERT INTO otel_events ({_NAMES})
            SELECT {_NAMES} FROM (
                SELECT *, row_number() OVER (PARTITION BY event_key) AS copy FROM incoming_otel_events
            ) incoming
            WHERE copy = 1 AND NOT EXISTS (
                SELECT 1 FROM otel_events stored
                WHERE stored.event_key = incoming.event_key AND stored.occurred_at BETWEEN ? AND ?
            ) AND NOT EXISTS (
                SELECT 1 FROM private_sessions private
                WHERE private.user_id = incoming.user_id AND private.session_id = incoming.session_id
            )""",
            [first, last],
        )
    finally:
        con.unregister("incoming_otel_events")


@dataclass(frozen=True)
class PluginLoad(Record):
    """What one Claude Code installation of a user loaded last for one plugin."""

    user_id: str
    installation: str
    marketplace_name: str
    plugin_name: str
    version: str | None
    host: str | None
    enabled_via: str | None
    version_since: datetime
    last_loaded_at: datetime


_LOAD_COLUMNS = (
    "user_id, installation, marketplace_name, plugin_name, version, host, enabled_via, version_since, last_loaded_at"
)


def upsert_plugin_loads(con: DuckDBPyConnection, loads: list[PluginLoad]) -> None:
    """Record loads (at most one per user, installation, marketplace and plugin) in one
    statement. A load older than the stored one changes nothing; a new version restarts
    ``version_since``."""
    if not loads:
        return
    names = _LOAD_COLUMNS.split(", ")
    table = pa.table({name: [getattr(x, name) for x in loads] for name in names})
    con.register("incoming_plugin_loads", table)
    try:
        con.execute(
            f"""INSERT INTO claude_code_plugin_loads AS t ({_LOAD_COLUMNS})
            SELECT {_LOAD_COLUMNS} FROM incoming_plugin_loads
            ON CONFLICT (user_id, installation, marketplace_name, plugin_name) DO UPDATE SET
                version_since = CASE WHEN t.version IS NOT DISTINCT FROM excluded.version
                                     THEN t.version_since ELSE excluded.version_since END,
                version = excluded.version,
                host = coalesce(excluded.host, t.host),
                enabled_via = excluded.enabled_via,
                last_loaded_at = excluded.last_loaded_at
            WHERE excluded.last_loaded_at >= t.last_loaded_at"""
        )
    finally:
        con.unregister("incoming_plugin_loads")


def list_plugin_loads(
    con: DuckDBPyConnection, *, marketplace_name: str, user_id: str | None = None
) -> list[PluginLoad]:
    """Load rows of one marketplace (``agnes``), for one user or everyone, newest first."""
    sql = f"SELECT {_LOAD_COLUMNS} FROM claude_code_plugin_loads WHERE marketplace_name = ?"
    params: list[Any] = [marketplace_name]
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    return [PluginLoad(*row) for row in con.execute(sql + " ORDER BY last_loaded_at DESC", params).fetchall()]


def record_served_versions(con: DuckDBPyConnection, now: datetime) -> None:
    """Note ``now`` as the first time each plugin's current version is served (kept when known)."""
    con.execute(
        "INSERT INTO claude_code_served_versions (marketplace_id, plugin_name, version, first_served_at)"
        " SELECT marketplace_id, name, coalesce(version, ''), ? FROM marketplace_plugins"
        " ON CONFLICT DO NOTHING",
        [now],
    )


def served_since(con: DuckDBPyConnection) -> dict[tuple[str, str, str], datetime]:
    """``{(marketplace_id, plugin_name, version): first served}`` (version '' when unversioned)."""
    rows = con.execute(
        "SELECT marketplace_id, plugin_name, version, first_served_at FROM claude_code_served_versions"
    ).fetchall()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def hook_failures_by_plugin(con: DuckDBPyConnection, since: datetime) -> dict[tuple[str, str], tuple[int, int]]:
    """``{(ref_marketplace, ref_plugin): (failed hook runs, hook runs)}`` since ``since``."""
    rows = con.execute(
        "SELECT ref_marketplace, ref_plugin, sum(CASE WHEN hook_failures > 0 THEN 1 ELSE 0 END), count(*)"
        " FROM otel_events WHERE event_name = 'hook_execution_complete' AND ref_plugin IS NOT NULL"
        " AND occurred_at >= ? GROUP BY 1, 2",
        [since],
    ).fetchall()
    return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}


# -- one use, not two -------------------------------------------------------------------------------

# OTLP uses that no transcript use matches, as usage_events-shaped rows (user_id, session_id,
# occurred_at, source, item_type, parent, parent_name, name, is_error), so each occurrence counts
# once whichever channel arrived first:
# * skill_activated: a transcript use matches when user, session and skill (a Skill tool use, or a
#   typed ``/<skill>`` command) agree and it is the same occurrence: the n-th of that skill in the
#   same prompt, or, when either side has no prompt id, the n-th in the session (so
#   max(transcript, OTLP) when they disagree, never the sum);
# * tool_result of a built-in tool: the transcript's tool use with the same ``tool_use_id``. Skill
#   and subagent tools are left out (skill_activated and the transcript count those), and so are
#   MCP tools (OTLP names them all ``mcp_tool``).
# Only the transcripts of sessions with OTLP uses are read; ``{keys}`` limits the sessions.
_UNMATCHED_USES = """
WITH o_skills AS (
    SELECT user_id, session_id, prompt_id, skill_name, occurred_at, ref_marketplace, ref_plugin,
           row_number() OVER (PARTITION BY user_id, session_id, prompt_id, skill_name
                              ORDER BY occurred_at, event_key) AS n,
           row_number() OVER (PARTITION BY user_id, session_id, skill_name ORDER BY occurred_at, event_key) AS m
    FROM otel_events
    WHERE event_name = 'skill_activated' AND skill_name IS NOT NULL {keys}
), o_tools AS (
    SELECT user_id, session_id, occurred_at, tool_name, tool_use_id, success
    FROM otel_events
    WHERE event_name = 'tool_result' AND tool_name IS NOT NULL AND tool_use_id IS NOT NULL
      AND tool_name NOT IN ('Skill', 'Task', 'Agent', 'mcp_tool') AND NOT starts_with(tool_name, 'mcp__') {keys}
), o_sessions AS (
    SELECT DISTINCT user_id, session_id FROM o_skills
    UNION SELECT DISTINCT user_id, session_id FROM o_tools
), t AS (  -- the transcripts' uses of those sessions only
    SELECT e.user_id, e.session_id, e.prompt_id, e.tool_use_id, e.event_type, e.occurred_at, e.line_no, e.name
    FROM usage_events{s} e JOIN o_sessions USING (user_id, session_id)
), t_skills AS (
    SELECT user_id, session_id, prompt_id, ltrim(name, '/') AS skill,
           row_number() OVER (PARTITION BY user_id, session_id, prompt_id, ltrim(name, '/')
                              ORDER BY occurred_at, line_no) AS n,
           row_number() OVER (PARTITION BY user_id, session_id, ltrim(name, '/') ORDER BY occurred_at, line_no) AS m
    FROM t WHERE event_type IN ('skill', 'slash_command')
)
SELECT o.user_id, o.session_id, o.occurred_at,
       CASE WHEN o.ref_plugin IS NOT NULL THEN 'curated'
            WHEN strpos(o.skill_name, ':') > 0 THEN 'unattributed' ELSE 'builtin' END AS source,
       'skill' AS item_type,
       CASE WHEN o.ref_plugin IS NOT NULL THEN o.ref_marketplace || '/' || o.ref_plugin ELSE '' END AS parent,
       coalesce(o.ref_plugin, CASE WHEN strpos(o.skill_name, ':') > 0
                                   THEN split_part(o.skill_name, ':', 1) ELSE '' END) AS parent_name,
       o.skill_name AS name, FALSE AS is_error
FROM o_skills o
WHERE NOT EXISTS (  -- two equi-joins rather than one with an OR (which would compare all pairs)
    SELECT 1 FROM t_skills t
    WHERE t.user_id = o.user_id AND t.session_id = o.session_id AND t.skill = o.skill_name
      AND t.prompt_id = o.prompt_id AND t.n = o.n
) AND NOT EXISTS (
    SELECT 1 FROM t_skills t
    WHERE t.user_id = o.user_id AND t.session_id = o.session_id AND t.skill = o.skill_name AND t.m = o.m
      AND (t.prompt_id IS NULL OR o.prompt_id IS NULL)
)
UNION ALL
SELECT o.user_id, o.session_id, o.occurred_at, 'builtin', 'tool', '', '', o.tool_name, coalesce(NOT o.success, FALSE)
FROM o_tools o
WHERE NOT EXISTS (
    SELECT 1 FROM t
    WHERE t.user_id = o.user_id AND t.session_id = o.session_id AND t.tool_use_id = o.tool_use_id
)
"""


# The sessions whose OTLP-only uses are rebuilt: a registered table of (user_id, session_id).
_KEYS = "AND (user_id, session_id) IN (SELECT (user_id, session_id) FROM agnes_otel_sessions)"


def unmatched_uses_sql(suffix: str = "", *, all_sessions: bool = False) -> str:
    """SQL of the OTLP uses no transcript use matches (see :data:`_UNMATCHED_USES`), against
    ``usage_events{suffix}``: of every session, or of those in the registered relation
    ``agnes_otel_sessions`` (columns user_id, session_id)."""
    return _UNMATCHED_USES.format(s=suffix, keys="" if all_sessions else _KEYS)


def refresh_otel_only(
    con: DuckDBPyConnection, sessions: list[tuple[str, str]] | None, *, suffix: str = ""
) -> list[Any]:
    """Rebuild ``usage_otel_only{suffix}`` for ``sessions`` (``[(user_id, session_id)]``), or
    for every session with ``None``; returns the days (``date``) of the rows removed or added
    (their rollups change; not computed for ``None``, which rebuilds everything)."""
    if sessions is None:
        con.execute(f"DELETE FROM usage_otel_only{suffix}")
        con.execute(f"INSERT INTO usage_otel_only{suffix} {unmatched_uses_sql(suffix, all_sessions=True)}")
        return []
    if not sessions:
        return []
    keys = pa.table({"user_id": [u for u, _ in sessions], "session_id": [s for _, s in sessions]})
    mine = " WHERE (user_id, session_id) IN (SELECT (user_id, session_id) FROM agnes_otel_sessions)"
    days_sql = f"SELECT DISTINCT CAST(occurred_at AS DATE) FROM usage_otel_only{suffix}{mine}"
    con.register("agnes_otel_sessions", keys)
    try:
        days = {r[0] for r in con.execute(days_sql).fetchall()}
        con.execute(f"DELETE FROM usage_otel_only{suffix}{mine}")
        con.execute(f"INSERT INTO usage_otel_only{suffix} {unmatched_uses_sql(suffix)}")
        days |= {r[0] for r in con.execute(days_sql).fetchall()}
    finally:
        con.unregister("agnes_otel_sessions")
    return sorted(days)


# The OTLP events that count as uses (see _UNMATCHED_USES).
USE_EVENTS = "event_name IN ('skill_activated', 'tool_result')"


def uses_received(
    con: DuckDBPyConnection, after: datetime
) -> tuple[list[Any], list[tuple[str, str]], datetime | None, int]:
    """OTLP uses received after ``after``: the days (``date``) they happened on and their
    sessions (``(user_id, session_id)``), whose figures they change, the newest ``received_at``
    (None when there are none) and how many there are."""
    where = f"WHERE {USE_EVENTS} AND received_at > ?"
    row = con.execute(f"SELECT max(received_at), count(*) FROM otel_events {where}", [after]).fetchone()
    if not row or not row[1]:
        return [], [], None, 0
    days = [
        r[0]
        for r in con.execute(f"SELECT DISTINCT CAST(occurred_at AS DATE) FROM otel_events {where}", [after]).fetchall()
    ]
    sessions = [
        (r[0], r[1])
        for r in con.execute(f"SELECT DISTINCT user_id, session_id FROM otel_events {where}", [after]).fetchall()
    ]
    return days, sessions, row[0], int(row[1])


def delete_session_events(con: DuckDBPyConnection, user_id: str, session_id: str) -> tuple[int, list[Any]]:
    """Delete one session's OTLP events (``agnes mark-private``); returns (rows deleted, days of
    its uses, whose rollups change). Plugin load rows are per installation, not per
    session, and stay."""
    days = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT CAST(occurred_at AS DATE) FROM otel_events"
            f" WHERE user_id = ? AND session_id = ? AND {USE_EVENTS}",
            [user_id, session_id],
        ).fetchall()
    ]
    row = con.execute("DELETE FROM otel_events WHERE user_id = ? AND session_id = ?", [user_id, session_id]).fetchone()
    con.execute("DELETE FROM usage_otel_only WHERE user_id = ? AND session_id = ?", [user_id, session_id])
    return (int(row[0]) if row else 0), days


# The skill's own name: the part after "<plugin>:" (Claude Code names plugin skills so).
_SKILL_PART = "substr(skill_name, strpos(skill_name, ':') + 1)"


def skill_triggers(
    con: DuckDBPyConnection, since: datetime, *, marketplace_id: str | None = None, plugin: str | None = None
) -> dict[tuple[str, str, str], dict[str, int]]:
    """``{(ref_marketplace, ref_plugin, skill): {invocation_trigger: count}}`` of attributed
    skill_activated events since ``since`` (``skill`` without its ``<plugin>:`` prefix), for one
    plugin or all."""
    sql = (
        f"SELECT ref_marketplace, ref_plugin, {_SKILL_PART}, coalesce(invocation_trigger, 'unknown'), count(*)"
        " FROM otel_events WHERE event_name = 'skill_activated' AND ref_plugin IS NOT NULL AND occurred_at >= ?"
    )
    params: list[Any] = [since]
    if marketplace_id is not None and plugin is not None:
        sql += " AND ref_marketplace = ? AND ref_plugin = ?"
        params += [marketplace_id, plugin]
    found: dict[tuple[str, str, str], dict[str, int]] = {}
    for mp, name, skill, trigger, n in con.execute(sql + " GROUP BY 1, 2, 3, 4", params).fetchall():
        found.setdefault((mp, name, skill), {})[trigger] = int(n)
    return found
