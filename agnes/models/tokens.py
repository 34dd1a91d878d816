"""``personal_access_tokens`` (PATs) and ``magic_links``.

A PAT is ``agnes_pat_`` + 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored; the token is shown once at creation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id, utcnow

TOKEN_PREFIX = "agnes_pat_"
# Characters of the token (after TOKEN_PREFIX) kept to recognise it in lists.
DISPLAY_CHARS = 6
# last_used_at/ip are rewritten at most this often per token unless the IP changes (seconds).
LAST_USED_RESOLUTION = 60


@dataclass(frozen=True)
class AccessToken(Record):
    id: str
    user_id: str
    user_email: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "status": self.status}

    @property
    def status(self) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= utcnow():
            return "expired"
        return "active"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_SELECT = """
SELECT t.id, t.user_id, u.email, t.name, t.prefix, t.created_at, t.expires_at,
       t.last_used_at, t.last_used_ip, t.revoked_at
FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
"""


def create_token(
    con: DuckDBPyConnection, user_id: str, name: str, *, expires_days: int | None
) -> tuple[AccessToken, str]:
    """Create a PAT; returns ``(record, raw_token)``. ``expires_days=None`` never expires."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id()
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days is not None else None
    con.execute(
        "INSERT INTO personal_access_tokens (id, user_id, name, token_hash, prefix, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [token_id, user_id, name.strip(), hash_token(raw), raw[: len(TOKEN_PREFIX) + DISPLAY_CHARS], expires_at],
    )
    record = get_token(con, token_id)
    assert record is not None
    return record, raw


def get_token(con: DuckDBPyConnection, token_id: str) -> AccessToken | None:
    row = con.execute(_SELECT + " WHERE t.id = ?", [token_id]).fetchone()
    return AccessToken(*row) if row else None


def list_tokens(con: DuckDBPyConnection, *, user_id: str | None = None) -> list[AccessToken]:
    """Tokens newest first; all users' when ``user_id`` is None."""
    if user_id is None:
        rows = con.execute(_SELECT + " ORDER BY t.created_at DESC").fetchall()
    else:
        rows = con.execute(_SELECT + " WHERE t.user_id = ? ORDER BY t.created_at DESC", [user_id]).fetchall()
    return [AccessToken(*r) for r in rows]


def revoke_token(con: DuckDBPyConnection, token_id: str) -> bool:
    """Mark a token revoked; returns False when it was already revoked or does not exist."""
    row = con.execute(
        "UPDATE personal_access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
        [utcnow(), token_id],
    ).fetchone()
    return row is not None


def revoke_user_tokens(con: DuckDBPyConnection, user_id: str) -> int:
    """Revoke every active token of a user; returns how many were revoked."""
    rows = con.execute(
        "UPDATE personal_access_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING id",
        [utcnow(), user_id],
    ).fetchall()
    return len(rows)


def lookup_token(con: DuckDBPyConnection, raw: str) -> AccessToken | None:
    """The token record for a raw token string, whatever its status (None if unknown)."""
    row = con.execute(_SELECT + " WHERE t.token_hash = ?", [hash_token(raw)]).fetchone()
    return AccessToken(*row) if row else None


def touch_token(con: DuckDBPyConnection, token: AccessToken, ip: str | None) -> bool:
    """Record a use; skips the write when the last one is recent and from the same IP.

    Returns True when the IP differs from the previously recorded one (a first use from a
    new address, which callers audit).
    """
    new_ip = token.last_used_ip is not None and ip != token.last_used_ip
    if touch_due(token, ip):
        con.execute(
            "UPDATE personal_access_tokens SET last_used_at = ?, last_used_ip = ? WHERE id = ?",
            [utcnow(), ip, token.id],
        )
    return new_ip


def touch_due(token: AccessToken, ip: str | None) -> bool:
    """Whether :func:`touch_token` would write (callers skip the write unit otherwise)."""
    stale = token.last_used_at is None or (utcnow() - token.last_used_at).total_seconds() >= LAST_USED_RESOLUTION
    return stale or token.last_used_ip is None or ip != token.last_used_ip


def create_magic_link(con: DuckDBPyConnection, user_id: str) -> str:
    """Record a fresh single-use nonce for a sign-in link and return it."""
    nonce = secrets.token_urlsafe(24)
    con.execute("INSERT INTO magic_links (nonce, user_id) VALUES (?, ?)", [nonce, user_id])
    return nonce


def consume_magic_link(con: DuckDBPyConnection, nonce: str, *, max_age_seconds: int) -> str | None:
    """Mark a nonce used; returns its user id, or None if unknown, used or older than max age.

    The conditional UPDATE makes concurrent uses race safely: only one returns the user.
    """
    cutoff = utcnow() - timedelta(seconds=max_age_seconds)
    row = con.execute(
        "UPDATE magic_links SET used_at = ? WHERE nonce = ? AND used_at IS NULL AND created_at > ? RETURNING user_id",
        [utcnow(), nonce, cutoff],
    ).fetchone()
    return row[0] if row else None


def prune_magic_links(con: DuckDBPyConnection, *, older_than_seconds: int) -> int:
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    rows = con.execute("DELETE FROM magic_links WHERE created_at < ? RETURNING nonce", [cutoff]).fetchall()
    return len(rows)
