"""The two job backends: RQ on Redis, and an in-process thread pool (embedded mode)."""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import Flask

from agnes.audit import redact_text, write_audit
from agnes.errors import human_message, message_from_traceback
from agnes.jobs import recovery
from agnes.jobs.status import JobNotFound, JobState, JobStatus, QueueUnavailable
from agnes.models import utcnow

log = logging.getLogger(__name__)

# Finished jobs' results are kept this long (seconds), failed ones longer for the retry button.
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
# How long a queued job may wait before RQ drops it (seconds).
QUEUED_TTL = 24 * 3600
# Embedded mode keeps at most this many finished job records in memory.
EMBEDDED_HISTORY = 500
# Failed jobs read from RQ's failed registry to count the recent ones (newest first).
FAILED_SCAN = 1000


@dataclass(frozen=True)
class QueueStats:
    """What the health pulse reports about the job queue, the same for both backends.

    Attributes:
        backend: ``rq`` or ``embedded``.
        depth: jobs waiting to start.
        oldest_enqueued_at: when the job waiting longest was queued (naive UTC), None when empty.
        oldest_description: that job's description.
        workers: worker processes registered on the queue (RQ), or the pool's threads (embedded).
        failed: jobs that failed since ``failed_since``.
        failed_since: start of the failure window (naive UTC).
    """

    backend: str
    depth: int
    oldest_enqueued_at: Any
    oldest_description: str | None
    workers: int
    failed: int
    failed_since: Any


class JobBackend:
    def enqueue(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        job_id: str,
        description: str,
        owner_id: str | None,
        timeout: int,
        retries: int,
        retry_intervals: list[int],
    ) -> JobStatus:
        raise NotImplementedError

    def get(self, job_id: str) -> JobStatus:
        raise NotImplementedError

    def retry(self, job_id: str) -> JobStatus:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise if the backend cannot take jobs (used by /readyz)."""

    def stats(self, failed_since: datetime) -> QueueStats:
        """Queue depth, the oldest queued job, workers and failures since ``failed_since``.
        Raises :class:`QueueUnavailable` when Redis cannot be reached."""
        raise NotImplementedError


# Seconds to wait for Redis to accept a connection from the web process before calling it unreachable.
REDIS_CONNECT_TIMEOUT = 3


@contextmanager
def queue_calls() -> Iterator[None]:
    """Translate "Redis cannot be reached" into :class:`QueueUnavailable` (the one place that does)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError) as exc:
        log.warning("job queue unreachable: %s", redact_text(str(exc))[:300])
        raise QueueUnavailable() from None


class RQBackend(JobBackend):
    """Jobs on Redis through RQ. Every call raises :class:`QueueUnavailable` when Redis is down."""

    def __init__(self, redis_url: str, queue_name: str) -> None:
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry as RedisRetry
        from rq import Queue

        # One quick retry: a page must not wait seconds of backoff to learn that Redis is down.
        self.connection = Redis.from_url(
            redis_url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT, retry=RedisRetry(NoBackoff(), 1)
        )
        self.queue = Queue(queue_name, connection=self.connection)

    def ping(self) -> None:
        with queue_calls():
            self.connection.ping()

    def enqueue(self, func, args, kwargs, *, job_id, description, owner_id, timeout, retries, retry_intervals):
        with queue_calls():
            return self._enqueue(func, args, kwargs, job_id, description, owner_id, timeout, retries, retry_intervals)

    def get(self, job_id: str) -> JobStatus:
        with queue_calls():
            return self._get(job_id)

    def retry(self, job_id: str) -> JobStatus:
        with queue_calls():
            return self._retry(job_id)

    def stats(self, failed_since: datetime) -> QueueStats:
        from rq import Worker
        from rq.job import Job

        with queue_calls():
            depth = self.queue.count
            oldest = None
            first = self.queue.get_job_ids(0, 1)
            if first:
                oldest = Job.fetch_many(first, connection=self.connection)[0]
            failed_ids = self.queue.failed_job_registry.get_job_ids(0, FAILED_SCAN - 1, desc=True)
            failed = [
                job
                for job in Job.fetch_many(failed_ids, connection=self.connection)
                if job is not None and job.ended_at is not None and job.ended_at.replace(tzinfo=None) >= failed_since
            ]
            return QueueStats(
                backend="rq",
                depth=depth,
                oldest_enqueued_at=oldest.enqueued_at.replace(tzinfo=None) if oldest and oldest.enqueued_at else None,
                oldest_description=oldest.description if oldest else None,
                workers=Worker.count(connection=self.connection, queue=self.queue),
                failed=len(failed),
                failed_since=failed_since,
            )

    def _enqueue(self, func, args, kwargs, job_id, description, owner_id, timeout, retries, retry_intervals):  # type: ignore[no-untyped-def]
        from rq import Retry
        from rq.job import Callback

        # A short Redis lock closes the race between "is it in flight?" and "enqueue it".
        with self.connection.lock(f"agnes:enqueue:{job_id}", timeout=10, blocking_timeout=10):
            try:
                existing = self._get(job_id)
            except JobNotFound:
                existing = None
            if existing is not None and existing.state.active:
                return existing
            self.queue.enqueue(
                func,
                args=args,
                kwargs=kwargs,
                job_id=rq_job_id(job_id),
                description=description,
                job_timeout=timeout,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                ttl=QUEUED_TTL,
                retry=Retry(max=retries, interval=retry_intervals) if retries else None,
                meta={"owner_id": owner_id, "enqueued_by": "agnes", "agnes_id": job_id},
                on_success=Callback(_audit_success),
                on_failure=Callback(_audit_failure),
            )
        return self._get(job_id)

    def _get(self, job_id: str) -> JobStatus:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(rq_job_id(job_id), connection=self.connection)
        except NoSuchJobError:
            raise JobNotFound(job_id) from None
        status = _rq_status(job)
        if status.state is JobState.RUNNING and job.id in recovery.expired_job_ids(self.queue):
            # Its worker stopped renewing it: recover now rather than show (or hand back) a dead job.
            recovery.recover_rq(self.queue)
            status = _rq_status(Job.fetch(job.id, connection=self.connection))
        return status

    def _retry(self, job_id: str) -> JobStatus:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        try:
            job = Job.fetch(rq_job_id(job_id), connection=self.connection)
        except NoSuchJobError:
            raise JobNotFound(job_id) from None
        if job.is_failed:
            job.meta.pop("progress", None)
            job.save_meta()
            job.requeue()
        return _rq_status(job)


