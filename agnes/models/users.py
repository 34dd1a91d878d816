"""``users``: people who can sign in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id, utcnow

_COLUMNS = "id, email, name, active, created_at, last_login_at"


@dataclass(frozen=True)
class User(Record):
    id: str
    email: str
    name: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def display_name(self) -> str:
        return self.name or self.email


def normalize_email(email: str) -> str:
    """Trim and lower-case an address; emails are compared case-insensitively."""
    return email.strip().lower()


def get_user(con: DuckDBPyConnection, user_id: str) -> User | None:
    row = con.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", [user_id]).fetchone()
    return User(*row) if row else None


def get_user_by_email(con: DuckDBPyConnection, email: str) -> User | None:
    row = con.execute(f"SELECT {_COLUMNS} FROM users WHERE email = ?", [normalize_email(email)]).fetchone()
    return User(*row) if row else None


def list_users(con: DuckDBPyConnection, *, query: str = "", limit: int = 500) -> list[User]:
    """Users ordered by email; ``query`` filters on email or name (case-insensitive substring)."""
    pattern = f"%{query.strip().lower()}%"
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM users WHERE lower(email) LIKE ? OR lower(name) LIKE ? ORDER BY email LIMIT ?",
        [pattern, pattern, limit],
    ).fetchall()
    return [User(*r) for r in rows]


def create_user(con: DuckDBPyConnection, email: str, name: str = "") -> User:
    """Insert a user. Raises ``duckdb.ConstraintException`` if the email exists."""
    user_id = new_id()
    con.execute(
        "INSERT INTO users (id, email, name) VALUES (?, ?, ?)",
        [user_id, normalize_email(email), name.strip()],
    )
    user = get_user(con, user_id)
    assert user is not None
    return user


def get_or_create_user(con: DuckDBPyConnection, email: str, name: str = "") -> tuple[User, bool]:
    """Return ``(user, created)`` for an address, creating the user on first sight."""
    existing = get_user_by_email(con, email)
    if existing:
        return existing, False
    return create_user(con, email, name), True


def set_user_active(con: DuckDBPyConnection, user_id: str, active: bool) -> None:
    con.execute(
        "UPDATE users SET active = ?, deactivated_at = ?, updated_at = ? WHERE id = ?",
        [active, None if active else utcnow(), utcnow(), user_id],
    )


def record_login(con: DuckDBPyConnection, user_id: str) -> None:
    con.execute("UPDATE users SET last_login_at = ? WHERE id = ?", [utcnow(), user_id])
