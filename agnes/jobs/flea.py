"""Flea-market jobs: the review of one version, and the periodic stuck-review and purge runs.

``flea-review:<version id>`` is one in flight per version, enqueued after the upload (or the
administrator's re-run) committed, with two retries (a worker that died mid-review).
"""

from __future__ import annotations

import logging
from typing import Any

from agnes.flea import review
from agnes.jobs import JobState, JobStatus, QueueUnavailable, enqueue, lookup_job

log = logging.getLogger(__name__)


def review_job_id(version_id: str) -> str:
    return f"flea-review:{version_id}"


def start_flea_review(version_id: str, *, owner_id: str | None = None) -> JobStatus | None:
    """Queue the review of a version (or return the one in flight). None when the queue is down:
    the version stays in review and the stuck-review run marks it ``review_error`` after 30 minutes
    (an administrator can re-run it)."""
    try:
        return enqueue(
            run_flea_review,
            version_id,
            job_id=review_job_id(version_id),
            description="Review a flea-market upload",
            owner_id=owner_id,
            retries=2,
            retry_intervals=[5, 30],
        )
    except QueueUnavailable:
        log.warning("job queue unreachable: the review of flea version %s waits", version_id)
        return None


def run_flea_review(version_id: str) -> dict[str, Any]:
    """Review one version with the Messages API and record the verdict (idempotent: a version no
    longer in review, or decided by an administrator, is left as it is)."""
    return review.run_review(version_id)


def run_flea_stuck_reviews() -> dict[str, Any]:
    """Reviews in progress for 30 minutes whose job is not queued or running become ``review_error``."""
    marked = 0
    for version in review.stuck_reviews():
        job = lookup_job(review_job_id(version.id))
        if job is not None and (job.state.active or job.state is JobState.UNREACHABLE):
            continue
        marked += review.mark_stuck(version.id)
    return {"marked": marked}


def run_flea_purge_blocked() -> dict[str, Any]:
    """Delete the files of versions blocked for 30 days (their rows stay, for the record)."""
    return {"purged": review.purge_blocked()}
