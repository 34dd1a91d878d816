"""Telemetry jobs: process uploaded sessions (every 10 minutes and after uploads).

Starting them lives here, so views call :func:`start_process_sessions` and
:mod:`agnes.telemetry` never imports :mod:`agnes.jobs`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app

from agnes.errors import Conflict
from agnes.jobs import JobStatus, QueueUnavailable, enqueue, lookup_job, set_progress
from agnes.jobs.findings import start_failure_scan
from agnes.telemetry.processor import needs_reprocess, process_sessions, prune_events, reprocess_sessions

log = logging.getLogger(__name__)

# One processing job queued or running at a time.
PROCESS_JOB_ID = "process-sessions"
# The reprocess job (one at a time: a second request while it is queued or running is a 409).
REPROCESS_JOB_ID = "usage-reprocess"
# Runs in one job: files uploaded while a run works are picked up by the next loop.
MAX_LOOPS = 5


def start_process_sessions(*, owner_id: str | None = None) -> JobStatus:
    """Queue a processing run (or return the one queued or running). Raises QueueUnavailable."""
    return enqueue(
        run_process_sessions, job_id=PROCESS_JOB_ID, description="Process uploaded sessions", owner_id=owner_id
    )


def process_after_upload(owner_id: str) -> JobStatus | None:
    """Start processing after an upload; None when the queue is down (the periodic run catches up)."""
    try:
        return start_process_sessions(owner_id=owner_id)
    except QueueUnavailable:
        log.warning("job queue unreachable: uploaded sessions wait for the next periodic run")
        return None


def run_process_sessions() -> dict[str, Any]:
    """Process new and changed session files until none is left (at most :data:`MAX_LOOPS` passes).

    Idempotent: files already processed at their current bytes are skipped. Returns the
    figures of the passes added up (``files``, ``events``, ``failed``, ``parked``, ...).
    """
    if needs_reprocess():  # a processor upgrade: rebuild everything behind the pages' backs
        return {"reprocessed": True, **reprocess_sessions(progress=set_progress).to_dict()}
    total: dict[str, Any] = {}
    for _ in range(MAX_LOOPS):
        stats = process_sessions(progress=set_progress).to_dict()
        for key, value in stats.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            elif isinstance(value, list):
                total.setdefault(key, []).extend(value)
        if not stats["files"] and not stats["failed"]:
            break
    start_failure_scan()  # chained: its own checkpoint, so it scans only what changed
    return total


def start_reprocess(*, owner_id: str | None) -> JobStatus:
    """Queue ``usage-reprocess``. Raises Conflict (409 ``reprocess_running``) while one is queued or
    running, QueueUnavailable when the queue is down."""
    current = lookup_job(REPROCESS_JOB_ID)
    if current is not None and current.state.active:
        raise Conflict("reprocess_running", "A reprocess is already running; wait for it to finish.")
    return enqueue(
        run_reprocess_sessions,
        job_id=REPROCESS_JOB_ID,
        description="Reprocess every uploaded session",
        owner_id=owner_id,
        timeout=4 * 3600,
    )


def current_reprocess() -> JobStatus | None:
    """The reprocess job while the queue still knows it (its ``progress`` is files done/total)."""
    return lookup_job(REPROCESS_JOB_ID)


def run_reprocess_sessions() -> dict[str, Any]:
    """Process every stored file again into new tables and swap them in (progress: files done/total)."""
    return reprocess_sessions(progress=set_progress).to_dict()


def run_prune_usage() -> dict[str, Any]:
    """Daily: delete usage events older than ``AGNES_USAGE_RETENTION_DAYS`` (the API's function)."""
    return prune_events(int(current_app.config["AGNES_USAGE_RETENTION_DAYS"]))
