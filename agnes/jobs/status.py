"""Job status as pages and the API show it, the same for both backends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from agnes.errors import AppError

# Seconds a client is told to wait before retrying while the job queue is unreachable.
QUEUE_RETRY_AFTER = 30


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    # The job queue (Redis) did not answer: the job's state is unknown for now.
    UNREACHABLE = "unreachable"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class JobStatus:
    """What a page or the API shows about one job.

    Attributes:
        progress: ``{"done": int, "total": int | None, "message": str}`` or None.
        error: short failure text (exception type and message) when failed.
        owner_id: the user who started it (may see its status), None for system jobs.
    """

    id: str
    state: JobState
    description: str
    owner_id: str | None = None
    progress: dict[str, Any] | None = None
    error: str | None = None
    result: Any = None
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def ended(self) -> bool:
        """Finished or failed: the status fragment stops polling and announces the end."""
        return self.state in (JobState.FINISHED, JobState.FAILED)

    @property
    def event(self) -> str:
        """The event a page hears when this job ends (``HX-Trigger``): the job id, which names the
        job kind and its resource (``sync-marketplace:<slug>``, ``sync-table:<id>``), so the
        fragments showing that resource refresh themselves (``hx-trigger="<event> from:body"``)."""
        return self.id

    @property
    def summary(self) -> str | None:
        """The result in words when the job's result carries one (``{"summary": ...}``)."""
        if isinstance(self.result, dict) and isinstance(self.result.get("summary"), str):
            return self.result["summary"]
        return None

    @property
    def percent(self) -> int | None:
        p = self.progress or {}
        if p.get("total"):
            return max(0, min(100, int(100 * p.get("done", 0) / p["total"])))
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state.value,
            "description": self.description,
            "progress": self.progress,
            "error": self.error,
            "result": self.result if _jsonable(self.result) else repr(self.result),
            "enqueued_at": self.enqueued_at.isoformat() if self.enqueued_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


class JobNotFound(LookupError):
    pass


class QueueUnavailable(AppError):
    """503 ``queue_unavailable``: the job queue (Redis) cannot be reached, so nothing was queued.

    Raised by :func:`agnes.jobs.enqueue`, :func:`agnes.jobs.get_job`, :func:`agnes.jobs.retry_job`
    and :func:`agnes.jobs.require_queue`; the response carries ``Retry-After``.
    """

    def __init__(self) -> None:
        super().__init__(
            503,
            "queue_unavailable",
            "The job queue is unreachable right now, so nothing was started or changed."
            " Try again in a minute; if it persists, an operator should check Redis (REDIS_URL).",
            headers={"Retry-After": str(QUEUE_RETRY_AFTER)},
        )
