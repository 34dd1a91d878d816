"""The failure scan job: findings in uploaded transcripts, after each usage processing run."""

from __future__ import annotations

import logging
from typing import Any

from agnes.jobs import JobStatus, QueueUnavailable, enqueue, set_progress
from agnes.telemetry.findings import scan_sessions

log = logging.getLogger(__name__)

# One scan queued or running at a time.
SCAN_JOB_ID = "failure-scan"


def start_failure_scan(*, owner_id: str | None = None) -> JobStatus | None:
    """Queue a scan (or return the one queued or running); None when the queue is down (the
    next processing run starts one)."""
    try:
        return enqueue(
            run_failure_scan, job_id=SCAN_JOB_ID, description="Scan sessions for failures", owner_id=owner_id
        )
    except QueueUnavailable:
        log.warning("job queue unreachable: the failure scan waits for the next processing run")
        return None


def run_failure_scan() -> dict[str, Any]:
    """Scan every transcript not judged at its current bytes and scanner version (idempotent)."""
    return scan_sessions(progress=set_progress)
