"""Periodic jobs: one table, run by RQ's cron (``worker.py --cron``) or, in embedded mode,
by a scheduler thread in the web process.

Each entry fires :func:`run_periodic`, which enqueues the target through
:func:`agnes.jobs.enqueue` with the deterministic id ``periodic:<name>``, so a slow run is
never doubled by the next tick. Cron expressions are evaluated in UTC.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

from flask import Flask

from agnes.cache import shared_cache
from agnes.jobs import enqueue
from agnes.jobs.recovery import recover_rq
from agnes.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """A job run on a schedule.

    Attributes:
        name: stable name (job id ``periodic:<name>``).
        target: dotted path of the job function (``agnes.jobs.maintenance.run_prune_magic_links``).
        cron: five-field cron expression, UTC.
        timeout: job timeout in seconds.
    """

    name: str
    target: str
    cron: str
    timeout: int = 1800
    description: str = ""


PERIODIC: list[Periodic] = [
    Periodic(
        "flea-stuck-reviews",
        "agnes.jobs.flea.run_flea_stuck_reviews",
        "*/5 * * * *",
        timeout=300,
        description="Mark flea-market reviews stuck for 30 minutes as review errors",
    ),
    Periodic(
        "flea-purge-blocked",
        "agnes.jobs.flea.run_flea_purge_blocked",
        "23 4 * * *",
        timeout=1800,
        description="Delete flea-market bundles blocked for 30 days",
    ),
    Periodic(
        "prune-magic-links",
        "agnes.jobs.maintenance.run_prune_magic_links",
        "17 * * * *",
        timeout=300,
        description="Delete expired sign-in links and sessions",
    ),
    Periodic(
        "table-syncs",
        "agnes.jobs.tables.run_due_table_syncs",
        "* * * * *",
        timeout=120,
        description="Start the table syncs whose schedule is due",
    ),
    Periodic(
        "sync-all-marketplaces",
        "agnes.jobs.marketplace.run_sync_all_marketplaces",
        "0 3 * * *",
        timeout=3600,
        description="Sync all curated marketplaces",
    ),
    Periodic(
        "google-group-sync",
        "agnes.jobs.google_groups.run_google_group_sync",
        "30 2 * * *",
        timeout=1800,
        description="Sync Google Workspace groups",
    ),
    Periodic(
        "prune-marketplace-caches",
        "agnes.jobs.marketplace.run_prune_marketplace_caches",
        "41 * * * *",
        timeout=600,
        description="Delete served marketplace artifacts nobody resolves to",
    ),
    Periodic(
        "notify",
        "agnes.jobs.notify.run_notify",
        "* * * * *",
        timeout=300,
        description="Send admins their notifications (feedback, health turning red)",
    ),
    Periodic(
        "process-sessions",
        "agnes.jobs.telemetry.run_process_sessions",
        "*/10 * * * *",
        timeout=1800,
        description="Process uploaded Claude Code sessions into usage figures",
    ),
    Periodic(
        "prune-usage",
        "agnes.jobs.telemetry.run_prune_usage",
        "23 4 * * *",
        timeout=1800,
        description="Delete usage events older than the retention",
    ),
]


# Shared-cache key of the scheduler's heartbeat, written on every tick of the cron loop.
HEARTBEAT_KEY = "cron:heartbeat"


def beat(kind: str) -> None:
    """Record that the scheduler (``kind``: ``rq-cron`` or ``embedded``) is alive right now, and
    since when this scheduler process has been (``started``)."""
    cache = shared_cache()
    now = utcnow().isoformat()
    previous = cache.get(HEARTBEAT_KEY)
    same = isinstance(previous, dict) and previous.get("pid") == os.getpid() and previous.get("kind") == kind
    started = previous.get("started", now) if same else now
    cache.set(HEARTBEAT_KEY, {"at": now, "kind": kind, "pid": os.getpid(), "started": started})


@dataclass(frozen=True)
class Heartbeat:
    """The scheduler's last tick and when that scheduler started (naive UTC)."""

    at: datetime
    started: datetime
    kind: str


def last_heartbeat() -> Heartbeat | None:
    """The scheduler's latest heartbeat, None if it never ticked."""
    value = shared_cache().get(HEARTBEAT_KEY)
    if not isinstance(value, dict) or "at" not in value:
        return None
    at = datetime.fromisoformat(value["at"])
    return Heartbeat(at, datetime.fromisoformat(value.get("started") or value["at"]), str(value.get("kind") or ""))


def resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.rpartition(".")
    return getattr(import_module(module), name)


def run_periodic(name: str) -> str:
    """Enqueue the periodic job ``name`` (one in flight). Runs inside a worker or the scheduler."""

    entry = next((p for p in PERIODIC if p.name == name), None)
    if entry is None:
        raise LookupError(f"no periodic job named {name!r}")
    status = enqueue(
        resolve(entry.target),
        job_id=f"periodic:{name}",
        description=entry.description or name,
        timeout=entry.timeout,
    )
    return status.id


def register_rq_cron(scheduler: Any, queue_name: str) -> None:
    """Register every periodic job with an ``rq.cron.CronScheduler``."""
    for entry in PERIODIC:
        scheduler.register(
            run_periodic, queue_name, args=(entry.name,), cron=entry.cron, job_timeout=60, name=f"agnes:{entry.name}"
        )


def rq_cron_scheduler(backend: Any, *, recover_every: int) -> Any:
    """The cron process's scheduler: RQ's ``CronScheduler`` with every :data:`PERIODIC` job, which
    also recovers abandoned jobs (:func:`agnes.jobs.recovery.recover_rq`) every ``recover_every``
    seconds, in this process, so a queue whose only worker died is still cleaned up."""
    from rq.cron import CronScheduler

    class AgnesCronScheduler(CronScheduler):
        last_recovery = 0.0

        def enqueue_jobs(self) -> list[Any]:
            try:
                beat("rq-cron")
            except Exception:
                log.exception("writing the cron heartbeat failed")
            if time.monotonic() - self.last_recovery >= recover_every:
                self.last_recovery = time.monotonic()
                try:
                    recover_rq(backend.queue)
                except Exception:
                    log.exception("recovering abandoned jobs failed")
            return super().enqueue_jobs()

        def calculate_sleep_interval(self) -> float:
            return min(super().calculate_sleep_interval(), float(recover_every))

    scheduler = AgnesCronScheduler(connection=backend.connection)
    register_rq_cron(scheduler, backend.queue.name)
    return scheduler


class EmbeddedScheduler:
    """Evaluates :data:`PERIODIC` every ``tick`` seconds in a daemon thread (embedded mode)."""

    def __init__(self, app: Flask, tick: float = 30.0) -> None:
        from croniter import croniter

        self.app = app
        self.tick = tick
        self.stop_event = threading.Event()
        now = datetime.now(UTC)
        self.next_run = {p.name: croniter(p.cron, now).get_next(datetime) for p in PERIODIC}
        self.thread = threading.Thread(target=self._loop, name="agnes-cron", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        from croniter import croniter

        self._beat()
        while not self.stop_event.wait(self.tick):
            self._beat()
            now = datetime.now(UTC)
            for entry in PERIODIC:
                if self.next_run.get(entry.name, now) <= now:
                    self.next_run[entry.name] = croniter(entry.cron, now).get_next(datetime)
                    try:
                        with self.app.app_context():
                            run_periodic(entry.name)
                    except Exception:
                        log.exception("periodic job %s could not be started", entry.name)

    def _beat(self) -> None:
        try:
            with self.app.app_context():
                beat("embedded")
        except Exception:
            log.exception("writing the cron heartbeat failed")
