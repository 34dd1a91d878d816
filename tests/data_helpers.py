"""Helpers for the data-distribution tests: fixture tables, registration, a PostgreSQL test DB."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import SHARED

TABLES = SHARED / "fixtures" / "tables"
PG_BASE = os.environ.get("AGNES_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def copy_tables(target: Path) -> Path:
    """Writable copies of the fixture CSVs under ``target`` (returns ``target``)."""
    target.mkdir(parents=True, exist_ok=True)
    for csv in TABLES.rglob("*.csv"):
        shutil.copy(csv, target / csv.name)
        os.chmod(target / csv.name, 0o644)
    return target


def register(fields: dict[str, Any], owner_id: str | None = None):  # type: ignore[no-untyped-def]
    from agnes.data.registry import register_table

    return register_table(fields, owner_id=owner_id)


def penguins_fields(folder: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "penguins",
        "description": "Palmer penguins",
        "source_type": "csv",
        "source_spec": {"location": str(folder / "penguins.csv"), "null_strings": ["NA"]},
        **extra,
    }


def pg_database() -> str:
    """DSN of a scratch PostgreSQL database owned by this test run (created if missing)."""
    import psycopg

    name = f"agnes_test_{os.environ.get('AGNES_TEST_REDIS_DB', '13')}"
    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_BASE}/{name}"


def write_overlay(data_dir: Path, values: dict[str, str]) -> None:
    path = data_dir / "state" / ".env_overlay"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    os.chmod(path, 0o600)
