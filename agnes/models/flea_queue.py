"""The flea market's review queue (``/admin/flea``): versions with their entity, counts per status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import Record
from agnes.models.flea import VERSION_STATUSES

QUEUE_SORTS = {
    "oldest": "v.created_at, v.id",
    "newest": "v.created_at DESC, v.id DESC",
    "name": "e.name, v.number DESC, v.id",
    "size": "v.size_bytes DESC, v.id",
}


@dataclass(frozen=True)
class QueueRow(Record):
    version_id: str
    entity_id: str
    number: int
    status: str
    note: str
    decision: str | None
    size_bytes: int
    finding_count: int
    created_at: datetime
    name: str
    kind: str
    category: str
    entity_state: str
    owner_id: str
    owner_email: str | None
    owner_handle: str
    served_version: int | None


_QUEUE_COLUMNS = (
    "v.id, v.entity_id, v.number, v.status, v.note, v.decision, v.size_bytes,"
    " CAST(json_array_length(v.findings) AS INTEGER), v.created_at, e.name, e.kind, e.category, e.state, e.owner_id,"
    " u.email, coalesce(h.handle, ''), e.served_version"
)
_QUEUE_FROM = (
    " FROM flea_versions v JOIN flea_entities e ON e.id = v.entity_id"
    " LEFT JOIN users u ON u.id = e.owner_id LEFT JOIN flea_handles h ON h.user_id = e.owner_id"
)


def queue_counts(con: DuckDBPyConnection) -> dict[str, int]:
    """Versions per status (every status present, zero when none)."""
    found = dict(con.execute("SELECT status, count(*) FROM flea_versions GROUP BY status").fetchall())
    return {s: int(found.get(s, 0)) for s in VERSION_STATUSES}


def list_queue(
    con: DuckDBPyConnection,
    *,
    status: str = "",
    kind: str = "",
    q: str = "",
    sort: str = "oldest",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[QueueRow], int]:
    """A page of versions for the admin queue and the number matching."""
    where: list[str] = []
    params: list[Any] = []
    if status:
        where.append("v.status = ?")
        params.append(status)
    if kind:
        where.append("e.kind = ?")
        params.append(kind)
    if q:
        where.append("(e.name ILIKE ? ESCAPE '\\' OR u.email ILIKE ? ESCAPE '\\' OR h.handle ILIKE ? ESCAPE '\\')")
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        params += [like] * 3
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    # One statement: the page and (a window over the matching rows) how many match.
    rows = con.execute(
        f"SELECT {_QUEUE_COLUMNS}, count(*) OVER (){_QUEUE_FROM}{clause}"
        f" ORDER BY {QUEUE_SORTS.get(sort, QUEUE_SORTS['oldest'])} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    if rows:
        return [QueueRow(*r[:-1]) for r in rows], int(rows[0][-1])
    if not offset:
        return [], 0
    total = con.execute(f"SELECT count(*){_QUEUE_FROM}{clause}", params).fetchone()
    return [], int(total[0]) if total else 0
