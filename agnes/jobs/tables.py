"""Table sync jobs: one table per job (``sync-table:<id>``) and the schedule tick."""

from __future__ import annotations

from typing import Any


def run_sync_table(table_id: str, triggered_by: str | None = None) -> dict[str, Any]:
    """Extract and publish one table, then rebuild its source's views. Idempotent.

    Raises ``SyncFailed`` (recorded in ``sync_state``/``sync_history``) so the job shows the error.
    """
    from agnes.data.sync import sync_table

    return sync_table(table_id, triggered_by=triggered_by)


def run_due_table_syncs() -> list[str]:
    """Enqueue a sync for every table whose schedule is due; returns their ids.

    Runs every minute (``agnes.jobs.schedule.PERIODIC``). Tables already syncing are not
    doubled: the job id is one-in-flight.
    """
    from agnes.data.sync import due_table_ids, enqueue_sync

    due = due_table_ids()
    for table_id in due:
        enqueue_sync(table_id, owner_id=None, triggered_by="schedule")
    return due
