"""The issue's "Done when", end to end with real parts: Redis, a real ``worker.py`` process, the
stub Messages API on 127.0.0.1, the app on a loopback port and the real Claude Code CLI.

An analyst uploads a plugin ZIP, the worker's review approves it, a colleague installs it and
Claude Code installs ``<name>-by-<handle>@agnes`` through ``/marketplace.git``. The stub blocks v2
and Claude Code keeps v1; an administrator approves v2 and Claude Code updates; a rollback brings
v1 back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, bearer
from tests.flea.conftest import make_people, plugin_zip, upload
from tests.flea.reviewer_stub import ReviewerStub
from tests.jobs.test_worker_process import worker_env
from tests.marketplace.test_claude_code import CLAUDE, claude

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code not installed (scripts/install-test-tools.sh)"),
]
PLUGIN = "kit-by-alice-smith"


@pytest.fixture
def stub() -> Iterator[ReviewerStub]:
    server = ReviewerStub()
    yield server
    server.stop()


@pytest.fixture
def app_config(app_config: dict[str, Any], stub: ReviewerStub) -> dict[str, Any]:
    return {**app_config, "ANTHROPIC_API_KEY": "sk-ant-e2e", "ANTHROPIC_BASE_URL": stub.url}


@pytest.fixture
def worker(rq_app, tmp_path: Path, stub: ReviewerStub) -> Iterator[subprocess.Popen]:  # type: ignore[no-untyped-def]
    log = (tmp_path / "worker.log").open("w")
    env = worker_env(rq_app, ANTHROPIC_API_KEY="sk-ant-e2e", ANTHROPIC_BASE_URL=stub.url)
    proc = subprocess.Popen(
        [sys.executable, "worker.py", "--name", f"flea-e2e-{id(log)}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _wait_status(client, token: str, entity_id: str, number: int, status: str, log: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while True:
        page = client.get(f"/api/flea/entities/{entity_id}", headers=bearer(token)).get_json()
        version = next(v for v in page["versions"] if v["number"] == number)
        if version["status"] == status:
            return page
        assert time.monotonic() < deadline, f"v{number} is {version}\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def _installed_version(home: Path) -> str:
    """The version Claude Code recorded for the installed plugin (what ``claude plugin list`` shows)."""
    installed = json.loads((home / ".claude" / "plugins" / "installed_plugins.json").read_text())
    return installed["plugins"][f"{PLUGIN}@agnes"][0]["version"]


def _update(home: Path) -> None:
    for args in (("marketplace", "update", "agnes"), ("update", f"{PLUGIN}@agnes")):
        done = claude(home, *args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_upload_review_install_block_approve_rollback(rq_app, rq_live_server, worker, stub, tmp_path):  # type: ignore[no-untyped-def]
    client = rq_app.test_client()
    folks = make_people(rq_app)
    log = tmp_path / "worker.log"

    # v1: uploaded, reviewed by the worker (stub: safe), approved
    stub.script[:] = ["safe"]
    res = upload(client, folks.owner, plugin_zip("kit", "v1"), filename="kit.zip", kind="plugin", name="kit")
    assert res.status_code == 201, res.get_json()
    entity_id = res.get_json()["entity"]["id"]
    page = _wait_status(client, folks.owner, entity_id, 1, "approved", log)
    v1_label = page["entity"]["served_label"]
    assert v1_label and v1_label.startswith("1-") and all(stub.checks), page

    # a colleague installs it; Claude Code installs kit-by-alice-smith@agnes through /marketplace.git
    assert client.post(f"/api/flea/entities/{entity_id}/install", headers=bearer(folks.colleague)).status_code == 200
    home = tmp_path / "colleague-home"
    home.mkdir()
    host = rq_live_server.url.removeprefix("http://")
    added = claude(home, "marketplace", "add", f"http://x:{folks.colleague}@{host}/marketplace.git")
    assert added.returncode == 0, added.stdout + added.stderr
    installed = claude(home, "install", f"{PLUGIN}@agnes")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = claude(home, "list", "--json")
    assert [p["version"] for p in json.loads(listed.stdout) if p["id"] == f"{PLUGIN}@agnes"] == [v1_label]
    assert _installed_version(home) == v1_label
    cache = home / ".claude" / "plugins" / "cache" / "agnes" / PLUGIN / v1_label
    assert "Revision v1." in (cache / "skills" / "report" / "SKILL.md").read_text()

    # v2: the stub blocks it; Claude Code keeps v1
    stub.script[:] = ["high"]
    res = upload(client, folks.owner, plugin_zip("kit", "v2"), filename="kit.zip", kind="plugin", entity_id=entity_id)
    assert res.status_code == 201, res.get_json()
    v2_id = res.get_json()["version"]["id"]
    _wait_status(client, folks.owner, entity_id, 2, "blocked", log)
    _update(home)
    assert _installed_version(home) == v1_label

    # an administrator approves v2: Claude Code updates
    approved = client.post(f"/api/admin/flea/versions/{v2_id}/approve", headers=bearer(folks.admin))
    assert approved.status_code == 200, approved.get_json()
    _update(home)
    v2_label = _installed_version(home)
    assert v2_label.startswith("2-")
    cache = home / ".claude" / "plugins" / "cache" / "agnes" / PLUGIN / v2_label
    assert "Revision v2." in (cache / "skills" / "report" / "SKILL.md").read_text()

    # rollback brings v1 back
    back = client.post(f"/api/flea/entities/{entity_id}/rollback", json={"version": 1}, headers=bearer(folks.owner))
    assert back.status_code == 200, back.get_json()
    _update(home)
    assert _installed_version(home) == v1_label
