"""Jobs whose worker died: detected, recorded as interrupted, retried once.

**RQ.** A work-horse killed with ``kill -9`` (or a machine that vanished) leaves its job
``started`` in RQ's ``StartedJobRegistry``. The worker renews each running job's entry every
``AGNES_JOB_HEARTBEAT`` seconds (RQ's ``job_monitoring_interval``) for :func:`heartbeat_ttl`
seconds, so the entry of a job nobody runs any more expires within about three heartbeats.
:func:`recover_rq` (run by the cron process every heartbeat, and by the web process when it
meets a running job whose entry expired) gives each such job one retry and lets RQ's own
``StartedJobRegistry.cleanup`` requeue it (or, the second time, fail it with
``AbandonedJobError``). Its failure callback reports the interruption to the handler the job's
module registered with :func:`on_interrupted`, which writes the ``interrupted`` history row.

**Embedded.** Jobs run on threads of the web process, so a restart loses them. While a job runs
it has a marker file ``state/jobs/<id>.json``; at start-up :func:`recover_embedded` reports the
markers left by a process that is gone to the same handlers and removes them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

from flask import current_app

log = logging.getLogger(__name__)

# What an interrupted job's history row says.
INTERRUPTED_MESSAGE = "interrupted: the worker running this job stopped (killed, crashed or restarted)"
# This process, for embedded markers (a pid can be reused by the next process, e.g. PID 1 in a container).
PROCESS_TOKEN = uuid.uuid4().hex
# Retries an interrupted RQ job gets (its meta remembers they were used).
INTERRUPTED_RETRIES = 1

_HANDLERS: dict[str, Callable[..., Any]] = {}


def func_name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def on_interrupted(job_func: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``handler(*job_args)`` to record that a run of ``job_func`` was interrupted."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        _HANDLERS[func_name(job_func)] = handler
        return handler

    return register


def report_interrupted(name: str, args: tuple[Any, ...] | list[Any]) -> None:
    """Call the handler registered for the job function ``name`` (dotted path), if any."""
    module = name.rpartition(".")[0]
    if name not in _HANDLERS and module:
        try:
            import_module(module)  # registers the module's handlers
        except ImportError:
            log.warning("interrupted job of unknown function %s", name)
            return
    handler = _HANDLERS.get(name)
    if handler is None:
        return
    try:
        handler(*args)
    except Exception:
        log.exception("could not record the interruption of %s%r", name, tuple(args))


# -- RQ --------------------------------------------------------------------------------------------


def heartbeat_ttl(interval: int, remaining: float | None = None) -> int:
    """Seconds a running job's registry entry lives after one heartbeat: a job whose worker died
    is abandoned after about three missed heartbeats (RQ's own grace is a fixed 60 s)."""
    step = interval if remaining is None else max(1, min(remaining, interval))
    return int(step + max(2 * interval, 10))


def expired_job_ids(queue: Any) -> list[str]:
    """RQ ids of jobs whose started-registry entry expired (their worker stopped renewing it)."""
    from rq.registry import StartedJobRegistry

    return StartedJobRegistry(queue=queue).get_expired_job_ids()


def recover_rq(queue: Any) -> list[str]:
    """Give each abandoned job of ``queue`` its one retry, then let RQ's cleanup requeue or fail
    them (the failure callback records ``interrupted``). Returns the RQ ids handled."""
    from rq.registry import StartedJobRegistry

    registry = StartedJobRegistry(queue=queue)
    # One recoverer at a time (cron and web processes may meet the same job): no double retry.
    lock = queue.connection.lock(f"agnes:recover:{queue.name}", timeout=60, blocking_timeout=0)
    if not lock.acquire():
        return []
    try:
        return _recover_locked(queue, registry)
    finally:
        try:
            lock.release()
        except Exception:  # expired meanwhile: another recoverer may already hold it
            log.debug("recovery lock was already released")


def _recover_locked(queue: Any, registry: Any) -> list[str]:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    expired = registry.get_expired_job_ids()
    for rq_id in expired:
        try:
            job = Job.fetch(rq_id, connection=queue.connection)
        except NoSuchJobError:
            continue
        if job.get_status(refresh=False) != JobStatus.STARTED:
            continue
        if not job.retries_left and not job.meta.get("interrupted_retries"):
            job.meta["interrupted_retries"] = INTERRUPTED_RETRIES
            job.retries_left = INTERRUPTED_RETRIES
            job.retry_intervals = None  # requeue at once
            job.save()
        log.warning("job %s was abandoned by its worker; %s", rq_id, "retrying" if job.retries_left else "failing")
    if expired:
        registry.cleanup()
    return expired


# -- embedded --------------------------------------------------------------------------------------


def _markers_dir() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "state" / "jobs"


def _marker(job_id: str) -> Path:
    return _markers_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "_", job_id) + ".json")


def mark_running(job_id: str, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Leave a marker while an embedded job runs (removed by :func:`clear_running`)."""
    path = _marker(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        body = json.dumps({"id": job_id, "func": func_name(func), "args": list(args)})
    except TypeError:  # arguments that are not JSON: nothing can be recorded for them
        return
    payload = json.loads(body) | {"pid": os.getpid(), "process": PROCESS_TOKEN}
    path.write_text(json.dumps(payload))


def clear_running(job_id: str) -> None:
    _marker(job_id).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_embedded() -> list[str]:
    """Report the embedded jobs a previous process left running as interrupted (start-up).

    A marker belongs to a previous process when its pid is gone, or is ours with another process
    token. Returns the job ids reported.
    """
    reported = []
    for path in sorted(_markers_dir().glob("*.json")):
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        pid = int(marker.get("pid") or 0)
        ours = pid == os.getpid()
        if (ours and marker.get("process") == PROCESS_TOKEN) or (not ours and pid and _alive(pid)):
            continue
        report_interrupted(str(marker.get("func")), marker.get("args") or [])
        path.unlink(missing_ok=True)
        reported.append(str(marker.get("id")))
    return reported
