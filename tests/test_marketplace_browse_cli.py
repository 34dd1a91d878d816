"""``agnes marketplace search|show`` against a live server with the fixture marketplaces synced."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import cli_env, run_cli
from tests.marketplace_pages_fixtures import SYSTEM, app_config, synced_template  # noqa: F401


def test_search_and_show(live_server, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(live_server.url, auth.token("ana@example.com"), tmp_path / "home")

    found = run_cli(["marketplace", "search", "python", "--sort", "name"], env)
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0].split()[:3] == ["PLUGIN", "VERSION", "CATEGORY"]
    assert [line.split()[0] for line in lines[2:]] == ["team/python-development", "wshobson/python-development"]

    as_json = run_cli(["marketplace", "search", "--tab", "my", "--json"], env)
    data = json.loads(as_json.stdout)
    assert [i["id"] for i in data["items"]] == [SYSTEM] and data["items"][0]["in_stack"] is True

    paged = run_cli(["marketplace", "search", "--limit", "2"], env)
    assert "2 of 8 (page 1 of 4" in paged.stdout

    shown = run_cli(["marketplace", "show", "team/team-tools"], env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "team-tools 2.0.0"
    assert "Stack: not in your stack (add with 'agnes marketplace install team/team-tools'" in shown.stdout
    assert "  /deploy" in shown.stdout.splitlines() and "  warehouse (http) https://mcp.example" in shown.stdout

    denied = run_cli(["marketplace", "show", "wshobson/ui-design"], env)
    assert denied.returncode == 1 and "granted" in denied.stderr
    bad = run_cli(["marketplace", "show", "no-slash"], env)
    assert bad.returncode == 2
