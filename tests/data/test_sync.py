"""Connectors, the extract.duckdb contract, the orchestrator and sync bookkeeping."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from agnes.data import extracts, orchestrator
from agnes.data.registration import register_table
from agnes.data.sync import SyncFailed, sync_table
from agnes.errors import Conflict, Invalid
from agnes.models import tables
from agnes.state import state_store
from tests.data.conftest import penguins_fields, register, write_overlay


def data_dir(app) -> Path:  # type: ignore[no-untyped-def]
    return Path(app.config["AGNES_DATA_DIR"])


def query(app, sql: str):  # type: ignore[no-untyped-def]
    con = orchestrator.open_analytics(data_dir(app))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_csv_with_na_nulls_is_extracted_under_the_contract(app, folder):
    register(penguins_fields(folder))
    result = sync_table("penguins")
    assert result["rows"] == 344
    parquet = extracts.parquet_path(data_dir(app), "csv", "penguins")
    assert parquet.is_file() and result["hash"] == extracts.file_digests(parquet).md5
    meta = extracts.read_meta(parquet.parent.parent / "extract.duckdb")
    assert [(m.table_name, m.rows, m.query_mode, m.size_bytes) for m in meta] == [
        ("penguins", 344, "local", parquet.stat().st_size)
    ]
    con = duckdb.connect(str(parquet.parent.parent / "extract.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM penguins WHERE sex IS NULL").fetchone() == (11,)
    con.close()
    assert query(app, "SELECT count(*), count(bill_length_mm) FROM penguins") == [(344, 342)]
    with state_store().read() as con:
        state = tables.get_sync_state(con, "penguins")
        history = tables.list_history(con, "penguins")
    assert state.status == "ok" and state.rows == 344 and state.hash == result["hash"]
    assert ["bill_length_mm", "DOUBLE"] in state.columns
    assert [h.status for h in history] == ["ok"]


def test_raw_penguins_renames_and_non_iso_dates(app, folder):
    register(
        {
            "name": "penguins raw",
            "source_type": "csv",
            "source_spec": {
                "location": str(folder / "penguins-raw.csv"),
                "null_strings": "NA",
                "rename": "Culmen Length (mm) = culmen_length_mm\nDelta 15 N (o/oo) = delta_15n",
            },
        }
    )
    register(
        {
            "name": "stocks",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "stocks.csv"), "date_format": "%b %d %Y"},
        }
    )
    register(
        {
            "name": "weather",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "seattle-weather.csv"), "date_format": "%Y/%m/%d"},
        }
    )
    for table_id in ("penguins_raw", "stocks", "weather"):
        sync_table(table_id)
    assert query(app, "SELECT max(culmen_length_mm), count(delta_15n) FROM penguins_raw") == [(59.6, 330)]
    assert query(app, "SELECT typeof(date), min(date)::VARCHAR FROM stocks GROUP BY 1") == [("DATE", "2000-01-01")]
    assert query(app, "SELECT typeof(date), count(*) FROM weather GROUP BY 1") == [("DATE", 1461)]


def test_a_ragged_short_csv_fails_naming_the_line(app, folder):
    # Issue 15: the sniffer took the 4-field last line of this 4-line file for the header and the
    # sync reported "ok, 0 rows".
    (folder / "ragged.csv").write_text("a,b,c\n1,2,3\n4,5\n6,7,8,9\n")
    register({"name": "ragged", "source_type": "csv", "source_spec": {"location": str(folder / "ragged.csv")}})
    with pytest.raises(SyncFailed) as failure:
        sync_table("ragged")
    assert "line 3 has 2 fields where the header has 3" in str(failure.value)
    with state_store().read() as con:
        assert tables.get_sync_state(con, "ragged").status == "failed"


def test_a_csv_read_as_zero_rows_from_a_non_empty_file_is_a_warning(app, folder):
    # Issue 15: a non-empty file that parses to 0 rows was a silent "ok".
    (folder / "headers.csv").write_text("a,b\n\n")
    register({"name": "empty", "source_type": "csv", "source_spec": {"location": str(folder / "headers.csv")}})
    assert sync_table("empty")["warning"] is None  # only a header: nothing to warn about
    (folder / "skipped.csv").write_text("a,b\n1,2\n3,4\n")
    spec = {"location": str(folder / "skipped.csv"), "skip_rows": 1, "header": False}
    register({"name": "skipped", "source_type": "csv", "source_spec": {**spec, "skip_rows": 0}})
    assert sync_table("skipped")["warning"] is None
    (folder / "odd.csv").write_text("a,b\n1,2\n3,4\n")
    register(
        {"name": "odd", "source_type": "csv", "source_spec": {"location": str(folder / "odd.csv"), "skip_rows": 2}}
    )
    result = sync_table("odd")
    assert result["rows"] == 0 and "read as 0 rows" in result["warning"] and "warning" in result["summary"]
    with state_store().read() as con:
        assert "read as 0 rows" in tables.get_sync_state(con, "odd").warning
        assert tables.list_history(con, "odd")[0].warning == tables.get_sync_state(con, "odd").warning


def test_malformed_csv_fails_clearly_and_keeps_the_previous_extract(app, folder):
    register(penguins_fields(folder))
    first = sync_table("penguins")
    parquet = extracts.parquet_path(data_dir(app), "csv", "penguins")
    lines = (folder / "penguins.csv").read_text().splitlines()
    lines.insert(10, "Adelie,Torgersen,oops,1,2,3,male,2007,extra,columns")
    (folder / "penguins.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SyncFailed) as failure:
        sync_table("penguins")
    assert "penguins.csv" in str(failure.value) and "line 11 has 10 fields where the header has 8" in str(failure.value)
    assert extracts.file_digests(parquet).md5 == first["hash"]
    assert not list(parquet.parent.glob(".*tmp"))
    with state_store().read() as con:
        state = tables.get_sync_state(con, "penguins")
        history = tables.list_history(con, "penguins")
    assert state.status == "failed" and "line" in state.error.lower()
    assert state.hash == first["hash"] and state.rows == 344
    assert [h.status for h in history] == ["failed", "ok"]
    assert query(app, "SELECT count(*) FROM penguins") == [(344,)]


def test_view_name_collision_between_sources_is_refused(app, folder):
    register(penguins_fields(folder))
    sync_table("penguins")
    # Another connector's extract (not in the registry) declares the same view name.
    other = data_dir(app) / "extracts" / "legacy"
    (other / "data").mkdir(parents=True)
    con = duckdb.connect(str(other / "data" / "penguins.parquet.src"))
    con.close()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 1 AS x) TO '{other / 'data' / 'penguins.parquet'}' (FORMAT parquet)")
    con.close()
    extracts._write_extract(other, [extracts.MetaRow("penguins", "impostor", 1, 10, tables.utcnow(), "local")])
    report = orchestrator.rebuild(data_dir(app))
    assert [(c.view_name, c.source, c.owner) for c in report.collisions] == [("penguins", "legacy", "csv")]
    assert "already provided by source 'csv'" in report.collisions[0].message
    assert query(app, "SELECT count(*) FROM penguins") == [(344,)]
    # Registering a table whose view name another source owns is refused up front.
    extracts._write_extract(other, [extracts.MetaRow("legacy_only", "", 1, 10, tables.utcnow(), "local")])
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 1 AS x) TO '{other / 'data' / 'legacy_only.parquet'}' (FORMAT parquet)")
    con.close()
    orchestrator.rebuild(data_dir(app))
    with pytest.raises(Conflict) as refused:
        register({"name": "legacy only", "source_type": "csv", "source_spec": {"location": str(folder / "stocks.csv")}})
    assert refused.value.code == "view_name_taken"


def test_registration_validation(app, folder):
    with pytest.raises(Invalid) as bad:
        register({"name": "x", "source_type": "keboola"})
    assert bad.value.code == "connector_unavailable"
    with pytest.raises(Invalid) as bad:
        register({"name": "x", "source_type": "csv", "source_spec": {}})
    assert bad.value.field == "spec.location"
    with pytest.raises(Invalid) as bad:
        register({"name": "x", "source_type": "csv", "source_spec": {"location": "ftp://h/x.csv"}})
    assert bad.value.field == "spec.location"
    with pytest.raises(Invalid) as bad:
        register({**penguins_fields(folder), "schedule": "sometimes"})
    assert bad.value.field == "schedule"
    with pytest.raises(Invalid) as bad:
        register({**penguins_fields(folder), "id": "../etc"})
    assert bad.value.field == "id"
    register(penguins_fields(folder, schedule="Every 15 minutes"))
    with pytest.raises(Conflict):
        register(penguins_fields(folder))
    with state_store().read() as con:
        assert tables.get_table(con, "penguins").schedule == "every 15m"


def test_sql_connector_materializes_a_query_over_registered_tables(app, folder):
    register(penguins_fields(folder))
    sync_table("penguins")
    register(
        {
            "name": "island counts",
            "source_type": "sql",
            "source_spec": {"query": "SELECT island, count(*) AS n FROM penguins GROUP BY island;"},
        }
    )
    result = sync_table("island_counts")
    assert result["query_mode"] == "materialized" and result["rows"] == 3
    assert query(app, "SELECT n FROM island_counts WHERE island = 'Biscoe'") == [(168,)]
    register(
        {
            "name": "big birds",
            "source_type": "sql",
            "query_mode": "remote",
            "source_spec": {"query": "SELECT * FROM penguins WHERE body_mass_g > 5000"},
        }
    )
    remote = sync_table("big_birds")
    assert remote["hash"] == "" and remote["rows"] == 61
    assert not extracts.parquet_path(data_dir(app), "sql", "big_birds").exists()
    assert query(app, "SELECT count(*) FROM big_birds") == [(61,)]
    with pytest.raises(Invalid):
        register({"name": "two", "source_type": "sql", "source_spec": {"query": "SELECT 1; DROP TABLE x"}})
    # An attached DuckDB file, joined with a registered table.
    other = folder / "crm.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE islands AS SELECT * FROM (VALUES ('Biscoe', 'south'), ('Dream', 'mid')) t(name, zone)")
    con.close()
    register(
        {
            "name": "zones",
            "source_type": "sql",
            "source_spec": {
                "query": (
                    "SELECT c.zone, count(*) AS birds FROM penguins p"
                    " JOIN crm.islands c ON c.name = p.island GROUP BY 1"
                ),
                "attach": {"crm": str(other)},
            },
        }
    )
    assert sync_table("zones")["rows"] == 2
    assert query(app, "SELECT birds FROM zones WHERE zone = 'mid'") == [(124,)]


def test_json_and_parquet_files_and_urls(app, folder, tmp_path):
    (folder / "people.json").write_text('[{"name": "Ann", "born": "1990-01-02"}, {"name": "Bo", "born": null}]')
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS n FROM range(10)) TO '{folder / 'numbers.parquet'}' (FORMAT parquet)")
    con.close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        register({"name": "people", "source_type": "json", "source_spec": {"location": str(folder / "people.json")}})
        register(
            {
                "name": "numbers",
                "source_type": "parquet",
                "source_spec": {"location": f"{url}/numbers.parquet", "rename": {"n": "number"}},
            }
        )
        register(
            {
                "name": "stocks",
                "source_type": "csv",
                "source_spec": {"location": f"{url}/stocks.csv", "date_format": "%b %d %Y"},
            }
        )
        register({"name": "missing", "source_type": "csv", "source_spec": {"location": f"{url}/nope.csv"}})
        assert sync_table("people")["rows"] == 2
        assert sync_table("numbers")["rows"] == 10
        assert sync_table("stocks")["rows"] == 560
        with pytest.raises(SyncFailed) as failure:
            sync_table("missing")
        assert "HTTP 404" in str(failure.value)
    finally:
        server.shutdown()
        server.server_close()
    assert query(app, "SELECT sum(number) FROM numbers") == [(45,)]
    assert query(app, "SELECT typeof(born) FROM people LIMIT 1") == [("DATE",)]


def test_postgres_table_and_query_with_dsn_from_the_env_overlay(app, pg_dsn):
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.orders")
        conn.execute(
            "CREATE TABLE public.orders (id serial PRIMARY KEY, customer text, amount numeric(10,2),"
            " placed timestamptz, day date, tags jsonb, ok boolean, ref uuid)"
        )
        conn.execute(
            "INSERT INTO public.orders (customer, amount, placed, day, tags, ok, ref) VALUES"
            " ('Ann', 12.50, '2024-01-02 10:00+00', '2024-01-02', '{\"vip\": true}', true,"
            "  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),"
            " ('Bo', NULL, NULL, NULL, NULL, NULL, NULL)"
        )
    write_overlay(data_dir(app), {"SHOP_PG_DSN": pg_dsn})
    register(
        {
            "name": "orders",
            "source_type": "postgres",
            "source_spec": {"dsn_env": "SHOP_PG_DSN", "table": "public.orders"},
        }
    )
    register(
        {
            "name": "order totals",
            "source_type": "postgres",
            "source_spec": {
                "dsn_env": "SHOP_PG_DSN",
                "query": "SELECT customer, sum(amount) AS total FROM orders GROUP BY customer",
            },
        }
    )
    assert sync_table("orders")["rows"] == 2
    assert sync_table("order_totals")["rows"] == 2
    rows = query(app, "SELECT customer, amount, typeof(amount), day, tags, ok FROM orders ORDER BY id")
    assert rows[0][:3] == ("Ann", pytest.approx(12.5), "DECIMAL(10,2)")
    assert rows[0][4] == '{"vip": true}' and rows[1][1] is None
    with state_store().read() as con:
        stored = con.execute("SELECT source_spec FROM table_registry WHERE id = 'orders'").fetchone()[0]
        assert pg_dsn not in stored and "SHOP_PG_DSN" in stored
    write_overlay(data_dir(app), {})
    with pytest.raises(SyncFailed) as failure:
        sync_table("orders")
    assert "SHOP_PG_DSN is not set" in str(failure.value)
    write_overlay(data_dir(app), {"SHOP_PG_DSN": pg_dsn.rsplit("/", 1)[0] + "/no_such_db_agnes"})
    with pytest.raises(SyncFailed) as failure:
        sync_table("orders")
    assert "no_such_db_agnes" in str(failure.value) or "[dsn]" in str(failure.value)
    with pytest.raises(Invalid):
        register(
            {
                "name": "bad",
                "source_type": "postgres",
                "source_spec": {"dsn_env": "AGNES_SECRET_KEY", "table": "orders"},
            }
        )


def test_unregister_removes_files_view_and_grants(app, folder):
    from agnes import people
    from agnes.data.registration import unregister_table

    register(penguins_fields(folder))
    register(
        {
            "name": "stocks",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "stocks.csv"), "date_format": "%b %d %Y"},
        }
    )
    sync_table("penguins")
    sync_table("stocks")
    people.create_grant("everyone", "table", "penguins", actor_id=None)
    unregister_table("penguins")
    assert not extracts.parquet_path(data_dir(app), "csv", "penguins").exists()
    assert query(app, "SELECT view_name FROM _tables") == [("stocks",)]
    assert people.list_grants(resource_type="table") == []
    with state_store().read() as con:
        assert "penguins" not in tables.view_owners(con)
    unregister_table("stocks")
    assert not (data_dir(app) / "extracts" / "csv").exists()


def test_register_table_rejects_reusing_an_id(app, folder):
    register_table(penguins_fields(folder), owner_id=None)
    with pytest.raises(Conflict) as exists:
        register_table(penguins_fields(folder), owner_id=None)
    assert exists.value.code == "table_exists"


def test_tables_are_listed_as_grantable_items(app, folder):
    from agnes.access import RESOURCE_TYPES, ResourceType

    register(penguins_fields(folder))
    with state_store().read() as con:
        items = RESOURCE_TYPES[ResourceType.TABLE].list_items(con)
    assert [(i.id, i.label, i.group) for i in items] == [("penguins", "penguins", "csv")]


def test_a_corrupt_extract_is_skipped_and_keeps_its_view_names(app, folder):
    register(penguins_fields(folder))
    register(
        {
            "name": "weather",
            "source_type": "csv",
            "source_name": "vega",
            "source_spec": {"location": str(folder / "seattle-weather.csv"), "date_format": "%Y/%m/%d"},
        }
    )
    sync_table("penguins")
    sync_table("weather")
    (data_dir(app) / "extracts" / "csv" / "extract.duckdb").write_bytes(b"not a duckdb file" * 100)
    report = orchestrator.rebuild(data_dir(app))
    assert "csv" in report.errors and report.views == {"weather": "vega"}
    with state_store().read() as con:
        assert tables.view_owners(con)["penguins"] == "csv"  # not handed to anyone while unreadable
    sync_table("penguins")  # the next sync rewrites the extract
    assert query(app, "SELECT count(*) FROM penguins") == [(344,)]
    assert query(app, "SELECT count(*) FROM weather") == [(1461,)]


# -- secrets: a malformed PostgreSQL DSN is reported without libpq's quote of it (maybe the password) ---


def test_a_malformed_postgres_dsn_never_shows_its_password_in_the_sync_error(app):
    register_table(
        {
            "name": "orders",
            "source_type": "postgres",
            "source_spec": {"dsn_env": "SHOP_PG_DSN", "table": "public.orders"},
        },
        owner_id=None,
    )
    for dsn in (
        "postgresql://shop:hunter%zz2secret@127.0.0.1:1/shop",  # bad percent-encoding
        "host=127.0.0.1 port=1 password=hunter2 secret dbname=shop",
    ):  # unquoted space
        write_overlay(data_dir(app), {"SHOP_PG_DSN": dsn})
        with pytest.raises(SyncFailed) as failure:
            sync_table("orders")
        with state_store().read() as con:
            recorded = tables.get_sync_state(con, "orders").error
        for shown in (str(failure.value), recorded):
            assert "SHOP_PG_DSN" in shown
            assert "secret" not in shown and "hunter" not in shown, shown
