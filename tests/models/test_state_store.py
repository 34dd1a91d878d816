"""The state store: migrations, transactions, nesting and several processes writing at once."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import duckdb
import pytest

from agnes.models.db import StateStore, available_migrations


def test_migrations_are_numbered_and_recorded(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "system.duckdb")
    applied = store.migrate()
    versions = [v for v, _, _ in available_migrations()]
    assert applied == versions
    assert store.migrate() == []  # idempotent
    assert store.schema_version() == versions[-1]
    with store.read() as con:
        names = {r[0] for r in con.execute("SELECT name FROM schema_migrations").fetchall()}
    assert "people_and_access" in names


def test_write_rolls_back_on_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "system.duckdb")
    store.migrate()
    with pytest.raises(RuntimeError):
        with store.write() as con:
            con.execute("INSERT INTO users (id, email) VALUES ('u1', 'a@example.com')")
            raise RuntimeError("boom")
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_lock_released_between_units(tmp_path: Path) -> None:
    """Between units the file is detached, so another process (here: a plain connect) can open it."""
    store = StateStore(tmp_path / "system.duckdb")
    store.migrate()
    other = duckdb.connect(str(tmp_path / "system.duckdb"))
    assert other.execute("SELECT count(*) FROM user_groups").fetchone() == (2,)
    other.close()


def test_nested_units_and_threads_share_one_attachment(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "system.duckdb")
    store.migrate()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                with store.write() as con:
                    con.execute("INSERT INTO users (id, email) VALUES (?, ?)", [f"t{n}-{i}", f"t{n}-{i}@x.io"])
                    with store.read() as inner:  # nested unit in the same thread must not deadlock
                        inner.execute("SELECT 1").fetchone()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with store.read() as con:
        assert con.execute("SELECT count(*) FROM users").fetchone() == (80,)


def _writer_process(path: str, worker: int, count: int, queue) -> None:  # type: ignore[no-untyped-def]
    from agnes.models.db import StateStore

    store = StateStore(path)
    failures = []
    for _ in range(count):
        try:
            with store.write() as con:
                row = con.execute("SELECT coalesce(max(n), 0) FROM counter").fetchone()
                con.execute("INSERT INTO counter VALUES (?, ?)", [row[0] + 1, worker])
        except Exception as exc:  # reported to the parent, which fails the test
            failures.append(repr(exc))
    queue.put((worker, failures))


def test_processes_write_concurrently_without_lost_writes(tmp_path: Path) -> None:
    """Spawned processes increment a counter read-modify-write; no write may be lost."""
    path = str(tmp_path / "system.duckdb")
    store = StateStore(path)
    with store.write() as con:
        con.execute("CREATE TABLE counter (n INTEGER PRIMARY KEY, worker INTEGER)")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers, per_worker = 4, 40
    procs = [ctx.Process(target=_writer_process, args=(path, w, per_worker, queue)) for w in range(workers)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(not failures for _, failures in results), results
    with store.read() as con:
        n, distinct, top = con.execute("SELECT count(*), count(DISTINCT n), max(n) FROM counter").fetchone()
    assert n == distinct == top == workers * per_worker
