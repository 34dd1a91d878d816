"""``user_groups`` and ``user_group_members``.

Two system groups are seeded by migration 0001 with fixed ids: ``admin`` (passes every
app-level authorization check) and ``everyone`` (every active user, implicitly: there are no
member rows for it, so it cannot drift).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id, utcnow

ADMIN_GROUP_ID = "admin"
EVERYONE_GROUP_ID = "everyone"


class MembershipSource(StrEnum):
    """Who wrote a membership row; each writer only touches its own rows."""

    ADMIN = "admin"
    GOOGLE_SYNC = "google_sync"
    SYSTEM_SEED = "system_seed"


@dataclass(frozen=True)
class Group(Record):
    id: str
    name: str
    description: str
    is_system: bool
    member_count: int
    grant_count: int
    counted_member_count: int | None
    counted_at: datetime | None
    created_at: datetime
    google_email: str | None = None

    @property
    def origin(self) -> str:
        """``system`` (Admin, Everyone), ``google`` (mirrors a Workspace group) or ``custom``."""
        if self.is_system:
            return "system"
        return "google" if self.google_email else "custom"

    @property
    def google_managed(self) -> bool:
        """Renamed and deleted only through Google Workspace."""
        return bool(self.google_email)

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "origin": self.origin}


@dataclass(frozen=True)
class Membership(Record):
    """One of a user's groups with the sources of their membership (``[]`` for Everyone)."""

    group_id: str
    group_name: str
    origin: str
    sources: tuple[str, ...]
    added_at: datetime | None
    added_by: str | None


@dataclass(frozen=True)
class Member(Record):
    user_id: str
    email: str
    name: str
    active: bool
    sources: tuple[str, ...]
    added_at: datetime | None


# Groups with their counts, set-based (one aggregate per table, not a subquery per group).
_GROUP_SELECT = """
SELECT g.id, g.name, g.description, g.is_system,
       CASE WHEN g.id = 'everyone' THEN (SELECT count(*) FROM users WHERE active) ELSE coalesce(m.n, 0) END,
       coalesce(r.n, 0), g.member_count, g.counted_at, g.created_at, g.google_email
FROM user_groups g
LEFT JOIN (SELECT group_id, count(DISTINCT user_id) AS n FROM user_group_members GROUP BY group_id) m
       ON m.group_id = g.id
LEFT JOIN (SELECT group_id, count(*) AS n FROM resource_grants GROUP BY group_id) r ON r.group_id = g.id
"""
# One group without counts (member_count and grant_count read 0): the guards of every change.
_GROUP_PLAIN = """
SELECT g.id, g.name, g.description, g.is_system, 0, 0, g.member_count, g.counted_at, g.created_at, g.google_email
FROM user_groups g
"""


def list_groups(con: DuckDBPyConnection) -> list[Group]:
    """All groups with member and grant counts, system groups first, then by name (case-insensitive)."""
    rows = con.execute(_GROUP_SELECT + " ORDER BY g.is_system DESC, lower(g.name)").fetchall()
    return [Group(*r) for r in rows]


def group_names(con: DuckDBPyConnection) -> dict[str, str]:
    """``{group id: name}`` of every group, system groups first, then by name."""
    rows = con.execute("SELECT id, name FROM user_groups ORDER BY is_system DESC, lower(name)").fetchall()
    return {r[0]: r[1] for r in rows}


def get_group(con: DuckDBPyConnection, group_id: str, *, counts: bool = False) -> Group | None:
    """One group; with ``counts`` its member and grant counts too (else they read 0)."""
    sql = (_GROUP_SELECT if counts else _GROUP_PLAIN) + " WHERE g.id = ?"
    row = con.execute(sql, [group_id]).fetchone()
    return Group(*row) if row else None


def get_group_by_name(con: DuckDBPyConnection, name: str) -> Group | None:
    """A group by case-insensitive name (without counts)."""
    row = con.execute(_GROUP_PLAIN + " WHERE lower(g.name) = lower(?)", [name.strip()]).fetchone()
    return Group(*row) if row else None


def create_group(con: DuckDBPyConnection, name: str, description: str = "", *, created_by: str | None = None) -> Group:
    """Insert a group. Raises ``duckdb.ConstraintException`` when the name is taken."""
    group_id = new_id()
    con.execute(
        "INSERT INTO user_groups (id, name, description, created_by) VALUES (?, ?, ?, ?)",
        [group_id, name.strip(), description.strip(), created_by],
    )
    group = get_group(con, group_id)
    assert group is not None
    return group


