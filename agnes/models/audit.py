"""``audit_log``: one row per state-changing request or job, and the timeline's queries over it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id


@dataclass(frozen=True)
class AuditEntry(Record):
    id: str
    timestamp: datetime
    user_id: str | None
    user_email: str | None
    action: str
    resource: str | None
    params: dict[str, Any] | None
    result: str | None
    duration_ms: float | None
    client_ip: str | None
    client_kind: str | None
    correlation_id: str | None
    user_name: str | None = None
    params_before: dict[str, Any] | None = None  # a registry change's previous values ({}: created)


_ENTRY_COLUMNS = (
    "a.id, a.timestamp, a.user_id, u.email, a.action, a.resource, a.params, a.result,"
    " a.duration_ms, a.client_ip, a.client_kind, a.correlation_id, u.name, a.params_before"
)


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    before = json.loads(row[13]) if row[13] is not None else None
    return AuditEntry(*row[:6], json.loads(row[6]) if row[6] else None, *row[7:13], before)  # type: ignore[misc]


def insert_audit(
    con: DuckDBPyConnection,
    *,
    action: str,
    user_id: str | None = None,
    resource: str | None = None,
    params: dict[str, Any] | None = None,
    result: str | None = None,
    duration_ms: float | None = None,
    client_ip: str | None = None,
    client_kind: str | None = None,
    correlation_id: str | None = None,
    params_before: dict[str, Any] | None = None,
) -> str:
    """Insert one audit row. ``params`` and ``params_before`` (a registry change's previous
    values) must already be free of secrets (see agnes.audit)."""
    entry_id = new_id()
    con.execute(
        "INSERT INTO audit_log (id, user_id, action, resource, params, result, duration_ms,"
        " client_ip, client_kind, correlation_id, params_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            entry_id,
            user_id,
            action,
            resource,
            json.dumps(params, default=str, sort_keys=True) if params is not None else None,
            result,
            duration_ms,
            client_ip,
            client_kind,
            correlation_id,
            json.dumps(params_before, default=str, sort_keys=True) if params_before is not None else None,
        ],
    )
    return entry_id


def list_audit(
    con: DuckDBPyConnection, *, action_prefix: str = "", user_id: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """Newest entries first, optionally filtered by action prefix and user."""
    clauses, params = ["a.action LIKE ?"], [action_prefix.replace("%", r"\%") + "%"]
    if user_id:
        clauses.append("a.user_id = ?")
        params.append(user_id)
    rows = con.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_log a LEFT JOIN users u ON u.id = a.user_id"
        f" WHERE {' AND '.join(clauses)} ORDER BY a.timestamp DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [_entry(r) for r in rows]


def list_user_audit(con: DuckDBPyConnection, user_id: str, *, limit: int = 20) -> list[AuditEntry]:
    """Newest rows the user acted in or that are about them (``resource = 'user:<id>'``)."""
    rows = con.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM audit_log a LEFT JOIN users u ON u.id = a.user_id"
        " WHERE a.user_id = ? OR a.resource = ? ORDER BY a.timestamp DESC LIMIT ?",
        [user_id, f"user:{user_id}", limit],
    ).fetchall()
    return [_entry(r) for r in rows]


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the activity timeline (all optional; text filters are exact unless named prefix).

    Attributes:
        since, until: the time window, naive UTC (``since`` inclusive, ``until`` exclusive).
        user: a user id or an email (case-insensitive).
        action_prefix: rows whose action starts with it (``job.``, ``marketplace.sync``).
        resource_prefix: rows whose resource starts with it (``table:``, ``job:abc``).
        result: exact result (``ok``, ``failed``, ``403``).
        client_kind: exact client kind (``web``, ``cli``, ``job``, ...).
        correlation_id: one request's or job's rows.
        q: text that the row's params contain (case-insensitive).
    """

    since: datetime | None = None
    until: datetime | None = None
    user: str = ""
    action_prefix: str = ""
    resource_prefix: str = ""
    result: str = ""
    client_kind: str = ""
    correlation_id: str = ""
    q: str = ""


