"""``agnes admin activity`` and ``agnes admin activity health`` against a live server."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from flask import Flask

from agnes.models import utcnow
from tests.activity.conftest import seed_audit
from tests.conftest import LiveServer, cli_env, run_cli


def test_timeline_and_health_from_the_cli(app: Flask, live_server: LiveServer, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path)
    for n in range(5):
        seed_audit(utcnow() - timedelta(minutes=n + 1), "bulk.cli", resource=f"table:t{n}", params={"n": n})
    seed_audit(utcnow() - timedelta(days=2), "bulk.cli", resource="table:old")

    rows = run_cli(["admin", "activity", "--action", "bulk.", "--limit", "3", "--json"], env)
    assert rows.returncode == 0, rows.stderr
    assert [r["resource"] for r in json.loads(rows.stdout)] == ["table:t0", "table:t1", "table:t2"]
    every = run_cli(["admin", "activity", "--action", "bulk.", "--since", "3d", "--json"], env)
    assert [r["resource"] for r in json.loads(every.stdout)][-1] == "table:old"  # read over several pages
    table = run_cli(["admin", "activity", "--action", "bulk.", "--limit", "2"], env)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:3] == ["TIME", "(UTC)", "USER"]
    assert "raise --limit" in table.stderr
    bad = run_cli(["admin", "activity", "--since", "whenever"], env)
    assert bad.returncode == 1 and "since must be" in bad.stderr

    # In tests no scheduler runs: the pulse is red, and the command says so with exit code 3.
    health = run_cli(["admin", "activity", "health", "--json"], env)
    assert health.returncode == 3, health.stderr
    pulse = json.loads(health.stdout)
    assert pulse["status"] == "red" and next(f for f in pulse["fields"] if f["key"] == "cron")["status"] == "red"
    text = run_cli(["admin", "activity", "health"], env)
    assert text.stdout.startswith("RED: ") and "!! Scheduler: never" in text.stdout
