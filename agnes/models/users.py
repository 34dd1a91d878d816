"""``users``: people who can sign in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id, utcnow

_COLUMNS = "id, email, name, active, created_at, last_login_at, sign_in_methods"
# Columns the users list may be sorted by (``sort`` values) and their SQL.
SORTS = {"email": "email", "last_sign_in": "last_login_at DESC NULLS LAST, email"}
# Account states the users list filters on (``status`` values).
STATUSES = ("active", "deactivated")


@dataclass(frozen=True)
class User(Record):
    id: str
    email: str
    name: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None
    sign_in_methods: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or self.email


def normalize_email(email: str) -> str:
    """Trim and lower-case an address; emails are compared case-insensitively."""
    return email.strip().lower()


def _user(row: tuple) -> User:  # type: ignore[type-arg]
    return User(*row[:6], tuple(row[6] or ()))


def get_user(con: DuckDBPyConnection, user_id: str) -> User | None:
    row = con.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", [user_id]).fetchone()
    return _user(row) if row else None


def get_user_by_email(con: DuckDBPyConnection, email: str) -> User | None:
    row = con.execute(f"SELECT {_COLUMNS} FROM users WHERE email = ?", [normalize_email(email)]).fetchone()
    return _user(row) if row else None


def list_users(
    con: DuckDBPyConnection,
    *,
    query: str = "",
    status: str = "",
    group_id: str = "",
    method: str = "",
    sort: str = "email",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[User], int]:
    """One page of users and the total that match, in two statements.

    Args:
        query: case-insensitive substring of the email or name.
        status: ``active``, ``deactivated`` or '' (both).
        group_id: members of that group only ('' any; ``everyone`` is every user).
        method: a sign-in method the user has used (``email_link``, ``google``), ``never`` for users
            who never signed in, or '' (any).
        sort: a key of :data:`SORTS`.
    """
    clauses = ["TRUE"]
    params: list[object] = []
    if query.strip():
        clauses.append("(lower(email) LIKE ? ESCAPE '\\' OR lower(name) LIKE ? ESCAPE '\\')")
        pattern = "%" + query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [pattern, pattern]
    if status in STATUSES:
        clauses.append("active" if status == "active" else "NOT active")
    if group_id and group_id != "everyone":
        clauses.append("id IN (SELECT user_id FROM user_group_members WHERE group_id = ?)")
        params.append(group_id)
    if method == "never":
        clauses.append("last_login_at IS NULL")
    elif method:
        clauses.append("list_contains(sign_in_methods, ?)")
        params.append(method)
    where = " WHERE " + " AND ".join(clauses)
    total_row = con.execute("SELECT count(*) FROM users" + where, params).fetchone()
    # SORTS values are fixed SQL written above; ``sort`` only picks one.
    order = SORTS.get(sort, SORTS["email"])
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM users{where} ORDER BY {order} LIMIT ? OFFSET ?", [*params, limit, offset]
    ).fetchall()
    return [_user(r) for r in rows], int(total_row[0]) if total_row else 0


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


def update_user_name(con: DuckDBPyConnection, user_id: str, name: str) -> None:
    con.execute("UPDATE users SET name = ?, updated_at = ? WHERE id = ?", [name.strip(), utcnow(), user_id])


def set_user_active(con: DuckDBPyConnection, user_id: str, active: bool) -> None:
    con.execute(
        "UPDATE users SET active = ?, deactivated_at = ?, updated_at = ? WHERE id = ?",
        [active, None if active else utcnow(), utcnow(), user_id],
    )


def record_login(con: DuckDBPyConnection, user_id: str, method: str | None = None) -> None:
    """Note a sign-in now, and ``method`` (``email_link``, ``google``) among the user's methods."""
    if method is None:
        con.execute("UPDATE users SET last_login_at = ? WHERE id = ?", [utcnow(), user_id])
        return
    con.execute(
        "UPDATE users SET last_login_at = ?,"
        " sign_in_methods = list_sort(list_distinct(list_append(sign_in_methods, ?))) WHERE id = ?",
        [utcnow(), method, user_id],
    )


def ids_by_email(con: DuckDBPyConnection, emails: list[str]) -> dict[str, str]:
    """``{email: user id}`` of the (lower-cased) addresses that have an account."""
    if not emails:
        return {}
    rows = con.execute("SELECT email, id FROM users WHERE list_contains(?, email)", [emails]).fetchall()
    return {r[0]: r[1] for r in rows}


def active_emails(con: DuckDBPyConnection) -> dict[str, str]:
    """``{user id: email}`` of every active user."""
    return {r[0]: r[1] for r in con.execute("SELECT id, email FROM users WHERE active").fetchall()}
