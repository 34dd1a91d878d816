"""Helpers of the activity tests: audit, sync and marketplace rows seeded at chosen times."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from agnes.models import new_id
from agnes.state import state_store


def seed_audit(
    timestamp: datetime,
    action: str,
    *,
    user_id: str | None = None,
    resource: str | None = None,
    params: dict[str, Any] | None = None,
    result: str = "ok",
    client_kind: str = "web",
    correlation_id: str | None = None,
    entry_id: str | None = None,
    params_before: dict[str, Any] | None = None,
) -> str:
    """One audit row written at ``timestamp`` (the model's insert always stamps now)."""
    entry_id = entry_id or new_id()
    with state_store().write() as con:
        con.execute(
            "INSERT INTO audit_log (id, timestamp, user_id, action, resource, params, result, client_kind,"
            " correlation_id, params_before) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                entry_id,
                timestamp,
                user_id,
                action,
                resource,
                json.dumps(params) if params is not None else None,
                result,
                client_kind,
                correlation_id,
                json.dumps(params_before) if params_before is not None else None,
            ],
        )
    return entry_id


def seed_sync(table_id: str, started_at: datetime, status: str) -> None:
    with state_store().write() as con:
        con.execute(
            "INSERT INTO sync_history (id, table_id, started_at, finished_at, status) VALUES (?, ?, ?, ?, ?)",
            [new_id(), table_id, started_at, started_at, status],
        )


def seed_marketplace(slug: str, *, error: str | None = None) -> None:
    with state_store().write() as con:
        con.execute(
            "INSERT INTO marketplace_registry (id, name, url, last_error) VALUES (?, ?, ?, ?)",
            [slug, slug.title(), f"https://example.com/{slug}.git", error],
        )


def audit_count(action: str | None = None) -> int:
    with state_store().read() as con:
        if action is None:
            return con.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        return con.execute("SELECT count(*) FROM audit_log WHERE action = ?", [action]).fetchone()[0]
