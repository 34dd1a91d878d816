"""Notification jobs: deliver pending notifications (every minute and after a feedback report)
and turn a health pulse that became red into one."""

from __future__ import annotations

import logging
from typing import Any

from agnes.jobs import JobStatus, QueueUnavailable, enqueue
from agnes.jobs.health import health_pulse
from agnes.notify import deliver, watch_health

log = logging.getLogger(__name__)

# One delivery run queued or running at a time.
NOTIFY_JOB_ID = "notify"


def start_notify() -> JobStatus | None:
    """Queue a delivery run now (after a report); None when the queue is down (the periodic run
    delivers within a minute of it coming back)."""
    try:
        return enqueue(run_notify, job_id=NOTIFY_JOB_ID, description="Send notifications", timeout=300)
    except QueueUnavailable:
        log.warning("job queue unreachable: notifications wait for the next periodic run")
        return None


def run_notify() -> dict[str, Any]:
    """Record a health event if the pulse turned red, then deliver what each recipient has pending."""
    pulse = health_pulse()
    turned_red = watch_health(pulse.status, pulse.sentence)
    return {**deliver(), "health_turned_red": turned_red}
