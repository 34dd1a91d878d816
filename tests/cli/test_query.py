"""``agnes query`` is honest (issue 15 item 7): it says when it truncated, writes every row with
``--output`` (CSV, Parquet, JSON), and is read-only as documented: COPY, ATTACH, INSTALL/LOAD, SET and
writes are refused with a one-line reason and exit 1, and files outside the workspace cannot be read.

Before the fix ``agnes query "COPY penguins TO '/tmp/x.csv'"`` wrote the file, and 1,000 of 336,776
rows were printed with nothing saying the rest was cut.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import FIXTURES_DIR, ROOT

PENGUINS = FIXTURES_DIR / "tables" / "palmerpenguins" / "penguins.csv"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pulled workspace as ``agnes pull`` leaves it: a parquet and a DuckDB view over it."""
    root = tmp_path_factory.mktemp("ws")
    tables = root / "data" / "tables"
    tables.mkdir(parents=True)
    con = duckdb.connect(str(root / "data" / "analytics.duckdb"))
    con.execute(f"COPY (SELECT * FROM read_csv('{PENGUINS}')) TO '{tables / 'penguins.parquet'}' (FORMAT parquet)")
    con.execute(f"CREATE VIEW penguins AS SELECT * FROM read_parquet('{tables / 'penguins.parquet'}')")
    con.close()
    return root


def query(workspace: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8", "HOME": str(workspace)}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "query", "--workspace", str(workspace), *args],
        env=env,
        cwd=cwd or workspace,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_truncation_is_said_on_stderr(workspace: Path) -> None:
    shown = query(workspace, "-f", "csv", "--limit", "10", "SELECT * FROM penguins")
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout.splitlines()) == 11  # header + 10 rows, nothing else on stdout
    assert shown.stderr.strip() == "showing 10 of 344 rows; use --limit N (0 = all) or --output file.parquet"
    whole = query(workspace, "-f", "csv", "--limit", "0", "SELECT * FROM penguins")
    assert len(whole.stdout.splitlines()) == 345 and whole.stderr == ""


@pytest.mark.parametrize("name", ["out.csv", "out.parquet", "out.json"])
def test_output_round_trips_every_row(workspace: Path, tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    sql = "SELECT species, island, bill_length_mm, year FROM penguins ORDER BY ALL"
    done = query(workspace, "--limit", "5", "--output", str(target), sql)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"wrote 344 rows to {target}"
    con = duckdb.connect()
    expected = con.execute(sql.replace("penguins", f"read_csv('{PENGUINS}')")).fetchall()
    if name.endswith(".parquet"):
        got = [tuple(r.values()) for r in pq.read_table(target).to_pylist()]
    elif name.endswith(".json"):
        got = [tuple(r.values()) for r in json.loads(target.read_text())]
    else:
        with target.open() as f:
            got = [tuple(r) for r in list(csv.reader(f))[1:]]
        expected = [tuple("" if v is None else str(v) for v in row) for row in expected]
    assert got == expected
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("COPY penguins TO '{out}'", "COPY writes files"),
        ("COPY (SELECT 1) TO '{out}' (FORMAT parquet)", "COPY writes files"),
        ("ATTACH '{out}' AS other", "ATTACH opens another database"),
        ("INSTALL httpfs", "INSTALL downloads DuckDB extensions"),
        ("LOAD httpfs", "LOAD loads DuckDB extensions"),
        ("SET threads = 1", "SET changes DuckDB settings"),
        ("CREATE TABLE x AS SELECT 1", "CREATE changes data"),
        ("SELECT 1; COPY penguins TO '{out}'", "one statement at a time"),
    ],
)
def test_refused_statements_exit_1_and_write_nothing(workspace: Path, tmp_path: Path, sql: str, words: str) -> None:
    out = tmp_path / "leak.csv"
    refused = query(workspace, sql.format(out=out), cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and words in refused.stderr, refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_files_outside_the_workspace_cannot_be_read(workspace: Path) -> None:
    outside = query(workspace, f"SELECT * FROM read_csv('{PENGUINS}')")
    assert outside.returncode == 1 and "disabled" in outside.stderr
    assert query(workspace, "SELECT count(*) FROM penguins").returncode == 0  # the workspace's own files are fine
