"""``worker.py`` as a real process: an RQ worker that runs a job enqueued through the API,
the RQ cron scheduler registering Agnes's periodic jobs, and the refusal without Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import ROOT, redis_url


def worker_env(app: Flask | None, **extra: str) -> dict[str, str]:
    """The environment of a worker process of this checkout (same data dir and Redis as ``app``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "REDIS_URL"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", AGNES_LOG_LEVEL="INFO")
    if app is not None:
        env.update(
            AGNES_DATA_DIR=app.config["AGNES_DATA_DIR"],
            AGNES_SEED_ADMIN_EMAIL=app.config["AGNES_SEED_ADMIN_EMAIL"],
            AGNES_QUEUE=app.config["AGNES_QUEUE"],
            REDIS_URL=redis_url(),
        )
    env.update(extra)
    return env


def test_real_worker_runs_the_recount_job(rq_app: Flask) -> None:
    from agnes import people
    from agnes.auth.pat import create_pat
    from agnes.models import groups
    from agnes.state import state_store

    admin = people.ensure_seed_admin("admin@example.com")
    team = people.create_group("Finance", actor_id=admin.id)
    for name in ("ana", "bo", "cy"):
        people.add_member(team.id, people.create_user(f"{name}@example.com").email, actor_id=admin.id)
    _, token = create_pat(admin.id, "worker-test", 1)
    client = rq_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    started = client.post("/admin/groups/recount", headers=headers)
    assert started.status_code == 303, started.data
    job_id = started.headers["Location"].rsplit("/jobs/", 1)[1]
    assert client.get(f"/api/jobs/{job_id}", headers=headers).get_json()["state"] == "queued"

    proc = subprocess.run(
        [sys.executable, "worker.py", "--burst", "--name", f"agnes-test-{os.getpid()}"],
        cwd=ROOT,
        env=worker_env(rq_app),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "terminated unexpectedly" not in proc.stderr, proc.stderr[-3000:]

    status = client.get(f"/api/jobs/{job_id}", headers=headers).get_json()
    assert status["state"] == "finished", f"{status}\n{proc.stderr[-5000:]}"
    assert status["result"]["Finance"] == 3
    assert status["progress"]["message"] == "Done"
    with state_store().read() as con:
        counted = {g.id: (g.member_count, g.counted_at) for g in groups.list_groups(con)}
        everyone = len(groups.list_members(con, "everyone"))
    assert counted[team.id][0] == 3 and counted[team.id][1] is not None
    assert counted["admin"][0] == 1
    assert counted["everyone"][0] == everyone == 4
    # The job wrote its audit row from the worker process.
    with state_store().read() as con:
        rows = con.execute(
            "SELECT result, client_kind FROM audit_log WHERE resource = ? AND action LIKE 'job.%'", [f"job:{job_id}"]
        ).fetchall()
    assert rows == [("finished", "job")]


def _cron_schedulers(redis_conn) -> list:  # type: ignore[no-untyped-def]
    from rq.cron import CronScheduler

    return CronScheduler.all(redis_conn)


def test_cron_registers_the_periodic_jobs(rq_app: Flask, redis_conn) -> None:  # type: ignore[no-untyped-def]
    from agnes.jobs.schedule import PERIODIC

    assert _cron_schedulers(redis_conn) == []
    proc = subprocess.Popen(
        [sys.executable, "worker.py", "--cron"],
        cwd=ROOT,
        env=worker_env(rq_app),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        schedulers: list = []
        while time.monotonic() < deadline and proc.poll() is None:
            schedulers = [s for s in _cron_schedulers(redis_conn) if s.pid == proc.pid]
            if schedulers and schedulers[0].get_jobs():
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"worker.py --cron exited early:\n{proc.stdout.read() if proc.stdout else ''}"
        assert len(schedulers) == 1, "no CronScheduler of worker.py --cron appeared in Redis"
        registered = {job.name: job for job in schedulers[0].get_jobs()}
        assert set(registered) == {f"agnes:{p.name}" for p in PERIODIC}
        for entry in PERIODIC:
            job = registered[f"agnes:{entry.name}"]
            assert job.cron == entry.cron
            assert job.queue_name == rq_app.config["AGNES_QUEUE"]
            assert job.func_name == "agnes.jobs.schedule.run_periodic"
            assert json.loads(json.dumps(job.args)) == [entry.name]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - diagnostic path
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output[-3000:]
    # A clean stop unregisters the scheduler.
    assert [s for s in _cron_schedulers(redis_conn) if s.pid == proc.pid] == []


@pytest.mark.parametrize("args", [[], ["--cron"], ["--burst"]])
def test_worker_without_redis_exits_2(tmp_path: Path, args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "worker.py", *args],
        cwd=ROOT,
        env=worker_env(None, AGNES_DATA_DIR=str(tmp_path / "data")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "REDIS_URL is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
