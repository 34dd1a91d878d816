"""Unreviewed bytes reach nobody but the owner and administrators: every route (ZIP, git, info,
detail, versions, files, rollback, install) as owner, colleague and admin, for an entry whose
only version is in review, one whose version was blocked, one with an approved v1 and a v2 in
review, and an archived one the colleague never installed.

Each unreviewed version carries a marker; no response a colleague gets, and nothing any Claude
Code is served (a real ``git clone`` of ``/marketplace.git``), contains one.
"""

from __future__ import annotations

import io
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import LiveServer, bearer
from tests.flea.conftest import People, approve, skill_md, upload, wait_jobs
from tests.marketplace.conftest import GIT_ENV

SCENARIOS = ("in_review", "blocked", "v2_in_review", "archived")
CALLERS = ("owner", "colleague", "admin")


def marker(scenario: str) -> str:
    return f"UNREVIEWED-{scenario.upper()}"


@pytest.fixture(scope="module")
def world(flea_app: Flask, folks: People) -> dict[str, dict[str, Any]]:
    """``{scenario: {"id", "hidden": unreviewed version number, "name"}}``; every caller has tried to
    install every entry (only approved ones take)."""
    api = flea_app.test_client()
    found: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        name = scenario.replace("_", "-")
        hidden_body = f"\n{marker(scenario)}\n"
        first = upload(api, folks.owner, skill_md(name, "" if scenario == "v2_in_review" else hidden_body), name=name)
        entity_id, v1 = first.get_json()["entity"]["id"], first.get_json()["version"]["id"]
        wait_jobs(flea_app)
        hidden = 1
        if scenario == "blocked":
            api.post(f"/api/admin/flea/versions/{v1}/reject", json={"reason": "Unsafe."}, headers=bearer(folks.admin))
        if scenario == "v2_in_review":
            approve(api, folks.admin, v1)
            second = upload(api, folks.owner, skill_md(name, hidden_body), name=name, entity_id=entity_id)
            assert second.status_code == 201
            hidden = 2
        if scenario == "archived":
            approve(api, folks.admin, v1)
            api.post(f"/api/flea/entities/{entity_id}/archive", headers=bearer(folks.owner))
            hidden = 1  # an approved version: hidden from the colleague because the entry is archived
        wait_jobs(flea_app)
        for token in (folks.owner, folks.colleague, folks.admin):
            api.post(f"/api/flea/entities/{entity_id}/install", headers=bearer(token))
        found[scenario] = {"id": entity_id, "hidden": hidden, "name": name}
    return found


def _token(folks: People, caller: str) -> str:
    return {"owner": folks.owner, "colleague": folks.colleague, "admin": folks.admin}[caller]


def _sees(caller: str, scenario: str) -> bool:
    """May the caller see the entry at all."""
    return caller != "colleague" or scenario == "v2_in_review"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_detail_versions_files_install_rollback(
    flea_app: Flask, api: FlaskClient, folks: People, world, caller: str, scenario: str
):
    entry, token = world[scenario], _token(folks, caller)
    eid, hidden, name = entry["id"], entry["hidden"], entry["name"]
    privileged = caller != "colleague"
    detail = api.get(f"/api/flea/entities/{eid}", headers=bearer(token))
    assert detail.status_code == (200 if _sees(caller, scenario) else 404)
    version = api.get(f"/api/flea/entities/{eid}/versions/{hidden}", headers=bearer(token))
    file = api.get(f"/api/flea/entities/{eid}/versions/{hidden}/files/skills/{name}/SKILL.md", headers=bearer(token))
    if privileged:
        assert version.status_code == 200 and file.status_code == 200
        assert marker(scenario) in file.get_data(as_text=True) or scenario == "archived"
    else:
        assert version.status_code == 404 and file.status_code == 404
        for res in (detail, version, file):
            assert marker(scenario) not in res.get_data(as_text=True)
    install = api.post(f"/api/flea/entities/{eid}/install", headers=bearer(token))
    rollback = api.post(f"/api/flea/entities/{eid}/rollback", json={"version": hidden}, headers=bearer(token))
    if not _sees(caller, scenario):
        assert install.status_code == 404 and rollback.status_code == 404
    elif scenario == "v2_in_review":
        assert install.status_code == 200
        expected = 409 if privileged else 403
        assert rollback.status_code == expected
    else:
        code = {"in_review": "entity_not_approved", "blocked": "entity_not_approved", "archived": "entity_archived"}
        assert install.status_code == 409 and install.get_json()["error"] == code[scenario]
        if scenario == "archived":
            assert rollback.status_code == 200  # v1 is approved: serving it again is allowed
        else:
            assert rollback.status_code == 409 and rollback.get_json()["error"] == "version_not_approved"


@pytest.fixture(scope="module")
def server(flea_app: Flask) -> Iterator[LiveServer]:
    live = LiveServer(flea_app)
    yield live
    live.stop()


@pytest.mark.parametrize("caller", CALLERS)
def test_no_claude_code_is_served_unreviewed_bytes(
    flea_app: Flask, api: FlaskClient, folks: People, world, server: LiveServer, caller: str, tmp_path: Path
):
    token = _token(folks, caller)
    res = api.get("/marketplace.zip", headers=bearer(token), buffered=True)
    assert res.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(res.data))
    text = "".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist())
    info = api.get("/marketplace/info", headers=bearer(token)).get_json()
    host = server.url.removeprefix("http://")
    clone = subprocess.run(
        ["git", "clone", "-q", f"http://x:{token}@{host}/marketplace.git", str(tmp_path / "clone")],
        env=GIT_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert clone.returncode == 0, clone.stderr
    cloned = "".join(
        p.read_text(errors="replace") for p in (tmp_path / "clone").rglob("*") if p.is_file() and ".git" not in p.parts
    )
    for scenario in SCENARIOS:
        assert marker(scenario) not in text and marker(scenario) not in cloned and marker(scenario) not in str(info)
    served = {p["name"] for p in info["plugins"]}
    # everyone installed the approved v1 of v2-in-review (before the archive, nobody installed "archived")
    assert "v2-in-review-by-alice-smith" in served
    assert not served & {"in-review-by-alice-smith", "blocked-by-alice-smith", "archived-by-alice-smith"}
