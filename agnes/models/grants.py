"""``resource_grants``: one generic (group, resource type, resource id) triple."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id


@dataclass(frozen=True)
class Grant(Record):
    id: str
    group_id: str
    group_name: str
    resource_type: str
    resource_id: str
    assigned_at: datetime
    assigned_by: str | None


_SELECT = """
SELECT r.id, r.group_id, g.name, r.resource_type, r.resource_id, r.assigned_at, r.assigned_by
FROM resource_grants r JOIN user_groups g ON g.id = r.group_id
"""


def list_grants(
    con: DuckDBPyConnection, *, resource_type: str | None = None, group_id: str | None = None
) -> list[Grant]:
    clauses, params = [], []
    if resource_type:
        clauses.append("r.resource_type = ?")
        params.append(resource_type)
    if group_id:
        clauses.append("r.group_id = ?")
        params.append(group_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = con.execute(_SELECT + where + " ORDER BY r.resource_type, r.resource_id, lower(g.name)", params).fetchall()
    return [Grant(*r) for r in rows]


def get_grant(con: DuckDBPyConnection, grant_id: str) -> Grant | None:
    row = con.execute(_SELECT + " WHERE r.id = ?", [grant_id]).fetchone()
    return Grant(*row) if row else None


def find_grant(con: DuckDBPyConnection, group_id: str, resource_type: str, resource_id: str) -> Grant | None:
    row = con.execute(
        _SELECT + " WHERE r.group_id = ? AND r.resource_type = ? AND r.resource_id = ?",
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
) -> Grant:
    """Insert a grant. Raises ``duckdb.ConstraintException`` if the triple exists."""
    grant_id = new_id()
    con.execute(
        "INSERT INTO resource_grants (id, group_id, resource_type, resource_id, assigned_by) VALUES (?, ?, ?, ?, ?)",
        [grant_id, group_id, resource_type, resource_id, assigned_by],
    )
    grant = get_grant(con, grant_id)
    assert grant is not None
    return grant


def delete_grant(con: DuckDBPyConnection, grant_id: str) -> None:
    con.execute("DELETE FROM resource_grants WHERE id = ?", [grant_id])


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
