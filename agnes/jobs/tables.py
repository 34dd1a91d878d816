"""Table sync jobs: one table per job (``sync-table:<id>``), "sync now" and the schedule tick.

Starting syncs lives here (one in flight per table), so views start jobs through this module and
:mod:`agnes.data` never imports :mod:`agnes.jobs`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from agnes.data import registration
from agnes.data.sync import due_table_ids, record_interrupted, sync_table, tables_to_sync
from agnes.jobs import JobStatus, enqueue, lookup_job, require_queue, set_progress
from agnes.jobs.recovery import INTERRUPTED_MESSAGE, on_interrupted


def sync_job_id(table_id: str) -> str:
    """``sync-table:<id>``: one sync in flight per table."""
    return f"sync-table:{table_id}"


def start_sync(table_id: str, *, owner_id: str | None, triggered_by: str | None = None) -> JobStatus:
    """Queue a sync of one table (or return the one in flight). Raises NotFound (``table_not_found``)."""
    registration.get_table(table_id)
    return _enqueue(table_id, owner_id=owner_id, triggered_by=triggered_by)


def _enqueue(table_id: str, *, owner_id: str | None, triggered_by: str | None) -> JobStatus:
    return enqueue(
        run_sync_table,
        table_id,
        triggered_by,
        job_id=sync_job_id(table_id),
        description=f"Sync table {table_id}",
        owner_id=owner_id,
        timeout=int(current_app.config["AGNES_SYNC_TIMEOUT"]),
    )


def start_syncs(table_ids: list[str] | None, *, actor_id: str | None) -> tuple[list[JobStatus], list[str]]:
    """Sync now: the listed tables, or (no list) every table that is due or unscheduled.

    Returns ``(jobs, skipped_ids)``. Raises Invalid for ids that are not registered,
    QueueUnavailable when Redis cannot be reached.
    """
    chosen, skipped = tables_to_sync(table_ids)
    if chosen:
        require_queue()  # all or none: a queue lost halfway must not start half of them
    return [_enqueue(t, owner_id=actor_id, triggered_by=actor_id) for t in chosen], skipped


def current_sync_job(table_id: str) -> JobStatus | None:
    """The latest sync job of a table, if the job backend still knows it (``unreachable`` when Redis is down)."""
    return lookup_job(sync_job_id(table_id))


def run_sync_table(table_id: str, triggered_by: str | None = None) -> dict[str, Any]:
    """Extract and publish one table, then rebuild its source's views. Idempotent.

    Raises ``SyncFailed`` (recorded in ``sync_state``/``sync_history``) so the job shows the error.
    """
    return sync_table(table_id, triggered_by=triggered_by, progress=set_progress)


@on_interrupted(run_sync_table)
def _sync_interrupted(table_id: str, triggered_by: str | None = None) -> None:
    """The worker died mid-sync: leftovers removed, ``interrupted`` in the table's sync history."""
    record_interrupted(table_id, INTERRUPTED_MESSAGE, triggered_by)


def run_due_table_syncs() -> list[str]:
    """Enqueue a sync for every table whose schedule is due; returns their ids.

    Runs every minute (``agnes.jobs.schedule.PERIODIC``). Tables already syncing are not
    doubled: the job id is one-in-flight.
    """
    due = due_table_ids()
    for table_id in due:
        _enqueue(table_id, owner_id=None, triggered_by="schedule")
    return due
