"""``audit_log``: one row per state-changing request or job."""

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
) -> str:
    """Insert one audit row. ``params`` must already be free of secrets (see agnes.audit)."""
    entry_id = new_id()
    con.execute(
        "INSERT INTO audit_log (id, user_id, action, resource, params, result, duration_ms,"
        " client_ip, client_kind, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        "SELECT a.id, a.timestamp, a.user_id, u.email, a.action, a.resource, a.params, a.result,"
        " a.duration_ms, a.client_ip, a.client_kind, a.correlation_id"
        " FROM audit_log a LEFT JOIN users u ON u.id = a.user_id"
        f" WHERE {' AND '.join(clauses)} ORDER BY a.timestamp DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [
        AuditEntry(*r[:6], json.loads(r[6]) if r[6] else None, *r[7:])  # type: ignore[misc]
        for r in rows
    ]


def list_user_audit(con: DuckDBPyConnection, user_id: str, *, limit: int = 20) -> list[AuditEntry]:
    """Newest rows the user acted in or that are about them (``resource = 'user:<id>'``)."""
    rows = con.execute(
        "SELECT a.id, a.timestamp, a.user_id, u.email, a.action, a.resource, a.params, a.result,"
        " a.duration_ms, a.client_ip, a.client_kind, a.correlation_id"
        " FROM audit_log a LEFT JOIN users u ON u.id = a.user_id"
        " WHERE a.user_id = ? OR a.resource = ? ORDER BY a.timestamp DESC LIMIT ?",
        [user_id, f"user:{user_id}", limit],
    ).fetchall()
    return [
        AuditEntry(*r[:6], json.loads(r[6]) if r[6] else None, *r[7:])  # type: ignore[misc]
        for r in rows
    ]
