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
