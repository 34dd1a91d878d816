"""End to end: fixture CSVs and a PostgreSQL table registered, synced by a real RQ worker process,
granted to a group, pulled by the real CLI against a live server, queried, changed, revoked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, bearer, cli_env, redis_url, run_cli, run_rq_jobs
from tests.data.conftest import write_overlay

pytestmark = pytest.mark.slow


def run_worker_process(app) -> None:  # type: ignore[no-untyped-def]
    """``python worker.py --burst`` as its own process on the test's Redis DB and data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        REDIS_URL=redis_url(),
        AGNES_DATA_DIR=app.config["AGNES_DATA_DIR"],
        AGNES_DATA_SOURCE_DIRS=",".join(app.config["AGNES_DATA_SOURCE_DIRS"]),
        AGNES_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "worker.py", "--burst"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]


def pull(env: dict[str, str], workspace: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    done = run_cli(["pull", "--json", "--workspace", str(workspace), *extra], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_register_sync_grant_pull_query_change_revoke(rq_app, rq_live_server, tmp_path, folder, pg_dsn):
    import psycopg

    from agnes import people

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS islands")
        conn.execute("CREATE TABLE islands (name text PRIMARY KEY, region text, area_km2 numeric(8,2))")
        conn.execute(
            "INSERT INTO islands VALUES ('Biscoe', 'South', 10.5), ('Dream', 'Central', 3.25),"
            " ('Torgersen', 'North', 0.5)"
        )
    write_overlay(Path(rq_app.config["AGNES_DATA_DIR"]), {"ISLANDS_PG_DSN": pg_dsn})

    client = rq_app.test_client()
    people.create_user("admin2@example.com")
    from tests.conftest import Auth

    auth = Auth(rq_app, client)
    admin = bearer(auth.token("admin2@example.com", admin=True))
    registrations = [
        {
            "name": "penguins",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "penguins.csv"), "null_strings": ["NA"]},
        },
        {
            "name": "stocks",
            "source_type": "csv",
            "schedule": "daily 03:00",
            "source_spec": {"location": str(folder / "stocks.csv"), "date_format": "%b %d %Y"},
        },
        {
            "name": "weather",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "seattle-weather.csv"), "date_format": "%Y/%m/%d"},
        },
        {
            "name": "islands",
            "source_type": "postgres",
            "source_spec": {"dsn_env": "ISLANDS_PG_DSN", "table": "islands"},
        },
    ]
    for body in registrations:
        created = client.post("/api/admin/register-table", json=body, headers=admin)
        assert created.status_code == 201, created.json
    triggered = client.post(
        "/api/sync/trigger", json={"tables": ["penguins", "stocks", "weather", "islands"]}, headers=admin
    )
    assert triggered.status_code == 202
    run_worker_process(rq_app)
    for job in triggered.json["jobs"]:
        status = client.get(f"/api/jobs/{job['id']}", headers=admin).json
        assert status["state"] == "finished", status

    group = people.create_group("Analysts", actor_id=None)
    people.create_user("ana@example.com")
    people.add_member(group.id, "ana@example.com", actor_id=None)
    grants = {t: people.create_grant(group.id, "table", t, actor_id=None) for t in ("penguins", "stocks", "islands")}
    analyst = auth.token("ana@example.com")
    env = cli_env(rq_live_server.url, analyst, tmp_path / "home")
    workspace = tmp_path / "ws"
    workspace.mkdir()

    first = pull(env, workspace)
    assert first["downloaded"] == ["islands", "penguins", "stocks"] and first["errors"] == {}
    assert sorted(p.name for p in (workspace / "data" / "tables").iterdir()) == [
        "islands.parquet",
        "penguins.parquet",
        "stocks.parquet",
    ]

    joined = run_cli(
        [
            "query",
            "--format",
            "json",
            "--workspace",
            str(workspace),
            "SELECT i.region, count(*) AS birds FROM penguins p JOIN islands i ON i.name = p.island"
            " GROUP BY i.region ORDER BY birds DESC",
        ],
        env,
    )
    assert joined.returncode == 0, joined.stderr
    assert json.loads(joined.stdout) == [
        {"region": "South", "birds": 168},
        {"region": "Central", "birds": 124},
        {"region": "North", "birds": 52},
    ]

    database = workspace / "data" / "analytics.duckdb"
    before = database.stat().st_mtime_ns
    second = pull(env, workspace)
    assert second["downloaded"] == [] and second["unchanged"] == ["islands", "penguins", "stocks"]
    assert database.stat().st_mtime_ns == before

    with (folder / "stocks.csv").open("a") as fh:
        fh.write("\nAGNS,Jan 1 2011,1.23\n")
    client.post("/api/sync/trigger", json={"tables": ["stocks"]}, headers=admin)
    run_rq_jobs(rq_app)
    third = pull(env, workspace)
    assert third["downloaded"] == ["stocks"] and third["unchanged"] == ["islands", "penguins"]
    count = run_cli(
        ["query", "-f", "csv", "--workspace", str(workspace), "SELECT count(*) AS n FROM stocks WHERE symbol = 'AGNS'"],
        env,
    )
    assert count.stdout.splitlines() == ["n", "1"], count.stderr

    people.delete_grant(grants["islands"].id)
    fourth = pull(env, workspace)
    assert fourth["removed"] == ["islands"] and fourth["downloaded"] == []
    assert not (workspace / "data" / "tables" / "islands.parquet").exists()
    gone = run_cli(["query", "--workspace", str(workspace), "SELECT * FROM islands"], env)
    assert gone.returncode == 1 and "islands" in gone.stderr

    # Non-TTY progress: one line per table; --quiet prints nothing.
    with (folder / "stocks.csv").open("a") as fh:
        fh.write("AGNS,Feb 1 2011,1.5\n")
    client.post("/api/sync/trigger", json={"tables": ["stocks"]}, headers=admin)
    run_rq_jobs(rq_app)
    plain = run_cli(["pull", "--workspace", str(workspace)], env)
    assert plain.returncode == 0
    lines = plain.stdout.splitlines()
    assert lines[0].startswith("agnes pull: downloading 1 table(s)")
    assert lines[1].startswith("[1/1] stocks ") and lines[1].endswith(" ok")
    assert lines[-1].startswith("agnes pull: 1 downloaded")
    quiet = run_cli(["pull", "--quiet", "--workspace", str(workspace)], env)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