def rq_job_id(job_id: str) -> str:
    """RQ accepts only letters, digits, ``_`` and ``-`` in ids; Agnes ids use ``:`` (``sync-table:<id>``).

    Other characters become ``_<hex>_``, so distinct Agnes ids stay distinct RQ ids.
    """
    return re.sub(r"[^A-Za-z0-9_-]", lambda m: f"_{ord(m.group()):x}_", job_id)


def _rq_status(job: Any) -> JobStatus:
    raw = job.get_status(refresh=True)
    status = str(getattr(raw, "value", raw) or "queued")  # rq's JobStatus is a str Enum
    state = {
        "queued": JobState.QUEUED,
        "deferred": JobState.QUEUED,
        "scheduled": JobState.QUEUED,
        "started": JobState.RUNNING,
        "finished": JobState.FINISHED,
        "failed": JobState.FAILED,
        "stopped": JobState.FAILED,
        "canceled": JobState.FAILED,
    }.get(status, JobState.QUEUED)
    error = None
    result = None
    if state is JobState.FAILED:
        error = _short_error(job.latest_result().exc_string if job.latest_result() else "") or status
    elif state is JobState.FINISHED:
        latest = job.latest_result()
        result = latest.return_value if latest else None
    return JobStatus(
        id=job.meta.get("agnes_id") or job.id,
        state=state,
        description=job.description or job.func_name,
        owner_id=job.meta.get("owner_id"),
        progress=job.meta.get("progress"),
        error=error,
        result=result,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
    )


def _short_error(exc_string: str | None) -> str:
    """The message of a failed job's traceback for people (``bad slug``, no class name), secrets masked."""

    return redact_text(message_from_traceback(exc_string))[:500]


def audit_job(job: Any, result: str, error: str | None = None, *, reason: str | None = None) -> None:
    """The audit row of an RQ job's outcome: ``result`` is finished, failed or requeued."""
    duration = None
    if job.started_at:
        duration = round((utcnow() - job.started_at.replace(tzinfo=None)).total_seconds() * 1000, 2)
    params: dict[str, Any] = {"args": list(job.args)}
    if error:
        params["error"] = error
    if reason:
        params["reason"] = reason
    try:
        write_audit(
            f"job.{job.func_name.rsplit('.', 1)[-1]}",
            user_id=job.meta.get("owner_id"),
            resource=f"job:{job.id}",
            params=params,
            result=result,
            duration_ms=duration,
            client_kind="job",
            correlation_id=job.id,
        )
    except Exception:  # the job's outcome stands; a lost row is logged, never a failed job
        log.exception("could not audit job %s", job.id)


def _audit_success(job: Any, connection: Any, result: Any, *args: Any, **kwargs: Any) -> None:
    audit_job(job, "finished")


def _audit_failure(job: Any, connection: Any, type: Any, value: Any, tb: Any) -> None:
    from rq.exceptions import AbandonedJobError

    if isinstance(value, AbandonedJobError):
        # Called by StartedJobRegistry.cleanup (cron or web process): the work-horse died.
        recovery.report_interrupted(job.func_name, job.args)
        audit_job(job, "interrupted", recovery.INTERRUPTED_MESSAGE)
        return
    audit_job(job, "failed", human_message(value))


