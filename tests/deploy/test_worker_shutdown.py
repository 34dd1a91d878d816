"""``worker.py`` stops promptly: SIGTERM is a warm shutdown with a grace period (the running job
finishes, or is requeued and finished by the next worker), a second SIGTERM is a cold shutdown,
and ``worker.py --cron`` exits at once. Real worker processes on the real Redis."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from flask import Flask

from agnes.jobs import JobState, enqueue, get_job
from tests.conftest import redis_url
from tests.deploy.processes import ROOT, Service, clean_env
from tests.deploy.slow_jobs import run_slow

pytestmark = pytest.mark.slow
PYTHON = sys.executable


def _worker(app: Flask, tmp_path: Path, name: str, *args: str, grace: int = 7) -> Service:
    env = clean_env(
        AGNES_DATA_DIR=app.config["AGNES_DATA_DIR"],
        AGNES_QUEUE=app.config["AGNES_QUEUE"],
        REDIS_URL=redis_url(),
        AGNES_WORKER_GRACE=str(grace),
    )
    return Service(name, [PYTHON, "worker.py", "--name", f"{name}-{os.getpid()}", *args], env, tmp_path / f"{name}.log")


def _wait_started(workdir: Path, attempt: int, worker: Service, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list((workdir / "attempts").glob("*"))) >= attempt:
            return
        assert worker.proc.poll() is None, worker.tail()
        time.sleep(0.05)
    raise AssertionError(f"attempt {attempt} did not start:\n{worker.tail()}")


def _audit(job_id: str) -> list[tuple[str, str | None]]:
    import json

    from agnes.jobs.backends import rq_job_id
    from agnes.state import state_store

    with state_store().read() as con:
        rows = con.execute(
            'SELECT result, params FROM audit_log WHERE resource = ? ORDER BY "timestamp"',
            [f"job:{rq_job_id(job_id)}"],
        ).fetchall()
    return [(result, json.loads(params).get("reason") if params else None) for result, params in rows]


def _second_worker_finishes(app: Flask, tmp_path: Path, job_id: str, workdir: Path) -> None:
    second = _worker(app, tmp_path, "second", "--burst")
    try:
        assert second.proc.wait(120) == 0, second.tail()
    finally:
        second.kill()
    assert get_job(job_id).state is JobState.FINISHED
    assert (workdir / "result.txt").read_text() == "done by attempt 2"


def _busy_worker(app: Flask, tmp_path: Path, job_id: str, seconds: float, grace: int) -> Service:
    """A worker.py process running the slow job ``job_id`` (its first attempt has started)."""
    worker = _worker(app, tmp_path, "worker", grace=grace)
    try:
        worker.wait_for_log(r"Listening on")
        enqueue(run_slow, str(tmp_path / "job"), seconds, job_id=job_id)
        _wait_started(tmp_path / "job", 1, worker)
    except BaseException:
        worker.kill()
        raise
    return worker


def _sigterm(worker: Service) -> float:
    """SIGTERM a worker; returns the seconds it took to exit (cleanly, within 10 s)."""
    try:
        took = worker.stop(timeout=10)
    finally:
        worker.kill()
    assert worker.proc.returncode == 0, worker.tail()
    return took


def test_sigterm_lets_a_short_job_finish(rq_app: Flask, tmp_path: Path) -> None:
    workdir = tmp_path / "job"
    assert _sigterm(_busy_worker(rq_app, tmp_path, "slow-short", 2, grace=7)) < 10
    assert get_job("slow-short").state is JobState.FINISHED
    assert (workdir / "result.txt").read_text() == "done by attempt 1"
    assert [r for r, _ in _audit("slow-short")] == ["finished"]


def test_sigterm_requeues_a_job_that_outlasts_the_grace_period(rq_app: Flask, tmp_path: Path) -> None:
    workdir = tmp_path / "job"
    took = _sigterm(_busy_worker(rq_app, tmp_path, "slow-long", 120, grace=2))
    assert 2 <= took < 10, took
    # Nothing half-written: the interrupted attempt left no result and no temporary file.
    assert sorted(p.name for p in workdir.iterdir()) == ["attempts"]
    assert get_job("slow-long").state is JobState.QUEUED
    assert _audit("slow-long") == [("requeued", "worker shutdown: still running after the 2 s grace period")]
    _second_worker_finishes(rq_app, tmp_path, "slow-long", workdir)
    assert [r for r, _ in _audit("slow-long")] == ["requeued", "finished"]


def test_a_second_sigterm_is_a_cold_shutdown(rq_app: Flask, tmp_path: Path) -> None:
    workdir = tmp_path / "job"
    worker = _busy_worker(rq_app, tmp_path, "slow-cold", 120, grace=60)
    try:
        first = worker.signal(signal.SIGTERM)
        worker.wait_for_log(r"warm shut down requested")
        time.sleep(1.2)  # RQ ignores a repeat within 1 s (a pool and a terminal may both send one)
        worker.signal(signal.SIGINT)
        took = worker.wait_exit(first, timeout=10)
    finally:
        worker.kill()
    assert took < 10, took
    assert "cold shut down" in worker.log_text()
    assert get_job("slow-cold").state is JobState.QUEUED
    assert _audit("slow-cold") == [("requeued", "cold shutdown of the worker")]
    _second_worker_finishes(rq_app, tmp_path, "slow-cold", workdir)


@pytest.mark.parametrize("args", [[], ["--cron"]])
def test_an_idle_worker_and_the_cron_exit_at_once(rq_app: Flask, tmp_path: Path, args: list[str]) -> None:
    for attempt in range(3):
        service = _worker(rq_app, tmp_path, f"idle-{attempt}", *args)
        try:
            service.wait_for_log(r"CronScheduler .*: starting" if args else r"Listening on")
            time.sleep(0.5)
        except BaseException:
            service.kill()
            raise
        took = _sigterm(service)
        assert took < 5, f"{args}: exit took {took:.1f} s\n{service.tail()}"


def test_unsubscribing_does_not_wait_for_the_pubsub_timeout(redis_conn) -> None:  # type: ignore[no-untyped-def]
    """rq/rq#1613: the listener thread must end even when it handles the UNSUBSCRIBE reply before
    the worker stops it (forced here by slowing ``unsubscribe`` down)."""
    from rq import Queue

    from agnes.jobs.worker import AgnesWorker

    worker = AgnesWorker([Queue("pubsub-test", connection=redis_conn)], connection=redis_conn)
    worker.subscribe()
    time.sleep(0.3)
    pubsub = worker.pubsub
    plain_unsubscribe = pubsub.unsubscribe

    def slow_unsubscribe(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = plain_unsubscribe(*args, **kwargs)
        time.sleep(0.5)  # the listener thread reads the reply meanwhile
        return result

    pubsub.unsubscribe = slow_unsubscribe
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 3
    assert not worker.pubsub_thread.is_alive()


def test_the_work_horse_ignores_sigterm() -> None:
    """A SIGTERM to the whole process group (systemd, a terminal) must not kill the running job."""
    import subprocess
    import sys

    code = (
        "import os, signal, time\n"
        "from agnes.jobs.worker import AgnesWorker\n"
        "AgnesWorker.setup_work_horse_signals(None)\n"
        "os.kill(os.getpid(), signal.SIGTERM); os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(0.2); print('alive')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "alive", done.stderr
