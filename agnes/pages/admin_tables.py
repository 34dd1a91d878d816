"""Page data of ``/admin/tables/<id>`` (and its JSON twin ``/api/admin/registry/<id>``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agnes.data import registration
from agnes.data.registration import TableView
from agnes.data.remote import remote_overview
from agnes.jobs import JobStatus
from agnes.jobs.tables import current_sync_job, sync_job_id
from agnes.models.tables import SyncRun


@dataclass(frozen=True)
class TablePage:
    """One table: settings, last sync, sync history and the sync job (if the backend knows it); for
    a table kept at its source, its estimate, the snapshot line and a sample read there (``remote``)."""

    view: TableView
    history: list[SyncRun]
    job: JobStatus | None
    remote: dict[str, Any] | None = None

    @property
    def refresh_on(self) -> str:
        """The event the page's sync fragment refreshes on: the end of this table's sync job."""
        return sync_job_id(self.view.table.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.view.to_dict(),
            "history": [h.to_dict() for h in self.history],
            "job": self.job.to_dict() if self.job else None,
            "remote": self.remote,
        }


def table_page(table_id: str) -> TablePage:
    """Raises NotFound (``table_not_found``)."""
    view, history = registration.table_detail(table_id)
    return TablePage(view, history, current_sync_job(table_id), remote_overview(table_id))
