"""State-store overhead per unit of work, and write throughput of several processes.

    python bench/state_store.py [--units 2000] [--procs 4] [--seconds 5] [--users 1000]

Runs on a fresh temporary data dir, migrated with Agnes's real migrations:

* **read unit**: ``with store.read()`` (flock + ATTACH) + ``users.get_user`` point read + exit
  (DETACH + unlock), ``--units`` times, one thread;
* **write unit**: ``with store.write()`` + ``users.record_login`` (an UPDATE, as at sign-in) +
  COMMIT + DETACH, ``--units`` times;
* **concurrent writes**: ``--procs`` spawned processes (not forked) each doing read-modify-write
  units (read the counter's max, insert max+1) for ``--seconds``; reports total writes/s, errors,
  and checks no write was lost (count = distinct = max).

Targets (DESIGN.md, 2-core machine): read ≤ 3 ms, write ≤ 8 ms (medians), ≥ 100 writes/s across
4 processes with 0 errors.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's agnes

from agnes.models.db import StateStore  # noqa: E402

READ_TARGET_MS = 3.0
WRITE_TARGET_MS = 8.0
THROUGHPUT_TARGET = 100.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def seed(store: StateStore, users: int) -> list[str]:
    """Migrate and add ``users`` users; returns their ids."""
    from agnes.models import new_id

    store.migrate()
    ids = [new_id() for _ in range(users)]
    with store.write() as con:
        con.executemany(
            "INSERT INTO users (id, email, name) VALUES (?, ?, ?)",
            [[uid, f"user{i}@example.com", f"User {i}"] for i, uid in enumerate(ids)],
        )
        con.execute("CREATE TABLE bench_counter (n INTEGER PRIMARY KEY, worker INTEGER)")
    return ids


def time_units(store: StateStore, ids: list[str], units: int, *, write: bool) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per unit of work (attach + statement + detach).

    CPU time shows the store's own cost when the machine is busy; wall time adds waiting
    (fsync of the commit and checkpoint, and other processes).
    """
    from agnes.models import users

    samples, cpu = [], []
    for i in range(units):
        uid = ids[i % len(ids)]
        started = time.perf_counter()
        cpu_started = time.process_time()
        if write:
            with store.write() as con:
                users.record_login(con, uid)
        else:
            with store.read() as con:
                user = users.get_user(con, uid)
            assert user is not None
        cpu.append((time.process_time() - cpu_started) * 1000)
        samples.append((time.perf_counter() - started) * 1000)
    return samples, cpu


def _writer(path: str, worker: int, start_at: float, seconds: float, queue) -> None:  # type: ignore[no-untyped-def]
    from agnes.models.db import StateStore

    store = StateStore(path)
    with store.read() as con:  # open the in-memory instance before the clock starts
        con.execute("SELECT 1").fetchone()
    done, errors, first_error = 0, 0, ""
    time.sleep(max(0.0, start_at - time.time()))
    deadline = start_at + seconds
    while time.time() < deadline:
        try:
            with store.write() as con:
                top = con.execute("SELECT coalesce(max(n), 0) FROM bench_counter").fetchone()[0]
                con.execute("INSERT INTO bench_counter VALUES (?, ?)", [top + 1, worker])
            done += 1
        except Exception as exc:  # counted and reported: the target is zero
            errors += 1
            first_error = first_error or repr(exc)
    queue.put((worker, done, errors, first_error, time.time() - start_at))


def concurrent_writes(store: StateStore, procs: int, seconds: float) -> tuple[float, int, int, str, bool]:
    """``(writes/s, writes, errors, first error, nothing lost)`` for ``procs`` spawned writers."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 3.0  # leave time for the interpreters to start and import
    workers = [ctx.Process(target=_writer, args=(str(store.path), w, start_at, seconds, queue)) for w in range(procs)]
    for proc in workers:
        proc.start()
    results = [queue.get(timeout=seconds + 120) for _ in workers]
    for proc in workers:
        proc.join(30)
    writes = sum(r[1] for r in results)
    errors = sum(r[2] for r in results) + sum(1 for p in workers if p.exitcode != 0)
    first_error = next((r[3] for r in results if r[3]), "")
    elapsed = max(r[4] for r in results)
    with store.read() as con:
        count, distinct, top = con.execute(
            "SELECT count(*), count(DISTINCT n), coalesce(max(n), 0) FROM bench_counter"
        ).fetchone()
    intact = count == distinct == top == writes
    return writes / elapsed, writes, errors, first_error, intact


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=2000, help="units of work timed per kind (default 2000)")
    parser.add_argument("--procs", type=int, default=4, help="concurrent writer processes (default 4)")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the concurrent run (default 5)")
    parser.add_argument("--users", type=int, default=1000, help="rows in the users table (default 1000)")
    parser.add_argument("--dir", default=None, help="parent of the temporary data dir (default: system temp)")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="agnes-bench-", dir=args.dir) as tmp:
        store = StateStore(Path(tmp) / "state" / "system.duckdb")
        ids = seed(store, args.users)
        time_units(store, ids, 50, write=False)  # warm up (instance, caches)
        time_units(store, ids, 50, write=True)
        reads, reads_cpu = time_units(store, ids, args.units, write=False)
        writes, writes_cpu = time_units(store, ids, args.units, write=True)
        rate, total, errors, first_error, intact = concurrent_writes(store, args.procs, args.seconds)
        fs_dir = str(Path(tmp))
    load_after = os.getloadavg()[0]

    import duckdb

    print(
        f"state store benchmark: DuckDB {duckdb.__version__}, {os.cpu_count()} CPUs, {args.users} users,"
        f" fresh temp dir under {Path(fs_dir).parent}"
    )
    print(f"  load average (1 min) before/after: {load_before:.2f} / {load_after:.2f}")
    print(f"  {'unit of work':<48} {'median':>9} {'p95':>9} {'cpu med':>9}   target")
    for label, wall, cpu, target in (
        (f"read  (attach + point read + detach) x{args.units}", reads, reads_cpu, READ_TARGET_MS),
        (f"write (attach + update + commit + detach) x{args.units}", writes, writes_cpu, WRITE_TARGET_MS),
    ):
        median = statistics.median(wall)
        print(
            f"  {label:<48} {median:>6.2f} ms {percentile(wall, 95):>6.2f} ms {statistics.median(cpu):>6.2f} ms"
            f"   <= {target:g} ms  {verdict(median <= target)}"
        )
    ok_rate = rate >= THROUGHPUT_TARGET and errors == 0 and intact
    print(
        f"  concurrent read-modify-write, {args.procs} spawned processes, {args.seconds:g} s:"
        f" {rate:.0f} writes/s ({total} writes), errors = {errors}, lost writes = {'none' if intact else 'YES'}"
        f"   >= {THROUGHPUT_TARGET:g}/s, 0 errors  {verdict(ok_rate)}"
    )
    if first_error:
        print(f"  first error: {first_error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
