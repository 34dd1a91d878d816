"""Jobs whose worker died (issue 10 item 4): detected within the heartbeat, recorded as
interrupted in the sync history, retried once to success; embedded jobs a restart lost are
recorded as interrupted and their staging folders removed.

Before the fix a sync whose worker was killed stayed ``running`` until RQ's 10-minute maintenance
pass, "Sync now" handed back the dead job, nothing retried and the history said nothing: both tests
time out on that code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agnes.state import state_store
from tests.conftest import ROOT, bearer
from tests.jobs.conftest import HangingGitServer
from tests.jobs.test_worker_process import worker_env
from tests.marketplace.conftest import register, small_marketplace

SLOW_HOST = "https://slow.example.com/"
HEARTBEAT = "1"


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def history(slug: str) -> list[str]:
    from agnes.models.marketplace_history import list_sync_history

    with state_store().read() as con:
        return [h.status for h in reversed(list_sync_history(con, slug))]


@pytest.fixture
def slow_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = HangingGitServer(small_marketplace(tmp_path / "market"))
    yield server
    server.stop()


@pytest.fixture
def app_config(app_config, slow_server):  # type: ignore[no-untyped-def]
    return {**app_config, "AGNES_GIT_URL_REWRITES": [f"{SLOW_HOST}={slow_server.url}"], "AGNES_JOB_HEARTBEAT": 1}


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    """A process in its own session (its output in ``log``), so the test can SIGKILL it."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (RQ's work-horse runs in a process group of its own)."""
    family = [pid]
    for parent in family:
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                family += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    for member in family:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_killed_worker_is_detected_recorded_and_retried_to_success(rq_app, auth, slow_server, tmp_path):  # type: ignore[no-untyped-def]
    client = rq_app.test_client()
    admin = bearer(auth.token("admin@example.com", admin=True))
    register(client, admin, "acme", f"{SLOW_HOST}acme.git")
    leftover = Path(rq_app.config["AGNES_DATA_DIR"]) / "marketplaces" / "acme" / "checkouts" / ".tmp-crashed"
    leftover.mkdir(parents=True)
    env = worker_env(
        rq_app,
        AGNES_GIT_URL_REWRITES=f"{SLOW_HOST}={slow_server.url}",
        AGNES_JOB_HEARTBEAT=HEARTBEAT,
        AGNES_DATA_SOURCE_DIRS=",".join(rq_app.config["AGNES_DATA_SOURCE_DIRS"]),
    )
    processes = []
    try:
        worker = spawn(["worker.py", "--name", f"doomed-{os.getpid()}"], env, tmp_path / "worker1.log")
        processes.append(worker)
        processes.append(spawn(["worker.py", "--cron"], env, tmp_path / "cron.log"))
        job = client.post("/api/marketplaces/acme/sync", headers=admin).json["job"]
        wait_for(slow_server.fetching.is_set, 60, "the sync to start fetching")
        assert client.get(f"/api/jobs/{job['id']}", headers=admin).json["state"] == "running"

        killed_at = time.monotonic()
        kill_tree(worker.pid)  # the worker and its work-horse, as when a machine dies
        worker.wait(10)
        slow_server.release()

        # Detected (within the heartbeat TTL + a cron pass), recorded as interrupted, requeued.
        wait_for(lambda: "interrupted" in history("acme"), 120, "the interrupted history row")
        assert time.monotonic() - killed_at < 120
        assert not leftover.exists()
        # The history row and the requeue are two steps of one recovery pass: allow the second to land.
        wait_for(
            lambda: client.get(f"/api/jobs/{job['id']}", headers=admin).json["state"] == "queued",
            30,
            "the interrupted job requeued",
        )
        # "Sync now" hands back the requeued job, not a dead one.
        again = client.post("/api/marketplaces/acme/sync", headers=admin).json["job"]
        assert again["id"] == job["id"] and again["state"] == "queued"

        processes.append(spawn(["worker.py", "--name", f"rescuer-{os.getpid()}"], env, tmp_path / "worker2.log"))
        done = wait_for(
            lambda: (
                (s := client.get(f"/api/jobs/{job['id']}", headers=admin).json)["state"] in ("finished", "failed") and s
            ),
            120,
            "the retried sync to end",
        )
        assert done["state"] == "finished", (done, (tmp_path / "worker2.log").read_text()[-2000:])
        assert time.monotonic() - killed_at < 180
        assert history("acme") == ["interrupted", "ok"]
        page = client.get("/api/marketplaces/acme", headers=admin).json
        assert page["plugin_count"] == 2 or len(page["plugins"]) == 2
    finally:
        slow_server.release()
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


EMBEDDED_SYNC = """
import sys
from agnes import create_app
from agnes.jobs.marketplace import start_sync
app = create_app()
with app.app_context():
    start_sync("acme", owner_id=None)
print("started", flush=True)
import time
time.sleep(300)
"""


def test_an_embedded_restart_records_running_syncs_as_interrupted(app, auth, client, slow_server, tmp_path):  # type: ignore[no-untyped-def]
    admin = bearer(auth.token("admin@example.com", admin=True))
    register(client, admin, "acme", f"{SLOW_HOST}acme.git")
    checkouts = Path(app.config["AGNES_DATA_DIR"]) / "marketplaces" / "acme" / "checkouts"
    env = worker_env(
        None, AGNES_DATA_DIR=app.config["AGNES_DATA_DIR"], AGNES_GIT_URL_REWRITES=f"{SLOW_HOST}={slow_server.url}"
    )
    server = spawn(["-c", EMBEDDED_SYNC], env, tmp_path / "embedded.log")
    try:
        wait_for(slow_server.fetching.is_set, 60, "the embedded sync to start fetching")
        checkouts.mkdir(parents=True, exist_ok=True)
        (checkouts / ".tmp-staging").mkdir()  # what a sync killed while writing files leaves
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
    finally:
        slow_server.release()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    assert history("acme") == []

    from agnes import create_app

    create_app({"AGNES_DATA_DIR": app.config["AGNES_DATA_DIR"], "REDIS_URL": "", "TESTING": True})
    assert history("acme") == ["interrupted"]
    assert not list(checkouts.glob(".tmp-*"))
    assert not list((Path(app.config["AGNES_DATA_DIR"]) / "state" / "jobs").glob("*.json"))
    # A second start finds nothing left to recover.
    create_app({"AGNES_DATA_DIR": app.config["AGNES_DATA_DIR"], "REDIS_URL": "", "TESTING": True})
    assert history("acme") == ["interrupted"]
