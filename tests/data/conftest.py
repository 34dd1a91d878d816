"""Data-area fixtures: writable copies of the fixture tables (``folder``), a scratch PostgreSQL
database (``pg_dsn``), and helpers that take arguments (``register``, ``penguins_fields``,
``write_overlay``, the ``matrix_*`` objects of the authorization matrix), imported by tests as
``from tests.data.conftest import register``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES_DIR, missing

TABLES = FIXTURES_DIR / "tables"
PG_BASE = os.environ.get("AGNES_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """``<tmp_path>/files`` holding writable copies of the fixture CSVs."""
    target = tmp_path / "files"
    target.mkdir(parents=True, exist_ok=True)
    for csv in TABLES.rglob("*.csv"):
        shutil.copy(csv, target / csv.name)
        os.chmod(target / csv.name, 0o644)
    return target


def register(fields: dict[str, Any], owner_id: str | None = None):  # type: ignore[no-untyped-def]
    from agnes.data.registration import register_table

    return register_table(fields, owner_id=owner_id)


def penguins_fields(folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "penguins",
        "description": "Palmer penguins",
        "source_type": "csv",
        "source_spec": {"location": str(folder / "penguins.csv"), "null_strings": ["NA"]},
        **extra,
    }


@pytest.fixture
def pg_dsn() -> str:
    """DSN of a scratch PostgreSQL database owned by this test run (created if missing)."""
    import psycopg

    name = f"agnes_test_{os.environ.get('AGNES_TEST_REDIS_DB', '13')}"
    try:
        conn = psycopg.connect(f"{PG_BASE}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        detail = " ".join(str(exc).split())[:120]
        # scripts/install-test-tools.sh installs and starts it, so under CI a missing server fails.
        missing(f"PostgreSQL is not reachable at {PG_BASE} ({detail}): the postgres tests skip")
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_BASE}/{name}"


def write_overlay(data_dir: Path, values: dict[str, str]) -> None:
    path = data_dir / "state" / ".env_overlay"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    os.chmod(path, 0o600)


# -- objects for the authorization matrix (tests/access/test_authz_matrix.py) --------------------

_made = {"n": 0}


def _next(prefix: str) -> str:
    _made["n"] += 1
    return f"{prefix}_{_made['n']}"


def matrix_table(world: Any, *, synced: bool = False, granted: bool = False) -> str:
    """A registered table (tiny CSV) for the matrix; ``synced`` publishes it, ``granted`` grants
    it to the world's group (which has the analyst)."""
    from flask import current_app

    from agnes import people
    from agnes.data.sync import sync_table

    folder = Path(current_app.config["AGNES_DATA_SOURCE_DIRS"][0]) / "matrix-files"
    folder.mkdir(parents=True, exist_ok=True)
    table_id = _next("matrix")
    (folder / f"{table_id}.csv").write_text("a,b\n1,x\n2,y\n")
    register(
        {
            "id": table_id,
            "name": table_id,
            "source_type": "csv",
            "source_spec": {"location": str(folder / f"{table_id}.csv")},
        }
    )
    if synced:
        sync_table(table_id)
    if granted:
        people.create_grant(world.group_id, "table", table_id, actor_id=world.admin_id)
    return table_id


def matrix_register_body(world: Any) -> dict[str, Any]:
    from flask import current_app

    folder = Path(current_app.config["AGNES_DATA_SOURCE_DIRS"][0]) / "matrix-files"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "body.csv").write_text("a\n1\n")
    name = _next("registered")
    return {"name": name, "source_type": "csv", "source_spec": {"location": str(folder / "body.csv")}}


def matrix_metric() -> str:
    from agnes.models import tables
    from agnes.state import state_store

    name = _next("metric")
    with state_store().write() as con:
        tables.upsert_metric(con, {"id": f"matrix/{name}", "name": name, "category": "matrix"})
    return f"matrix/{name}"


def matrix_register_form(world: Any) -> dict[str, str]:
    body = matrix_register_body(world)
    return {
        "name": body["name"],
        "source_type": "csv",
        "opt_location": body["source_spec"]["location"],
        "opt_header": "on",
    }


def matrix_update_form() -> dict[str, str]:
    return {"name": "changed", "source_type": "csv", "opt_location": "/tmp/changed.csv", "query_mode": "local"}


@pytest.fixture
def pg_remote(pg_dsn: str):  # type: ignore[no-untyped-def]
    """A scratch schema (unique name, dropped after the test) in the ``pg_dsn`` database holding
    ``orders`` (1,000 rows, analyzed) and ``customers`` (10 rows); yields ``(dsn, schema)``."""
    import uuid

    import psycopg

    schema = f"remote_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".orders (id integer PRIMARY KEY, customer_id integer NOT NULL,'
            " placed timestamptz, amount numeric(10,2), status text, note text)"
        )
        conn.execute(
            f'INSERT INTO "{schema}".orders SELECT g, g % 10,'
            " timestamptz '2025-01-01 00:00+00' + g * interval '1 hour', (g % 97) + 0.25,"
            " CASE WHEN g % 4 = 0 THEN 'cancelled' ELSE 'paid' END, NULL"
            " FROM generate_series(1, 1000) g"
        )
        conn.execute(f'CREATE TABLE "{schema}".customers (id integer PRIMARY KEY, name text)')
        conn.execute(f"INSERT INTO \"{schema}\".customers SELECT g, 'customer ' || g FROM generate_series(0, 9) g")
        conn.execute(f'ANALYZE "{schema}".orders')
        conn.execute(f'ANALYZE "{schema}".customers')
    try:
        yield pg_dsn, schema
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def register_remote(schema: str, table: str = "orders", env_name: str = "REMOTE_PG_DSN", **extra: Any):  # type: ignore[no-untyped-def]
    """Register ``<schema>.<table>`` of the ``pg_remote`` database as a remote table named ``table``."""
    return register(
        {
            "name": table,
            "source_type": "postgres",
            "source_name": "warehouse",
            "query_mode": "remote",
            "source_spec": {"dsn_env": env_name, "table": f"{schema}.{table}"},
            **extra,
        }
    )


@pytest.fixture
def pg_statement_log(pg_dsn: str):  # type: ignore[no-untyped-def]
    """``log_statement = all`` for new sessions of the test database; yields a function returning the
    server log written since the fixture started (the cluster's log file, from ``pg_lsclusters``)."""
    import subprocess

    import psycopg

    try:
        listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True).stdout
        log_path = Path(next(line.split()[-1] for line in listed.splitlines() if " 5432 " in f" {line} "))
        start = log_path.stat().st_size
    except (OSError, subprocess.CalledProcessError, StopIteration) as exc:
        missing(f"the PostgreSQL server log is not readable here ({exc})")
    name = pg_dsn.rsplit("/", 1)[1]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")

    def written() -> str:
        with log_path.open("rb") as fh:
            fh.seek(start)
            return fh.read().decode("utf-8", errors="replace")

    try:
        yield written
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" RESET log_statement')
