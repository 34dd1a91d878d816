"""Background jobs: the one enqueue path, job status, progress, and the two backends.

Every job is a plain importable function ``agnes.jobs.<name>.run_<thing>(ids...)``: it takes
ids, is idempotent and safe to retry. It is enqueued only through :func:`enqueue`, after the
write it depends on is committed.

Backends (chosen by ``REDIS_URL``):

* **RQ**: jobs go to Redis and run in ``worker.py`` processes (possibly on other machines).
* **Embedded** (no ``REDIS_URL``): jobs run on a small thread pool inside the web process; their
  status is kept in memory, so the same status fragment and API work.

A ``job_id`` makes a job one-in-flight: enqueueing while a job with that id is queued or
running returns the existing job instead of a second one (``sync-marketplace:<id>``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from agnes.cache import SharedCache
from agnes.jobs import recovery
from agnes.jobs.backends import EmbeddedBackend, JobBackend, RQBackend, current_embedded_job
from agnes.jobs.status import JobNotFound, JobState, JobStatus, QueueUnavailable
from agnes.models import new_id

__all__ = [
    "JobNotFound",
    "JobState",
    "JobStatus",
    "QueueUnavailable",
    "enqueue",
    "get_job",
    "lookup_job",
    "require_queue",
    "retry_job",
    "set_progress",
]


# -- public API ----------------------------------------------------------------------------


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    job_id: str | None = None,
    description: str = "",
    owner_id: str | None = None,
    timeout: int | None = None,
    retries: int = 0,
    retry_intervals: list[int] | None = None,
    **kwargs: Any,
) -> JobStatus:
    """Queue ``func(*args, **kwargs)`` as a job; the only way Agnes starts background work.

    Args:
        func: a module-level function (importable by the worker).
        job_id: deterministic id for one-in-flight jobs; a random id when None.
        description: shown in the UI ("Sync marketplace acme").
        owner_id: user allowed to watch the job besides admins.
        timeout: seconds before the job is killed (``AGNES_JOB_TIMEOUT`` by default).
        retries: automatic retries after a failure (RQ ``Retry``), with ``retry_intervals`` seconds.

    Returns:
        The status of the new job, or of the job already in flight under ``job_id``.

    Raises:
        QueueUnavailable: Redis cannot be reached (503 ``queue_unavailable``); nothing was queued.
    """
    backend: JobBackend = current_app.extensions["agnes_jobs"]
    return backend.enqueue(
        func,
        args,
        kwargs,
        job_id=job_id or f"job:{new_id()}",
        description=description or func.__name__.removeprefix("run_").replace("_", " "),
        owner_id=owner_id,
        timeout=timeout or int(current_app.config["AGNES_JOB_TIMEOUT"]),
        retries=retries,
        retry_intervals=retry_intervals or [10, 60, 300],
    )


def get_job(job_id: str) -> JobStatus:
    """Current status of a job. Raises :class:`JobNotFound` when unknown or expired,
    :class:`QueueUnavailable` when Redis cannot be reached."""
    return current_app.extensions["agnes_jobs"].get(job_id)


def lookup_job(job_id: str) -> JobStatus | None:
    """The job for a page's job widget: its status, None when unknown, or a status in state
    ``unreachable`` when the queue cannot be asked (the page still renders)."""
    try:
        return get_job(job_id)
    except JobNotFound:
        return None
    except QueueUnavailable:
        return JobStatus(job_id, JobState.UNREACHABLE, "Job queue unreachable")


def require_queue() -> None:
    """Raise :class:`QueueUnavailable` unless the job queue answers; called before a write that
    must be followed by a job (so no row claims a job that could not be queued)."""
    current_app.extensions["agnes_jobs"].ping()


def retry_job(job_id: str) -> JobStatus:
    """Run a failed job again with the same arguments (same id). Raises JobNotFound, QueueUnavailable."""
    return current_app.extensions["agnes_jobs"].retry(job_id)


def set_progress(done: int, total: int | None = None, message: str = "") -> None:
    """Report progress of the running job (no-op outside a job). Pages poll and show it."""
    progress = {"done": int(done), "total": int(total) if total is not None else None, "message": message}
    embedded = current_embedded_job()
    if embedded is not None:
        embedded.update_progress(progress)
        return
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover - rq is a dependency
        return
    job = get_current_job()
    if job is not None:
        job.meta["progress"] = progress
        job.save_meta()


def init_app(app: Flask) -> None:
    """Choose the backend from ``REDIS_URL``; the shared cache uses the same Redis connection."""
    if app.config["REDIS_URL"]:
        backend = RQBackend(app.config["REDIS_URL"], app.config["AGNES_QUEUE"])
        app.extensions["agnes_jobs"] = backend
        app.extensions["agnes_cache"] = SharedCache(backend.connection)
    else:
        app.extensions["agnes_cache"] = SharedCache()
        app.extensions["agnes_jobs"] = EmbeddedBackend(app)
        with app.app_context():  # jobs a previous process left running were interrupted
            recovery.recover_embedded()
