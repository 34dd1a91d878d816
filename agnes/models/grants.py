"""``resource_grants``: one generic (group, resource type, resource id) triple.

``origin`` says who made a grant: ``manual`` (an admin, the API, the CLI) or ``system_fanout``
(marking a plugin system granted it to every group; groups created while it is system get it too).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id

MANUAL = "manual"
SYSTEM_FANOUT = "system_fanout"
# SQL for a fresh 16-hex-character id, like agnes.models.new_id (set-based inserts).
NEW_ID_SQL = "substr(replace(CAST(gen_random_uuid() AS VARCHAR), '-', ''), 1, 16)"


@dataclass(frozen=True)
class Grant(Record):
    id: str
    group_id: str
    group_name: str
    resource_type: str
    resource_id: str
    assigned_at: datetime
    assigned_by: str | None
    origin: str = MANUAL
    assigned_by_email: str | None = None


_SELECT_ONE = """
SELECT r.id, r.group_id, g.name, r.resource_type, r.resource_id, r.assigned_at, r.assigned_by, r.origin, NULL
FROM resource_grants r JOIN user_groups g ON g.id = r.group_id
"""


def list_grants(
    con: DuckDBPyConnection,
    *,
    resource_type: str | None = None,
    group_id: str | None = None,
    resource_id: str | None = None,
    emails: bool = True,
) -> list[Grant]:
    """Grants by type, id, group, with the granting admin's email (unless ``emails`` is False)."""
    clauses, params = [], []
    if resource_type:
        clauses.append("r.resource_type = ?")
        params.append(resource_type)
    if group_id:
        clauses.append("r.group_id = ?")
        params.append(group_id)
    if resource_id:
        clauses.append("r.resource_id = ?")
        params.append(resource_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = con.execute(
        _SELECT_ONE + where + " ORDER BY r.resource_type, r.resource_id, lower(g.name)", params
    ).fetchall()
    found = [Grant(*r) for r in rows]
    if not emails or not found:
        return found
    # Point lookups of the few granting admins (a join would scan every user).
    ids = sorted({g.assigned_by for g in found if g.assigned_by})
    placeholders = ", ".join("?" for _ in ids)
    by_id = (
        dict(con.execute(f"SELECT id, email FROM users WHERE id IN ({placeholders})", ids).fetchall()) if ids else {}
    )
    return [replace(g, assigned_by_email=by_id.get(g.assigned_by or "")) for g in found]


def get_grant(con: DuckDBPyConnection, grant_id: str) -> Grant | None:
    row = con.execute(_SELECT_ONE + " WHERE r.id = ?", [grant_id]).fetchone()
    return Grant(*row) if row else None


def find_grant(con: DuckDBPyConnection, group_id: str, resource_type: str, resource_id: str) -> Grant | None:
    row = con.execute(
        _SELECT_ONE + " WHERE r.group_id = ? AND r.resource_type = ? AND r.resource_id = ?",
        [group_id, resource_type, resource_id],
    ).fetchone()
    return Grant(*row) if row else None


def create_grant(
    con: DuckDBPyConnection,
    group_id: str,
    resource_type: str,
    resource_id: str,
    *,
    assigned_by: str | None = None,
    origin: str = MANUAL,
) -> Grant:
    """Insert a grant. Raises ``duckdb.ConstraintException`` if the triple exists."""
    grant_id = new_id()
    con.execute(
        "INSERT INTO resource_grants (id, group_id, resource_type, resource_id, assigned_by, origin)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [grant_id, group_id, resource_type, resource_id, assigned_by, origin],
    )
    grant = get_grant(con, grant_id)
    assert grant is not None
    return grant


def delete_grant(con: DuckDBPyConnection, grant_id: str) -> None:
    con.execute("DELETE FROM resource_grants WHERE id = ?", [grant_id])


def create_grants(
    con: DuckDBPyConnection, group_id: str, resource_type: str, resource_ids: list[str], *, assigned_by: str | None
) -> list[str]:
    """Grant many resources of one type to a group in one statement; returns the ids newly granted
    (those the group already had are left alone)."""
    if not resource_ids:
        return []
    rows = con.execute(
        f"INSERT INTO resource_grants (id, group_id, resource_type, resource_id, assigned_by, origin)"
        f" SELECT {NEW_ID_SQL}, ?, ?, rid, ?, ? FROM (SELECT DISTINCT unnest(?::VARCHAR[]) AS rid)"
        " ON CONFLICT DO NOTHING RETURNING resource_id",
        [group_id, resource_type, assigned_by, MANUAL, resource_ids],
    ).fetchall()
    return sorted(r[0] for r in rows)


def delete_grants(con: DuckDBPyConnection, group_id: str, resource_type: str, resource_ids: list[str]) -> list[str]:
    """Revoke many resources of one type from a group in one statement; returns the ids revoked."""
    if not resource_ids:
        return []
    rows = con.execute(
        "DELETE FROM resource_grants WHERE group_id = ? AND resource_type = ? AND list_contains(?, resource_id)"
        " RETURNING resource_id",
        [group_id, resource_type, resource_ids],
    ).fetchall()
    return sorted(r[0] for r in rows)


def fan_out(con: DuckDBPyConnection, resource_type: str, resource_id: str, *, assigned_by: str | None) -> int:
    """Grant a resource to every group that lacks it (origin ``system_fanout``), in one statement.
    Returns how many groups were granted."""
    rows = con.execute(
        f"INSERT INTO resource_grants (id, group_id, resource_type, resource_id, assigned_by, origin)"
        f" SELECT {NEW_ID_SQL}, g.id, ?, ?, ?, ? FROM user_groups g"
        " WHERE NOT EXISTS (SELECT 1 FROM resource_grants r WHERE r.group_id = g.id"
        " AND r.resource_type = ? AND r.resource_id = ?)"
        " RETURNING group_id",
        [resource_type, resource_id, assigned_by, SYSTEM_FANOUT, resource_type, resource_id],
    ).fetchall()
    return len(rows)


def count_by_origin(con: DuckDBPyConnection, resource_type: str, resource_id: str) -> dict[str, int]:
    """``{origin: grants}`` of one resource."""
    rows = con.execute(
        "SELECT origin, count(*) FROM resource_grants WHERE resource_type = ? AND resource_id = ? GROUP BY origin",
        [resource_type, resource_id],
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def delete_fanout(con: DuckDBPyConnection, resource_type: str, resource_id: str) -> int:
    """Delete the ``system_fanout`` grants of one resource; returns how many went."""
    rows = con.execute(
        "DELETE FROM resource_grants WHERE resource_type = ? AND resource_id = ? AND origin = ? RETURNING id",
        [resource_type, resource_id, SYSTEM_FANOUT],
    ).fetchall()
    return len(rows)


def granted_group_ids(con: DuckDBPyConnection, resource_type: str, resource_id: str) -> set[str]:
    """Groups granted one resource."""
    rows = con.execute(
        "SELECT group_id FROM resource_grants WHERE resource_type = ? AND resource_id = ?",
        [resource_type, resource_id],
    ).fetchall()
    return {r[0] for r in rows}


def granted_resource_ids(con: DuckDBPyConnection, group_ids: list[str], resource_type: str) -> set[str]:
    """Resource ids of one type granted to any of ``group_ids``."""
    if not group_ids:
        return set()
    rows = con.execute(
        "SELECT DISTINCT resource_id FROM resource_grants WHERE resource_type = ? AND list_contains(?, group_id)",
        [resource_type, group_ids],
    ).fetchall()
    return {r[0] for r in rows}


def groups_by_resource(con: DuckDBPyConnection, resource_type: str) -> dict[str, frozenset[str]]:
    """``{resource_id: group ids granted it}`` for every granted resource of one type."""
    rows = con.execute(
        "SELECT resource_id, list(group_id) FROM resource_grants WHERE resource_type = ? GROUP BY resource_id",
        [resource_type],
    ).fetchall()
    return {r[0]: frozenset(r[1]) for r in rows}


def effective_access(con: DuckDBPyConnection, group_ids: list[str]) -> list[dict[str, object]]:
    """Distinct ``{resource_type, resource_id, via_groups: [names]}`` granted to any of the groups."""
    if not group_ids:
        return []
    rows = con.execute(
        """
        SELECT r.resource_type, r.resource_id, list(DISTINCT g.name ORDER BY g.name)
        FROM resource_grants r JOIN user_groups g ON g.id = r.group_id
        WHERE list_contains(?, r.group_id)
        GROUP BY r.resource_type, r.resource_id
        ORDER BY r.resource_type, r.resource_id
        """,
        [group_ids],
    ).fetchall()
    return [{"resource_type": t, "resource_id": i, "via_groups": list(v)} for t, i, v in rows]
