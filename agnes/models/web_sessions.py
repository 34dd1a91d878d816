"""``web_sessions``: the server side of browser sessions.

The session cookie holds a random id (256 bits, URL-safe); only its SHA-256 is stored, so a copy
of the database cannot be replayed as a cookie. A row is usable until it expires or is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from duckdb import DuckDBPyConnection

from agnes.models import Record, utcnow


@dataclass(frozen=True)
class WebSession(Record):
    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > utcnow()


def session_hash(raw: str) -> str:
    """The stored id of a cookie's session id."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_session(con: DuckDBPyConnection, user_id: str, *, hours: int) -> str:
    """Start a session for ``user_id`` lasting ``hours``; returns the raw id for the cookie."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    con.execute(
        "INSERT INTO web_sessions (id, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        [session_hash(raw), user_id, now, now + timedelta(hours=hours)],
    )
    return raw


def get_session(con: DuckDBPyConnection, raw: str) -> WebSession | None:
    row = con.execute(
        "SELECT id, user_id, created_at, expires_at, revoked_at FROM web_sessions WHERE id = ?", [session_hash(raw)]
    ).fetchone()
    return WebSession(*row) if row else None


def revoke_session(con: DuckDBPyConnection, raw: str) -> bool:
    """Revoke one session; True when it was usable."""
    row = con.execute(
        "UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
        [utcnow(), session_hash(raw)],
    ).fetchone()
    return row is not None


def revoke_user_sessions(con: DuckDBPyConnection, user_id: str) -> int:
    """Revoke every session of a user; returns how many were open."""
    rows = con.execute(
        "UPDATE web_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING id",
        [utcnow(), user_id],
    ).fetchall()
    return len(rows)


def prune_sessions(con: DuckDBPyConnection, *, older_than: datetime) -> int:
    """Delete sessions that expired or were revoked before ``older_than``; returns how many."""
    rows = con.execute(
        "DELETE FROM web_sessions WHERE expires_at < ? OR revoked_at < ? RETURNING id", [older_than, older_than]
    ).fetchall()
    return len(rows)