@dataclass
class _EmbeddedRecord:
    status: JobStatus
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    retries: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update_progress(self, progress: dict[str, Any]) -> None:
        with self.lock:
            self.status = replace(self.status, progress=progress)


_current_embedded: contextvars.ContextVar[_EmbeddedRecord | None] = contextvars.ContextVar(
    "agnes_embedded_job", default=None
)


class EmbeddedBackend(JobBackend):
    """Jobs on a thread pool in this process; status kept in memory (single-process mode)."""

    def __init__(self, app: Flask, workers: int = 2) -> None:
        self.app = app
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="agnes-job")
        self.records: dict[str, _EmbeddedRecord] = {}
        self.lock = threading.Lock()

    def enqueue(self, func, args, kwargs, *, job_id, description, owner_id, timeout, retries, retry_intervals):
        with self.lock:
            existing = self.records.get(job_id)
            if existing is not None and existing.status.state.active:
                return existing.status
            record = _EmbeddedRecord(
                status=JobStatus(job_id, JobState.QUEUED, description, owner_id, enqueued_at=utcnow()),
                func=func,
                args=tuple(args),
                kwargs=dict(kwargs),
                retries=retries,
            )
            self.records[job_id] = record
            self._trim()
        self.pool.submit(self._run, record)
        return record.status

    def stats(self, failed_since: datetime) -> QueueStats:
        records = [r.status for r in list(self.records.values())]
        queued = sorted((s for s in records if s.state is JobState.QUEUED), key=lambda s: s.enqueued_at or failed_since)
        return QueueStats(
            backend="embedded",
            depth=len(queued),
            oldest_enqueued_at=queued[0].enqueued_at if queued else None,
            oldest_description=queued[0].description if queued else None,
            workers=self.workers,
            failed=sum(
                1 for s in records if s.state is JobState.FAILED and (s.ended_at or failed_since) >= failed_since
            ),
            failed_since=failed_since,
        )

    def _trim(self) -> None:
        if len(self.records) <= EMBEDDED_HISTORY:
            return
        done = [k for k, r in self.records.items() if not r.status.state.active]
        for key in done[: len(self.records) - EMBEDDED_HISTORY]:
            del self.records[key]

    def _run(self, record: _EmbeddedRecord) -> None:

        token = _current_embedded.set(record)
        started = time.perf_counter()
        try:
            with self.app.app_context():
                recovery.mark_running(record.status.id, record.func, record.args)
                attempts = record.retries + 1
                for attempt in range(attempts):
                    with record.lock:
                        record.status = replace(record.status, state=JobState.RUNNING, started_at=utcnow(), error=None)
                    try:
                        result = record.func(*record.args, **record.kwargs)
                    except Exception as exc:
                        log.error(
                            "job %s failed (attempt %d): %s",
                            record.status.id,
                            attempt + 1,
                            "".join(traceback.format_exception_only(type(exc), exc)).strip(),
                        )
                        if attempt + 1 < attempts:
                            continue
                        error = redact_text(human_message(exc))[:500]
                        with record.lock:
                            record.status = replace(
                                record.status, state=JobState.FAILED, error=error, ended_at=utcnow()
                            )
                        break
                    with record.lock:
                        record.status = replace(
                            record.status, state=JobState.FINISHED, result=result, ended_at=utcnow()
                        )
                    break
                try:
                    write_audit(
                        f"job.{record.func.__name__}",
                        user_id=record.status.owner_id,
                        resource=f"job:{record.status.id}",
                        params={"args": list(record.args), "error": record.status.error},
                        result=record.status.state.value,
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                        client_kind="job",
                        correlation_id=record.status.id,
                    )
                except Exception:  # the job's outcome stands; a lost row is logged
                    log.exception("could not audit job %s", record.status.id)
                recovery.clear_running(record.status.id)
        finally:
            _current_embedded.reset(token)

    def get(self, job_id: str) -> JobStatus:
        record = self.records.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        return record.status

    def retry(self, job_id: str) -> JobStatus:
        record = self.records.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        if record.status.state is not JobState.FAILED:
            return record.status
        return self.enqueue(
            record.func,
            record.args,
            record.kwargs,
            job_id=job_id,
            description=record.status.description,
            owner_id=record.status.owner_id,
            timeout=0,
            retries=record.retries,
            retry_intervals=[],
        )

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until no embedded job is queued or running (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while any(r.status.state.active for r in list(self.records.values())):
            if time.monotonic() > deadline:
                raise TimeoutError("embedded jobs still running")
            time.sleep(0.02)


def current_embedded_job() -> _EmbeddedRecord | None:
    """The embedded job running in this thread, if any (for progress reports)."""
    return _current_embedded.get()