def update_group(
    con: DuckDBPyConnection, group_id: str, *, name: str | None = None, description: str | None = None
) -> None:
    if name is not None:
        con.execute("UPDATE user_groups SET name = ? WHERE id = ?", [name.strip(), group_id])
    if description is not None:
        con.execute("UPDATE user_groups SET description = ? WHERE id = ?", [description.strip(), group_id])


def delete_group(con: DuckDBPyConnection, group_id: str) -> None:
    """Delete a group with its memberships and grants (DuckDB has no ON DELETE CASCADE)."""
    con.execute("DELETE FROM user_group_members WHERE group_id = ?", [group_id])
    con.execute("DELETE FROM resource_grants WHERE group_id = ?", [group_id])
    con.execute("DELETE FROM user_groups WHERE id = ?", [group_id])


def list_members(con: DuckDBPyConnection, group_id: str, *, limit: int | None = None) -> list[Member]:
    """Members of a group ordered by email (the first ``limit``); for Everyone, every active user."""
    if group_id == EVERYONE_GROUP_ID:
        sql = "SELECT id, email, name, active, [] AS sources, NULL FROM users WHERE active ORDER BY email"
        params: list[object] = []
    else:
        sql = """
            SELECT u.id, u.email, u.name, u.active, list(m.source ORDER BY m.source), min(m.added_at)
            FROM user_group_members m JOIN users u ON u.id = m.user_id
            WHERE m.group_id = ?
            GROUP BY u.id, u.email, u.name, u.active
            ORDER BY u.email
            """
        params = [group_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = con.execute(sql, params).fetchall()
    return [Member(r[0], r[1], r[2], r[3], tuple(r[4]), r[5]) for r in rows]


def list_memberships(con: DuckDBPyConnection, user_id: str) -> list[Membership]:
    """A user's groups (Everyone first, then by name) with the sources of each membership."""
    rows = con.execute(
        """
        SELECT g.id, g.name,
               CASE WHEN g.is_system THEN 'system' WHEN g.google_email IS NOT NULL THEN 'google' ELSE 'custom' END,
               CASE WHEN g.id = ? THEN [] ELSE list(m.source ORDER BY m.source) END,
               min(m.added_at), min(m.added_by)
        FROM user_groups g LEFT JOIN user_group_members m ON m.group_id = g.id AND m.user_id = ?
        WHERE g.id = ? OR m.user_id IS NOT NULL
        GROUP BY g.id, g.name, g.is_system, g.google_email
        ORDER BY g.id <> ?, lower(g.name)
        """,
        [EVERYONE_GROUP_ID, user_id, EVERYONE_GROUP_ID, EVERYONE_GROUP_ID],
    ).fetchall()
    return [Membership(r[0], r[1], r[2], tuple(r[3]), r[4], r[5]) for r in rows]


def member_sources(con: DuckDBPyConnection, user_id: str, group_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """``{group_id: sources}`` of the user's rows in those groups (Everyone: ``()``, automatic)."""
    rows = con.execute(
        "SELECT group_id, list(source ORDER BY source) FROM user_group_members"
        " WHERE user_id = ? AND list_contains(?, group_id) GROUP BY group_id",
        [user_id, group_ids],
    ).fetchall()
    found = {r[0]: tuple(r[1]) for r in rows}
    if EVERYONE_GROUP_ID in group_ids:
        found[EVERYONE_GROUP_ID] = ()
    return found


def set_google_email(con: DuckDBPyConnection, group_id: str, email: str | None) -> None:
    con.execute("UPDATE user_groups SET google_email = ? WHERE id = ?", [email, group_id])


def get_group_by_google_email(con: DuckDBPyConnection, email: str) -> Group | None:
    row = con.execute(_GROUP_PLAIN + " WHERE g.google_email = ?", [email.strip().lower()]).fetchone()
    return Group(*row) if row else None


def google_memberships(con: DuckDBPyConnection, user_id: str | None = None) -> set[tuple[str, str]]:
    """``{(user_id, group_id)}`` of the rows Google sync wrote (one user's, or everyone's)."""
    sql = "SELECT user_id, group_id FROM user_group_members WHERE source = 'google_sync'"
    params: list[object] = []
    if user_id is not None:
        sql += " AND user_id = ?"
        params.append(user_id)
    return {(r[0], r[1]) for r in con.execute(sql, params).fetchall()}


def is_member(con: DuckDBPyConnection, user_id: str, group_id: str) -> bool:
    if group_id == EVERYONE_GROUP_ID:
        return True
    row = con.execute(
        "SELECT 1 FROM user_group_members WHERE user_id = ? AND group_id = ? LIMIT 1", [user_id, group_id]
    ).fetchone()
    return row is not None


def add_member(
    con: DuckDBPyConnection,
    group_id: str,
    user_id: str,
    *,
    source: MembershipSource = MembershipSource.ADMIN,
    added_by: str | None = None,
) -> bool:
    """Add a membership row for ``source``; returns False if that row already existed."""
    row = con.execute(
        "INSERT INTO user_group_members (user_id, group_id, source, added_by) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING user_id",
        [user_id, group_id, str(source), added_by],
    ).fetchone()
    return row is not None


def remove_member(
    con: DuckDBPyConnection, group_id: str, user_id: str, *, sources: tuple[MembershipSource, ...]
) -> int:
    """Delete the membership rows written by ``sources``; returns how many went."""
    placeholders = ", ".join("?" for _ in sources)
    rows = con.execute(
        f"DELETE FROM user_group_members WHERE group_id = ? AND user_id = ? AND source IN ({placeholders})"
        " RETURNING user_id",
        [group_id, user_id, *[str(s) for s in sources]],
    ).fetchall()
    return len(rows)


def list_user_group_ids(con: DuckDBPyConnection, user_id: str) -> list[str]:
    """Ids of every group the user is in, Everyone included."""
    rows = con.execute(
        "SELECT DISTINCT group_id FROM user_group_members WHERE user_id = ? ORDER BY group_id", [user_id]
    ).fetchall()
    return [EVERYONE_GROUP_ID, *[r[0] for r in rows if r[0] != EVERYONE_GROUP_ID]]


def group_names_by_user(con: DuckDBPyConnection, user_ids: list[str]) -> dict[str, list[str]]:
    """``{user_id: [group names]}`` for many users in one query, Everyone first, then by name."""
    if not user_ids:
        return {}
    everyone = con.execute("SELECT name FROM user_groups WHERE id = ?", [EVERYONE_GROUP_ID]).fetchone()
    names = {user_id: [everyone[0]] if everyone else [] for user_id in user_ids}
    rows = con.execute(
        "SELECT m.user_id, list(DISTINCT g.name ORDER BY g.name) FROM user_group_members m"
        " JOIN user_groups g ON g.id = m.group_id WHERE list_contains(?, m.user_id) AND m.group_id <> ?"
        " GROUP BY m.user_id",
        [user_ids, EVERYONE_GROUP_ID],
    ).fetchall()
    for user_id, group_names in rows:
        names[user_id] += list(group_names)
    return names


def list_user_groups(con: DuckDBPyConnection, user_id: str) -> list[Group]:
    ids = list_user_group_ids(con, user_id)
    return [g for g in list_groups(con) if g.id in ids]


def count_active_admins(con: DuckDBPyConnection) -> int:
    row = con.execute(
        "SELECT count(DISTINCT m.user_id) FROM user_group_members m JOIN users u ON u.id = m.user_id"
        " WHERE m.group_id = ? AND u.active",
        [ADMIN_GROUP_ID],
    ).fetchone()
    return int(row[0]) if row else 0


def record_member_count(con: DuckDBPyConnection, group_id: str, count: int) -> None:
    con.execute("UPDATE user_groups SET member_count = ?, counted_at = ? WHERE id = ?", [count, utcnow(), group_id])


def users_in_groups(
    con: DuckDBPyConnection, group_ids: set[str], *, limit: int, offset: int = 0
) -> tuple[list[tuple[str, str, str, list[str]]], int]:
    """Active users who are in any of ``group_ids`` (Everyone: every active user), a page of them by
    email with the names of those groups they are in: ``([(id, email, name, [group names])], total)``."""
    ids = sorted(group_ids)
    everyone = EVERYONE_GROUP_ID in group_ids
    base = f"""
        FROM users u
        LEFT JOIN user_group_members m ON m.user_id = u.id AND list_contains(?, m.group_id)
        LEFT JOIN user_groups g ON g.id = m.group_id
        WHERE u.active AND ({"TRUE" if everyone else "m.user_id IS NOT NULL"})
    """
    total = con.execute(f"SELECT count(DISTINCT u.id) {base}", [ids]).fetchone()
    rows = con.execute(
        f"SELECT u.id, u.email, u.name, list(DISTINCT g.name ORDER BY g.name) FILTER (WHERE g.name IS NOT NULL)"
        f" {base} GROUP BY u.id, u.email, u.name ORDER BY u.email LIMIT ? OFFSET ?",
        [ids, limit, offset],
    ).fetchall()
    everyone_name = "Everyone" if everyone else None
    out = [(r[0], r[1], r[2], ([everyone_name] if everyone_name else []) + list(r[3] or [])) for r in rows]
    return out, int(total[0]) if total else 0
