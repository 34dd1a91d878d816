"""Page data of the Syncs tab of ``/admin/activity`` (twin ``GET /api/admin/activity/sync``, CLI
``agnes admin activity sync``): every table (last sync, status, rows, duration, next due, last
error) and every marketplace (last sync, plugins, last change), each with its running sync job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agnes.data.schedules import parse_schedule
from agnes.jobs import JobStatus
from agnes.jobs import marketplace as marketplace_jobs
from agnes.jobs import tables as table_jobs
from agnes.models import json_value, utcnow
from agnes.models import marketplace_history as history_model
from agnes.models import marketplaces as marketplace_model
from agnes.models import tables as tables_model
from agnes.state import state_store


@dataclass(frozen=True)
class TableSync:
    id: str
    name: str
    schedule: str | None
    status: str | None  # ok | failed | None (never synced)
    last_attempt: datetime | None
    last_success: datetime | None
    rows: int | None
    duration_ms: float | None
    next_due: datetime | None  # None: on demand only
    error: str | None
    job: JobStatus | None

    def to_dict(self) -> dict[str, Any]:
        data = {k: json_value(v) for k, v in self.__dict__.items() if k != "job"}
        data["job"] = self.job.to_dict() if self.job else None
        return data


@dataclass(frozen=True)
class MarketplaceSync:
    id: str
    name: str
    last_synced_at: datetime | None
    plugins: int
    error: str | None
    last_change_at: datetime | None
    added: list[str]
    removed: list[str]
    changed: list[dict[str, Any]]
    job: JobStatus | None

    def to_dict(self) -> dict[str, Any]:
        data = {k: json_value(v) for k, v in self.__dict__.items() if k != "job"}
        data["job"] = self.job.to_dict() if self.job else None
        return data


@dataclass(frozen=True)
class SyncsPage:
    tables: list[TableSync]
    marketplaces: list[MarketplaceSync]

    def to_dict(self) -> dict[str, Any]:
        return {"tables": [t.to_dict() for t in self.tables], "marketplaces": [m.to_dict() for m in self.marketplaces]}


def _live(job: JobStatus | None) -> JobStatus | None:
    """A job worth showing: queued or running, or one the queue cannot be asked about."""
    return job if job is not None and (job.state.active or job.state.value == "unreachable") else None


def syncs_page(now: datetime | None = None) -> SyncsPage:
    now = now or utcnow()
    with state_store().read() as con:
        tables = tables_model.list_tables(con)
        states = tables_model.list_sync_states(con)
        runs = tables_model.latest_runs(con)
        marketplaces = marketplace_model.list_marketplaces(con)
        changes = history_model.latest_changes(con)
    table_rows = []
    for table in tables:
        state = states.get(table.id)
        schedule = parse_schedule(table.schedule) if table.schedule else None
        run = runs.get(table.id)
        table_rows.append(
            TableSync(
                id=table.id,
                name=table.name,
                schedule=table.schedule,
                status=state.status if state else None,
                last_attempt=state.last_attempt if state else None,
                last_success=state.last_success if state else None,
                rows=state.rows if state else None,
                duration_ms=run.duration_ms if run else None,
                next_due=schedule.next_run(state.last_attempt if state else None, now) if schedule else None,
                error=state.error if state and state.status == "failed" else None,
                job=_live(table_jobs.current_sync_job(table.id)),
            )
        )
    market_rows = []
    for market in marketplaces:
        change = changes.get(market.id)
        market_rows.append(
            MarketplaceSync(
                id=market.id,
                name=market.name,
                last_synced_at=market.last_synced_at,
                plugins=market.plugin_count,
                error=market.last_error,
                last_change_at=change.finished_at if change else None,
                added=change.added if change else [],
                removed=change.removed if change else [],
                changed=change.changed if change else [],
                job=_live(marketplace_jobs.current_sync_job(market.id)),
            )
        )
    return SyncsPage(table_rows, market_rows)
