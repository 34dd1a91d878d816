"""Page data of ``/data`` and ``/data/<id>`` (and their JSON twins ``/api/data`` and ``/api/data/<id>``):
the tables a user may query, with what each holds and how to use it.

Analysts see the tables granted to one of their groups; admins see every table with its sync state
(``can_access``). The table page's guard (``resource_access_required``) answers 403 for a table that
exists but is not granted, 404 for one that does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agnes.access import Principal, ResourceType, can_access
from agnes.data import distribution, table_index
from agnes.data.distribution import Preview
from agnes.data.remote import remote_overview
from agnes.errors import NotFound
from agnes.jobs import JobStatus
from agnes.jobs.tables import current_sync_job, sync_job_id
from agnes.models.tables import SyncState, TableEntry
from agnes.units import filesize


@dataclass(frozen=True)
class DataRow:
    """One table as the catalog lists it."""

    entry: TableEntry
    state: SyncState | None

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def size(self) -> str:
        return filesize(self.state.size_bytes) if self.state and self.state.size_bytes else ""

    def to_dict(self) -> dict[str, Any]:
        s = self.state
        return {
            "id": self.entry.id,
            "name": self.entry.name,
            "description": self.entry.description,
            "query_mode": self.entry.query_mode,
            "rows": s.rows if s else None,
            "size_bytes": s.size_bytes if s else None,
            "last_sync": s.last_success.isoformat() if s and s.last_success else None,
            "status": s.status if s else "never",
            "error": s.error if s and s.status != "ok" else None,
            "warning": s.warning if s and s.status == "ok" else None,
        }


@dataclass(frozen=True)
class DataCatalog:
    """``/data``: the tables the viewer may query matching ``q`` (every word, in name, id or description)."""

    rows: list[DataRow]
    q: str
    total: int  # tables the viewer may query, before the search
    is_admin: bool

    def to_dict(self) -> dict[str, Any]:
        return {"tables": [r.to_dict() for r in self.rows], "q": self.q, "total": self.total}


def _matches(entry: TableEntry, words: list[str]) -> bool:
    text = f"{entry.id} {entry.name} {entry.description}".casefold()
    return all(w in text for w in words)


def catalog_page(principal: Principal, q: str = "") -> DataCatalog:
    """The viewer's tables (all of them for admins), filtered by ``q``, by id."""
    index = table_index.current()
    mine = [
        DataRow(entry, index.states.get(table_id))
        for table_id, entry in sorted(index.tables.items())
        if can_access(principal, ResourceType.TABLE, table_id)
    ]
    words = q.casefold().split()
    rows = [r for r in mine if _matches(r.entry, words)] if words else mine
    return DataCatalog(rows, q.strip(), len(mine), principal.is_admin)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nulls: int | None  # None when unknown (remote tables)


@dataclass(frozen=True)
class DataTablePage:
    """``/data/<id>``: facts, schema, the first rows and the commands that use the table.

    ``job`` (admins only): the table's sync job if the backend knows it; the page's live region
    refreshes on ``refresh_on`` (the end of that job). ``remote``: for a table kept at its source,
    :func:`agnes.data.remote.remote_overview` (relation, estimates, the snapshot line); its
    sample, read at the source, is the page's preview.
    """

    row: DataRow
    preview: Preview
    job: JobStatus | None
    remote: dict[str, Any] | None = None

    @property
    def refresh_on(self) -> str:
        return sync_job_id(self.row.id)

    @property
    def columns(self) -> list[Column]:
        known = self.row.state.columns if self.row.state and self.row.state.columns else self.preview.columns
        return [Column(str(c[0]), str(c[1]), self.preview.nulls.get(str(c[0]))) for c in known]

    @property
    def commands(self) -> list[str]:
        """How to use the table from a terminal (``agnes pull`` then ``agnes query``), or on the
        server for a remote table."""
        table = self.row.id
        if self.remote is not None:
            return [
                f"agnes sample {table} -n 10",
                f'agnes query --remote "SELECT count(*) FROM {table}"',
                f"{self.remote['snapshot_command']}",
            ]
        return [f"agnes pull --table {table}", f'agnes query "SELECT * FROM {table} LIMIT 10"']

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.row.to_dict(),
            "columns": [{"name": c.name, "type": c.type, "nulls": c.nulls} for c in self.columns],
            "preview": {
                "columns": [name for name, _ in self.preview.columns],
                "rows": self.preview.rows,
                "error": self.preview.error,
            },
            "commands": self.commands,
            "job": self.job.to_dict() if self.job else None,
            "remote": {k: v for k, v in self.remote.items() if k != "sample"} if self.remote else None,
        }


def data_table_page(principal: Principal, table_id: str) -> DataTablePage:
    """Raises NotFound (``table_not_found``); access is checked by the view's guard."""
    index = table_index.current()
    entry = index.tables.get(table_id)
    if entry is None:
        raise NotFound("table_not_found", f"No table '{table_id}'.")
    job = current_sync_job(table_id) if principal.is_admin else None
    row = DataRow(entry, index.states.get(table_id))
    remote = remote_overview(table_id) if entry.query_mode == "remote" else None
    if remote is None:
        return DataTablePage(row, distribution.preview(table_id), job)
    sample = remote["sample"] or {"columns": [], "rows": []}
    preview = Preview(
        [(c["name"], c["type"]) for c in sample["columns"]],
        [[None if v is None else str(v) for v in r] for r in sample["rows"]],
        {},
        remote["sample_error"] or (None if remote["sample"] else "not synced yet"),
    )
    return DataTablePage(row, preview, job, remote)
