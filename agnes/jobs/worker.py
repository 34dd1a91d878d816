"""The RQ worker class ``worker.py`` runs: a bounded warm shutdown and a prompt exit.

On SIGTERM or SIGINT (``docker compose stop``, systemd, Ctrl+C) the worker takes no new job and
lets the running one finish for ``grace_seconds`` (``AGNES_WORKER_GRACE``). If the job is still
running then, or when a second SIGTERM/SIGINT asks for a cold shutdown, the work-horse is killed
and the job goes back to the front of its queue (``requeued`` in the audit log), where the next
worker picks it up. Jobs are idempotent and write through atomic units, so a killed attempt leaves
nothing half-written.

Two fixes to RQ's behaviour live here:

* **The pub/sub thread no longer holds the exit for a minute** (rq/rq#1613 with RQ 3.0 and
  redis-py 8.2): RQ's ``Worker.unsubscribe`` sends UNSUBSCRIBE and only then stops the listener
  thread. When that thread handles the UNSUBSCRIBE reply first, it loops back into
  ``PubSub.get_message(timeout=60)``, which, with no channel left, waits the full 60 s for a
  subscription, and ``PubSubWorkerThread.stop()`` (which, in redis-py 8.2, joins the thread
  without a timeout) waits with it. Here the thread's run flag is cleared before UNSUBSCRIBE is
  sent, so the reply ends the thread at once, and the join is bounded.
* **The work-horse ignores SIGTERM** as it ignores SIGINT, so a signal sent to the whole process
  group (systemd's default, a terminal) starts the warm shutdown instead of killing the job.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from rq import Queue, Worker

from agnes.jobs import recovery
from agnes.jobs.backends import audit_job

log = logging.getLogger(__name__)

# Default seconds a running job may go on after SIGTERM; orchestrators kill at 10 s (compose).
DEFAULT_GRACE_SECONDS = 7.0
# Longest wait for the pub/sub listener thread to end at shutdown (it is a daemon thread).
PUBSUB_JOIN_SECONDS = 2.0


class AgnesWorker(Worker):
    """An RQ ``Worker`` with a warm-shutdown grace period and requeue of interrupted jobs.

    Args:
        grace_seconds: how long a running job may go on after the first SIGTERM/SIGINT before it
            is stopped and requeued (seconds, > 0).
        Other arguments are ``rq.Worker``'s.
    """

    def __init__(self, *args: Any, grace_seconds: float = DEFAULT_GRACE_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grace_seconds = float(grace_seconds)
        self._interrupted_job_id: str | None = None
        self._grace_timer: threading.Timer | None = None

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        """How long a running job's registry entry lives after each heartbeat (every
        ``job_monitoring_interval`` = ``AGNES_JOB_HEARTBEAT`` seconds): about three heartbeats,
        so a job whose work-horse died is recovered within seconds (RQ adds a fixed 60 s)."""
        remaining = job.timeout - working_time if job.timeout and job.timeout > 0 else None
        return recovery.heartbeat_ttl(self.job_monitoring_interval, remaining)

    # -- shutdown --------------------------------------------------------------------------------

    def handle_warm_shutdown_request(self) -> None:
        """First SIGTERM/SIGINT: take no new job; give the running one ``grace_seconds``."""
        super().handle_warm_shutdown_request()
        if self.horse_pid and self._grace_timer is None:
            log.info(
                "worker %s: the running job may finish within %.0f s, then it is requeued",
                self.name,
                self.grace_seconds,
            )
            timer = threading.Timer(self.grace_seconds, self._grace_over)
            timer.daemon = True
            timer.start()
            self._grace_timer = timer

    def _grace_over(self) -> None:
        """Timer thread: the grace period ended with the job still running; stop its work-horse.

        The main thread sees the work-horse end and calls :meth:`handle_job_failure`, which
        requeues the job instead of failing it (Redis and the state store stay in the main thread).
        """
        job_id = self._running_job_id()
        if not self.horse_pid or job_id is None:
            return
        log.warning(
            "worker %s: job %s still running after %.0f s of grace; stopping it", self.name, job_id, self.grace_seconds
        )
        self._interrupted_job_id = job_id
        self.kill_horse()

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        """Second SIGTERM/SIGINT (cold shutdown): kill the work-horse, requeue its job, exit."""
        job_id = self._running_job_id() if self.horse_pid else None
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            if job_id is not None:
                self._requeue(job_id, "cold shutdown of the worker")
            raise

    def handle_job_failure(
        self, job: Any, queue: Any, started_job_registry: Any = None, exc_string: str = "", execution: Any = None
    ) -> None:
        """RQ's failure handling, except for a job this worker stopped at shutdown: that one is requeued."""
        if job.id == self._interrupted_job_id:
            self._interrupted_job_id = None
            self._requeue(
                job.id,
                f"worker shutdown: still running after the {self.grace_seconds:.0f} s grace period",
                execution=execution,
            )
            return
        super().handle_job_failure(
            job, queue, started_job_registry=started_job_registry, exc_string=exc_string, execution=execution
        )

    def _running_job_id(self) -> str | None:
        """Id of the job the work-horse runs, from memory (safe in a timer thread or signal handler)."""
        executions = list(self.executions.values())
        return executions[0].job_id if executions else None

    def _requeue(self, job_id: str, reason: str, *, execution: Any = None) -> None:
        """Put an interrupted job back at the front of its queue and write its ``requeued`` audit row."""
        job = self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
        execution = execution or next(iter(self.executions.values()), None)
        with self.connection.pipeline() as pipeline:
            self.cleanup_execution(job, pipeline=pipeline, execution=execution)
            pipeline.execute()
        job.meta.pop("progress", None)
        started, job.started_at, job.ended_at = job.started_at, None, None
        Queue(job.origin, connection=self.connection, job_class=self.job_class, serializer=self.serializer).enqueue_job(
            job, at_front=True
        )
        log.warning("worker %s: job %s requeued (%s)", self.name, job_id, reason)
        job.started_at = started  # for the audit row's duration only (not saved)
        audit_job(job, "requeued", reason=reason)

    def teardown(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        super().teardown()

    def unsubscribe(self) -> None:
        """Stop the pub/sub listener without the 60 s wait of rq/rq#1613 (see the module docstring)."""
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        log.debug("worker %s: unsubscribing from %s", self.name, self.pubsub_channel_name)
        # Clear the run flag first (stop() with a zero wait), then UNSUBSCRIBE: the reply wakes the
        # thread, which now sees the flag and ends instead of waiting for a new subscription.
        try:
            thread.stop(timeout=0)
        except TypeError:  # redis-py before 8: stop() takes no timeout and does not join
            thread.stop()
        try:
            pubsub.unsubscribe()
        except Exception:  # the connection may already be gone; the thread is a daemon either way
            log.debug("worker %s: unsubscribe failed", self.name, exc_info=True)
        thread.join(PUBSUB_JOIN_SECONDS)
        if thread.is_alive():
            log.warning("worker %s: the pub/sub thread did not end within %.0f s", self.name, PUBSUB_JOIN_SECONDS)
        else:
            pubsub.close()

    # -- the work-horse --------------------------------------------------------------------------

    def setup_work_horse_signals(self) -> None:
        """The work-horse ignores SIGINT and SIGTERM: only its worker decides when it stops."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