def query_audit(
    con: DuckDBPyConnection, query: AuditQuery, *, before: tuple[datetime, str] | None = None, limit: int = 50
) -> list[AuditEntry]:
    """Rows matching ``query``, newest first, ordered by ``(timestamp, id)`` descending.

    Args:
        before: the keyset cursor: only rows strictly before ``(timestamp, id)`` (the last row of
            the previous page).
        limit: rows returned at most.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if query.since is not None:
        clauses.append("a.timestamp >= ?")
        params.append(query.since)
    if query.until is not None:
        clauses.append("a.timestamp < ?")
        params.append(query.until)
    if query.user:
        clauses.append("a.user_id = ?")
        params.append(resolve_user(con, query.user))
    if query.action_prefix:
        clauses.append("starts_with(a.action, ?)")
        params.append(query.action_prefix)
    if query.resource_prefix:
        clauses.append("starts_with(a.resource, ?)")
        params.append(query.resource_prefix)
    for column, value in (
        ("a.result", query.result),
        ("a.client_kind", query.client_kind),
        ("a.correlation_id", query.correlation_id),
    ):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.q:
        clauses.append("contains(lower(CAST(a.params AS VARCHAR)), ?)")
        params.append(query.q.lower())
    if before is not None:
        clauses.append("(a.timestamp < ? OR (a.timestamp = ? AND a.id < ?))")
        params += [before[0], before[0], before[1]]
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    # The page is chosen first (top-N over the filtered rows), then joined to its users.
    rows = con.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM (SELECT * FROM audit_log a{where}"
        " ORDER BY a.timestamp DESC, a.id DESC LIMIT ?) a LEFT JOIN users u ON u.id = a.user_id"
        " ORDER BY a.timestamp DESC, a.id DESC",
        [*params, limit],
    ).fetchall()
    return [_entry(r) for r in rows]


def resolve_user(con: DuckDBPyConnection, user: str) -> str:
    """The id of the user whose email is ``user`` (case-insensitive), else ``user`` itself (an id).
    Resolving first keeps a filter one equality on ``user_id``, which the index serves."""
    found = con.execute("SELECT id FROM users WHERE email = ?", [user.strip().lower()]).fetchone()
    return str(found[0]) if found else user


def query_changes(
    con: DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user: str = "",
    prefixes: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Registry changes (rows with ``params_before``), newest first by ``(timestamp, id)``.

    Args:
        since, until: the window, naive UTC (``since`` inclusive, ``until`` exclusive).
        user: a user id or email.
        prefixes: actions starting with one of these (none: every change); ``exclude``: minus
            actions starting with one of these (``group.`` without ``group.member_``).
        before: the keyset cursor ``(timestamp, id)`` of the previous page's last row.
        limit: rows returned at most.
    """
    clauses, params = ["a.params_before IS NOT NULL"], []
    if since is not None:
        clauses.append("a.timestamp >= ?")
        params.append(since)
    if until is not None:
        clauses.append("a.timestamp < ?")
        params.append(until)
    if user:
        clauses.append("a.user_id = ?")
        params.append(resolve_user(con, user))
    if prefixes:
        clauses.append("(" + " OR ".join("starts_with(a.action, ?)" for _ in prefixes) + ")")
        params += list(prefixes)
    for prefix in exclude:
        clauses.append("NOT starts_with(a.action, ?)")
        params.append(prefix)
    if before is not None:
        clauses.append("(a.timestamp < ? OR (a.timestamp = ? AND a.id < ?))")
        params += [before[0], before[0], before[1]]
    rows = con.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM (SELECT * FROM audit_log a WHERE {' AND '.join(clauses)}"
        " ORDER BY a.timestamp DESC, a.id DESC LIMIT ?) a LEFT JOIN users u ON u.id = a.user_id"
        " ORDER BY a.timestamp DESC, a.id DESC",
        [*params, limit],
    ).fetchall()
    return [_entry(r) for r in rows]


def count_active_users(con: DuckDBPyConnection, *, since: datetime) -> int:
    """Distinct users with an audit row at or after ``since``."""
    row = con.execute(
        "SELECT count(DISTINCT user_id) FROM audit_log WHERE timestamp >= ? AND user_id IS NOT NULL", [since]
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class JobRun(Record):
    """The latest outcome of one job function, as its audit rows tell it."""

    action: str
    timestamp: datetime
    result: str | None
    resource: str | None
    correlation_id: str | None
    error: str | None


def latest_job_runs(con: DuckDBPyConnection, resources: dict[str, list[str]]) -> dict[str, JobRun]:
    """The newest audit row of each job, keyed like ``resources``.

    Args:
        resources: key -> the ``job:<id>`` resources its runs are audited under (a job's id
            differs between the RQ and embedded backends, so each key may name several).
    """
    wanted = {resource: key for key, names in resources.items() for resource in names}
    if not wanted:
        return {}
    rows = con.execute(
        "SELECT resource, arg_max(action, timestamp), max(timestamp), arg_max(result, timestamp),"
        " arg_max(correlation_id, timestamp), arg_max(json_extract_string(params, '$.error'), timestamp)"
        " FROM audit_log WHERE starts_with(action, 'job.') AND resource IN"
        f" ({', '.join('?' for _ in wanted)}) GROUP BY resource",
        list(wanted),
    ).fetchall()
    found: dict[str, JobRun] = {}
    for resource, action, timestamp, result, correlation_id, error in rows:
        key = wanted[resource]
        if key not in found or found[key].timestamp < timestamp:
            found[key] = JobRun(action, timestamp, result, resource, correlation_id, error)
    return found
