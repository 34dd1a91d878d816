"""Google Workspace group sync: the nightly run and "Sync now" (one in flight)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from agnes.auth import google_groups
from agnes.jobs import JobNotFound, JobStatus, enqueue, get_job, set_progress

# One directory sync in flight at a time (the nightly run and "Sync now" share it).
SYNC_JOB_ID = "google-group-sync"


def google_groups_enabled() -> bool:
    """Whether Workspace groups are mirrored (``AGNES_GOOGLE_GROUPS``)."""
    return bool(current_app.config.get("AGNES_GOOGLE_GROUPS"))


def start_google_group_sync(*, owner_id: str | None) -> JobStatus:
    """Queue a directory sync (or return the one in flight)."""
    return enqueue(
        run_google_group_sync, job_id=SYNC_JOB_ID, description="Sync Google Workspace groups", owner_id=owner_id
    )


def current_sync_job() -> JobStatus | None:
    """The latest directory sync job, if the job backend still knows it."""
    try:
        return get_job(SYNC_JOB_ID)
    except JobNotFound:
        return None


def run_google_group_sync() -> dict[str, Any]:
    """Mirror every matching Workspace group and its members (nightly at 02:30 UTC and on demand).

    Idempotent. Returns the outcome (``status`` ``ok`` or ``braked``, ``added``, ``removed``,
    ``groups``). Raises :class:`agnes.auth.google_groups.DirectoryError` when the directory cannot
    be read (recorded first; no row changes), so the job shows failed with a retry.
    """
    if not google_groups_enabled():
        return {"status": "disabled", "message": "AGNES_GOOGLE_GROUPS is off."}
    return google_groups.sync_directory(progress=set_progress).to_dict()
