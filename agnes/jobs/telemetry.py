"""Telemetry jobs: process uploaded sessions (every 10 minutes and after uploads).

Starting them lives here, so views call :func:`start_process_sessions` and
:mod:`agnes.telemetry` never imports :mod:`agnes.jobs`.
"""

from __future__ import annotations

import logging
from typing import Any

from agnes.jobs import JobStatus, QueueUnavailable, enqueue, set_progress
from agnes.telemetry.processor import process_sessions

log = logging.getLogger(__name__)

# One processing job queued or running at a time.
PROCESS_JOB_ID = "process-sessions"
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
    return total
