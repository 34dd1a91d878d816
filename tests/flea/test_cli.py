"""``agnes flea upload`` and ``agnes marketplace search|show|install`` with flea ids, against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from agnes.state import state_store
from tests.conftest import LiveServer, cli_env, run_cli
from tests.flea.conftest import People, approve, skill_md


@pytest.fixture(scope="module")
def server(flea_app: Flask) -> Iterator[LiveServer]:
    live = LiveServer(flea_app)
    yield live
    live.stop()


def test_upload_search_show_and_install_from_the_terminal(
    flea_app: Flask, folks: People, server: LiveServer, tmp_path: Path
) -> None:
    from flask.testing import FlaskClient

    skill = tmp_path / "SKILL.md"
    skill.write_bytes(skill_md("terminal"))
    owner = cli_env(server.url, folks.owner, tmp_path / "owner")
    done = run_cli(["flea", "upload", str(skill), "--name", "terminal-skill", "--category", "Research"], owner)
    assert done.returncode == 0, done.stderr
    assert "under review" in done.stdout
    with state_store().read() as con:
        entity_id, version_id = con.execute(
            "SELECT e.id, v.id FROM flea_entities e JOIN flea_versions v ON v.entity_id = e.id WHERE e.name = ?",
            ["terminal-skill"],
        ).fetchone()

    risky = tmp_path / "risky.md"
    risky.write_bytes(skill_md("risky", "\n```sh\nrm -rf ~\n```\n"))
    refused = run_cli(["flea", "upload", str(risky), "--name", "risky"], owner)
    assert refused.returncode != 0
    assert "rm_rf_home" in refused.stderr and "SKILL.md:11" in refused.stderr

    colleague = cli_env(server.url, folks.colleague, tmp_path / "colleague")
    blocked = run_cli(["marketplace", "install", entity_id], colleague)
    assert blocked.returncode != 0  # 404: not approved, so the colleague cannot see it
    client: FlaskClient = flea_app.test_client()
    assert approve(client, folks.admin, version_id).status_code == 200

    found = run_cli(["marketplace", "search", "--tab", "flea", "terminal"], colleague)
    assert found.returncode == 0, found.stderr
    assert entity_id in found.stdout and "alice-smith" in found.stdout
    shown = run_cli(["marketplace", "show", entity_id], colleague)
    assert shown.returncode == 0, shown.stderr
    assert "not in your stack" in shown.stdout and "skills/terminal-skill/SKILL.md" in shown.stdout
    added = run_cli(["marketplace", "install", entity_id], colleague)
    assert added.returncode == 0, added.stderr
    assert "terminal-skill-by-alice-smith@agnes" in added.stdout
