"""Remote tables (agnes/data/remote.py, the postgres connector's remote mode): registered, synced
from the catalog only, listed without a file, skipped by ``agnes pull``; queried at the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.client import Client
from cli.pull import run_pull
from cli.workspace import Workspace
from tests.conftest import bearer
from tests.data.conftest import register, register_remote, write_overlay


def data_dir(app) -> Path:  # type: ignore[no-untyped-def]
    return Path(app.config["AGNES_DATA_DIR"])


@pytest.fixture
def remote(app, pg_remote):  # type: ignore[no-untyped-def]
    """``orders`` and ``customers`` registered as remote tables and synced (catalog only)."""
    from agnes.data.sync import sync_table

    dsn, schema = pg_remote
    write_overlay(data_dir(app), {"REMOTE_PG_DSN": dsn})
    register_remote(schema, "orders", description="Orders at the source")
    register_remote(schema, "customers")
    results = {t: sync_table(t) for t in ("orders", "customers")}
    return dsn, schema, results


def test_remote_sync_reads_only_the_catalog(app, remote):
    from agnes.models import tables
    from agnes.state import state_store

    dsn, schema, results = remote
    orders = results["orders"]
    assert orders["query_mode"] == "remote" and orders["hash"] == ""
    assert orders["rows"] == 1000  # pg_class.reltuples after ANALYZE
    assert orders["size_bytes"] > 8192  # pg_total_relation_size: heap and primary key
    assert not list(data_dir(app).glob("extracts/*/data/*.parquet"))
    with state_store().read() as con:
        state = tables.get_sync_state(con, "orders")
        spec = tables.get_table(con, "orders").source_spec
    assert state.columns[:4] == [
        ["id", "integer"],
        ["customer_id", "integer"],
        ["placed", "timestamp with time zone"],
        ["amount", "numeric(10,2)"],
    ]
    assert spec == {"dsn_env": "REMOTE_PG_DSN", "table": f"{schema}.orders"} and dsn not in str(spec)


def test_a_remote_query_mode_needs_a_table_not_a_query(app):
    from agnes.errors import Invalid

    with pytest.raises(Invalid) as refused:
        register(
            {
                "name": "totals",
                "source_type": "postgres",
                "query_mode": "remote",
                "source_spec": {"dsn_env": "X_PG_DSN", "query": "SELECT 1"},
            }
        )
    assert refused.value.field == "query_mode"


def test_a_missing_relation_fails_the_sync_without_the_dsn(app, pg_remote):
    from agnes.data.sync import SyncFailed, sync_table

    dsn, schema = pg_remote
    write_overlay(data_dir(app), {"REMOTE_PG_DSN": dsn})
    register_remote(schema, "nothing_here")
    with pytest.raises(SyncFailed) as failed:
        sync_table("nothing_here")
    assert "no table or view" in str(failed.value) and dsn not in str(failed.value)


def test_manifest_lists_remote_tables_without_a_file_and_pull_says_so_once(app, live_server, auth, remote, tmp_path):
    from agnes import people

    people.create_grant("everyone", "table", "orders", actor_id=None)
    token = auth.token("analyst@example.com")
    manifest = auth.client.get("/api/sync/manifest", headers=bearer(token)).get_json()["tables"]
    assert set(manifest) == {"orders"}
    entry = manifest["orders"]
    assert entry["query_mode"] == "remote" and entry["file"] is False and entry["hash"] == ""
    assert entry["rows"] == 1000
    assert auth.client.get("/api/data/orders/download", headers=bearer(token)).status_code == 409
    ws = Workspace(tmp_path / "ws")
    first = run_pull(
        Client(live_server.url, token),
        ws,
        only=None,
        dry_run=False,
        reporter=None,
        parallelism=2,
        skip_materialized=False,
    )
    assert first.plan.remote == ["orders"] and first.remote_new == ["orders"] and not first.downloaded
    assert not ws.local_tables()
    second = run_pull(
        Client(live_server.url, token),
        ws,
        only=None,
        dry_run=False,
        reporter=None,
        parallelism=2,
        skip_materialized=False,
    )
    assert second.plan.remote == ["orders"] and second.remote_new == []


# -- POST /api/query, samples, estimates, scans ----------------------------------------------------


@pytest.fixture
def analyst(app, auth, remote):  # type: ignore[no-untyped-def]
    """An analyst granted ``orders`` (not ``customers``); returns request headers."""
    from agnes import people

    people.create_grant("everyone", "table", "orders", actor_id=None)
    return bearer(auth.token("analyst@example.com"))


def post(auth, headers, path, body):  # type: ignore[no-untyped-def]
    return auth.client.post(path, json=body, headers=headers)


def test_query_runs_at_the_source_with_limits(app, auth, analyst):
    answer = post(
        auth,
        analyst,
        "/api/query",
        {"sql": "SELECT status, count(*) AS n, sum(amount) AS total FROM orders GROUP BY status ORDER BY status"},
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["ran_at"] == "source" and body["truncated"] is False
    assert [c["name"] for c in body["columns"]] == ["status", "n", "total"]
    assert [row[:2] for row in body["rows"]] == [["cancelled", 250], ["paid", 750]]
    assert "GROUP BY" in body["source_sql"][0] and '"orders"' in body["source_sql"][0]
    limited = post(auth, analyst, "/api/query", {"sql": "SELECT id FROM orders ORDER BY id", "limit": 10}).get_json()
    assert limited["truncated"] is True and [r[0] for r in limited["rows"]] == list(range(1, 11))
    assert post(auth, analyst, "/api/query", {"sql": "SELECT 1", "limit": 100_001}).status_code == 400


def test_query_names_the_table_it_refuses(app, auth, analyst):
    denied = post(auth, analyst, "/api/query", {"sql": "SELECT * FROM orders JOIN customers ON customer_id = id"})
    assert denied.status_code == 403 and "'customers'" in denied.get_json()["message"]
    unknown = post(auth, analyst, "/api/query", {"sql": "SELECT * FROM no_such_table"})
    assert unknown.status_code == 403


def test_cost_guard_refuses_a_large_scan_before_running(app, auth, analyst):
    app.config["AGNES_REMOTE_MAX_SCAN_BYTES"] = 1000
    refused = post(auth, analyst, "/api/query", {"sql": "SELECT status, count(*) FROM orders GROUP BY status"})
    body = refused.get_json()
    assert refused.status_code == 400 and body["error"] == "remote_scan_too_large"
    assert "1.0 kB" in body["message"] and "estimates this reads" in body["message"]
    # A LIMIT without ORDER BY stops the scan early: the guard scales the estimate down.
    app.config["AGNES_REMOTE_MAX_SCAN_BYTES"] = 20_000
    assert post(auth, analyst, "/api/query", {"sql": "SELECT * FROM orders", "limit": 5}).status_code == 200


def test_refused_statements_never_reach_the_source(app, auth, analyst, pg_statement_log):
    marker = "agnes_marker_4711"
    attempts = [
        f"SELECT * FROM orders; DROP TABLE orders -- {marker}",
        f"DELETE FROM orders WHERE note = '{marker}'",
        f"COPY orders TO '/tmp/{marker}'",
        f"SELECT pg_read_file('/etc/passwd') AS {marker} FROM orders",
        f"SELECT query_to_xml('select 1', true, true, '{marker}') FROM orders",
        f"SELECT * FROM pg_catalog.pg_authid WHERE rolname = '{marker}'",
        f"SELECT * FROM information_schema.tables WHERE table_name = '{marker}'",
        f"SELECT * INTO {marker} FROM orders",
        f"SELECT * FROM orders FOR UPDATE -- {marker}",
        f"SELECT * FROM '/tmp/{marker}.parquet'",
        f"SELECT * FROM read_parquet('/tmp/{marker}.parquet')",
        f"SELECT pg_catalog.pg_sleep(1), '{marker}' FROM orders",
    ]
    for sql in attempts:
        answer = post(auth, analyst, "/api/query", {"sql": sql})
        assert answer.status_code == 400, (sql, answer.get_json())
        assert answer.get_json()["error"] in ("query_refused", "invalid_sql"), sql
    wheres = [
        "1=1; DROP TABLE orders",
        f"customer_id IN (SELECT id FROM customers WHERE name = '{marker}')",
        f"pg_read_file('/etc/{marker}') <> ''",
        f"COPY orders TO '/tmp/{marker}'",
        f"EXISTS (SELECT 1 FROM orders o WHERE o.note = '{marker}')",
    ]
    for where in wheres:
        for path in ("/api/v2/scan/estimate", "/api/v2/scan"):
            answer = post(auth, analyst, path, {"table": "orders", "where": where})
            assert answer.status_code == 400 and answer.get_json()["field"] == "where", (where, answer.get_json())
    assert marker not in pg_statement_log()
    # The log does record what runs (so the check above can fail).
    ran = post(auth, analyst, "/api/query", {"sql": f"SELECT '{marker}' AS m, count(*) FROM orders"})
    assert ran.status_code == 200 and marker in pg_statement_log()


def test_mixed_query_pushes_each_remote_table_with_its_own_filters(app, auth, analyst, folder, remote):
    import psycopg

    from agnes import people
    from agnes.data.sync import sync_table

    (folder / "regions.csv").write_text("customer_id,region\n1,north\n2,south\n")
    register({"name": "regions", "source_type": "csv", "source_spec": {"location": str(folder / "regions.csv")}})
    sync_table("regions")
    people.create_grant("everyone", "table", "regions", actor_id=None)
    answer = post(
        auth,
        analyst,
        "/api/query",
        {
            "sql": "SELECT r.region, count(*) AS n FROM orders o JOIN regions r ON o.customer_id = r.customer_id"
            " WHERE o.status = 'paid' AND o.amount > 10 GROUP BY r.region ORDER BY r.region"
        },
    )
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert body["ran_at"] == "source+server"
    pushed = body["source_sql"][0]
    assert "'paid'" in pushed and "amount" in pushed and "region" not in pushed
    dsn, schema, _ = remote
    with psycopg.connect(dsn) as conn:
        truth = conn.execute(
            f"SELECT customer_id, count(*) FROM \"{schema}\".orders WHERE status = 'paid' AND amount > 10"
            " AND customer_id IN (1, 2) GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert body["rows"] == [["north", truth[0][1]], ["south", truth[1][1]]]


def test_sample_reads_a_few_rows_at_the_source(app, auth, analyst):
    answer = auth.client.get("/api/v2/sample/orders?n=5", headers=analyst)
    body = answer.get_json()
    assert answer.status_code == 200, body
    assert len(body["rows"]) == 5 and body["ran_at"] == "source"
    assert auth.client.get("/api/v2/sample/orders?n=101", headers=analyst).status_code == 400
    assert auth.client.get("/api/v2/sample/customers", headers=analyst).status_code == 403
    schema = auth.client.get("/api/v2/schema/orders", headers=analyst).get_json()
    assert schema["dialect"] == "postgres" and schema["rows"] == 1000 and schema["rows_estimated"] is True
    assert {"name": "amount", "type": "numeric(10,2)"} in schema["columns"]
    listed = auth.client.get("/api/catalog", headers=analyst).get_json()["tables"]
    assert listed[0]["fetch_via"].startswith("agnes snapshot create orders --where")


def test_scan_estimate_and_stream_match_the_source(app, auth, analyst, remote):
    import io

    import psycopg
    import pyarrow.parquet as pq

    dsn, schema, _ = remote
    spec = {"table": "orders", "select": "id,amount,placed", "where": "customer_id = 3 AND status = 'paid'"}
    estimate = post(auth, analyst, "/api/v2/scan/estimate", spec).get_json()
    with psycopg.connect(dsn) as conn:
        truth = conn.execute(
            f"SELECT id, amount, placed FROM \"{schema}\".orders WHERE customer_id = 3 AND status = 'paid' ORDER BY id"
        ).fetchall()
    assert len(truth) / 3 <= estimate["rows"] <= len(truth) * 3
    assert estimate["expected_local_bytes"] > 0 and "WHERE" in estimate["sql"]
    streamed = post(auth, analyst, "/api/v2/scan", spec)
    assert streamed.status_code == 200 and streamed.mimetype == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(streamed.data)).sort_by("id")
    assert [(r["id"], r["amount"], r["placed"]) for r in table.to_pylist()] == truth
    assert str(table.schema.field("amount").type) == "decimal128(10, 2)"
    empty = pq.read_table(io.BytesIO(post(auth, analyst, "/api/v2/scan", {**spec, "where": "id < 0"}).data))
    assert empty.num_rows == 0 and empty.column_names == ["id", "amount", "placed"]
    assert post(auth, analyst, "/api/v2/scan", {**spec, "table": "customers"}).status_code == 403
    assert post(auth, analyst, "/api/v2/scan", {**spec, "select": "nope"}).get_json()["field"] == "select"


# -- the CLI: query --remote, schema/describe/sample, snapshots, disk-info ----------------------------


def test_cli_snapshot_lifecycle(app, live_server, auth, remote, tmp_path):
    import json

    import psycopg

    from agnes import people
    from tests.conftest import cli_env, run_cli

    dsn, schema, _ = remote
    grant = people.create_grant("everyone", "table", "orders", actor_id=None)
    env = {**cli_env(live_server.url, auth.token("analyst@example.com"), tmp_path / "home")}
    env["AGNES_WORKSPACE"] = str(tmp_path / "ws")
    remote_query = run_cli(["query", "--remote", "--limit", "3", "SELECT id FROM orders ORDER BY id"], env)
    assert remote_query.returncode == 0 and "(3 rows)" in remote_query.stdout and "first 3 rows" in remote_query.stderr
    columns = json.loads(run_cli(["schema", "orders", "--json"], env).stdout)
    assert {"name": "placed", "type": "timestamp with time zone"} in columns
    described = run_cli(["describe", "orders", "-n", "3"], env)
    assert "about 1,000 rows" in described.stdout and "(3 rows)" in described.stdout
    where = "customer_id = 7 AND placed >= '2025-01-10'"
    estimate = run_cli(["snapshot", "create", "orders", "--where", where, "--estimate"], env)
    assert estimate.returncode == 0 and "rows (estimate):" in estimate.stdout
    assert not (tmp_path / "ws" / "data" / "snapshots").exists()
    created = run_cli(["snapshot", "create", "orders", "--select", "id,amount", "--where", where, "--as", "o7"], env)
    assert created.returncode == 0, created.stderr
    assert "snapshot o7:" in created.stdout  # progress (plain lines: not a terminal) and the summary
    with psycopg.connect(dsn) as conn:
        truth = conn.execute(f'SELECT id, amount FROM "{schema}".orders WHERE {where} ORDER BY id').fetchall()
    local = run_cli(["query", "-f", "json", "SELECT id, amount FROM o7 ORDER BY id"], env)
    assert [(r["id"], str(r["amount"])) for r in json.loads(local.stdout)] == [(i, str(a)) for i, a in truth]
    listed = json.loads(run_cli(["snapshot", "list", "--json"], env).stdout)
    assert listed[0]["name"] == "o7" and listed[0]["rows"] == len(truth) and listed[0]["orphaned"] is False
    assert run_cli(["snapshot", "create", "orders", "--where", where, "--as", "o7"], env).returncode == 1
    # A pull keeps the snapshot's view; a remote table not snapshotted gets a hint.
    assert run_cli(["pull", "--quiet"], env).returncode == 0
    assert run_cli(["query", "SELECT count(*) FROM o7"], env).returncode == 0
    hinted = run_cli(["query", "SELECT count(*) FROM orders"], env)
    assert hinted.returncode == 1 and "agnes query --remote" in hinted.stderr
    people.delete_grant(grant.id)
    refused = run_cli(["snapshot", "refresh", "o7"], env)
    assert refused.returncode == 1 and "orphaned" in refused.stderr
    assert json.loads(run_cli(["snapshot", "list", "--json"], env).stdout)[0]["orphaned"] is True
    info = json.loads(run_cli(["disk-info", "--json"], env).stdout)
    assert info["snapshots"]["count"] == 1 and info["snapshots"]["bytes"] > 0
    dry = run_cli(["snapshot", "prune", "--older-than", "0s", "--dry-run"], env)
    assert "would drop o7" in dry.stdout and (tmp_path / "ws" / "data" / "snapshots" / "o7.parquet").is_file()
    assert run_cli(["snapshot", "prune", "--larger-than", "1GB"], env).stdout.startswith("0 snapshot(s)")
    assert run_cli(["snapshot", "drop", "o7"], env).returncode == 0
    gone = run_cli(["query", "SELECT count(*) FROM o7"], env)
    assert gone.returncode == 1


def test_admin_table_page_shows_the_estimate_the_snapshot_line_and_a_sample(app, auth, remote):
    from bs4 import BeautifulSoup

    auth.login("admin@example.com", admin=True)
    page = auth.client.get("/admin/tables/orders")
    assert page.status_code == 200
    card = BeautifulSoup(page.data, "html.parser").select_one("#table-remote")
    assert "about 1,000 rows" in card.get_text()
    assert card.select_one("pre").get_text().startswith('agnes snapshot create orders --where "placed >= ')
    assert len(card.select("#remote-sample tbody tr")) == 10
    twin = auth.client.get("/api/admin/registry/orders").get_json()["remote"]
    assert twin["rows_estimate"] == 1000 and len(twin["sample"]["rows"]) == 10


def test_analyst_table_page_shows_the_source_a_sample_and_the_commands(app, auth, analyst):
    from bs4 import BeautifulSoup

    auth.login("analyst@example.com")
    page = auth.client.get("/data/orders")
    assert page.status_code == 200
    soup = BeautifulSoup(page.data, "html.parser")
    assert "about 1,000 rows" in soup.select_one("#data-remote").get_text()
    commands = soup.select_one("#data-commands pre").get_text().splitlines()
    assert commands[0] == "agnes sample orders -n 10"
    assert commands[2].startswith('agnes snapshot create orders --where "placed >= ')
    assert commands[2].endswith("--estimate")
    assert len(soup.select("#data-preview tbody tr")) == 10
    twin = auth.client.get("/api/data/orders").get_json()
    assert twin["remote"]["rows_estimate"] == 1000 and len(twin["preview"]["rows"]) == 10
    assert "sample" not in twin["remote"]
