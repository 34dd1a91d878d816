"""Benchmark of the activity timeline and health pulse (issue 14), and of the failure scan.

Seeds ``--rows`` audit rows (1,000,000 by default) over 90 days from 200 users and 40 actions
(requests, jobs, syncs) into a fresh data dir, then measures in-process (Flask's test client, a
signed-in admin; server time without the network) p50/p95 of:

* ``/admin/activity``: the first page (50 rows of the last 7 days) with the health pulse (cached:
  the pulse is computed once per 30 s for all requests, so the page's cost is the timeline's);
* a filtered page: one user's ``job.`` rows over 90 days;
* the Changes tab's first page (the ``group.*`` rows, a tenth, carry ``params_before``; a tenth as
  many table syncs, some changing a row count);
* ``/api/admin/activity/health`` served from the cache, and the pulse computed uncached;

and the failure scan's throughput (lines per CPU second) over the telemetry bench's generated
transcripts (``bench/usage.py``) and those in ``tests/fixtures/sessions/``, scanned
``--scan-rounds`` times.

Issue 14 targets on 2 cores: page p95 <= 200 ms (first page with health, and filtered); cached
health API <= 20 ms; failure scan >= 50,000 lines/s. The machine may be shared: the load average
is printed.

Usage: ``python bench/activity.py [--rows 1000000] [--requests 50] [--scan-rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import bench_app  # noqa: E402  (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's agnes
SESSIONS = ROOT / "tests" / "fixtures" / "sessions"
PAGE_TARGET_MS = 200.0
HEALTH_TARGET_MS = 20.0
SCAN_TARGET = 50_000

ACTIONS = (
    [f"group.{a}" for a in ("create", "update", "member_add", "member_remove")]
    + [f"job.run_{a}" for a in ("sync_table", "due_table_syncs", "sync_marketplace", "prune_magic_links")]
    + [f"http.api.{n}" for n in range(32)]
)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))]


def seed(app, rows: int) -> str:  # type: ignore[no-untyped-def]
    """``rows`` audit rows over the last 90 days (generated inside DuckDB); returns a user id."""
    from agnes.state import state_store

    with app.app_context(), state_store().write() as con:
        con.execute(
            "INSERT INTO users (id, email, name) SELECT 'u' || i, 'user' || i || '@example.com', 'User ' || i"
            " FROM range(200) t(i)"
        )
        actions = "[" + ", ".join(f"'{a}'" for a in ACTIONS) + "]"
        con.execute(
            f"""
            INSERT INTO audit_log (id, timestamp, user_id, action, resource, params, result, duration_ms,
                                   client_ip, client_kind, correlation_id, params_before)
            SELECT printf('%016x', i),
                   now()::TIMESTAMP - to_microseconds(CAST(i * (90 * 86400 * 1e6 / {rows}) AS BIGINT)),
                   'u' || (i % 200),
                   {actions}[1 + (i % {len(ACTIONS)})],
                   'table:t' || (i % 500),
                   '{{"args": ["t' || (i % 500) || '"], "n": ' || i || '}}',
                   CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'ok' END,
                   (i % 1000) / 10.0,
                   '10.0.0.' || (i % 250),
                   CASE WHEN i % 3 = 0 THEN 'job' ELSE 'web' END,
                   'corr' || (i // 3),
                   CASE WHEN i % {len(ACTIONS)} < 4 THEN '{{"name": "before ' || i || '"}}' END
            FROM range({rows}) t(i)
            """
        )
        # Table syncs for the Changes tab: 100 tables, one sync per table every ~15 minutes over
        # 90 days (a tenth of the audit rows' count), the row count changing every tenth sync.
        syncs = rows // 10
        con.execute(
            f"""
            INSERT INTO sync_history (id, table_id, started_at, finished_at, status, rows, previous_rows)
            SELECT printf('s%015x', i), 't' || (i % 100),
                   now()::TIMESTAMP - to_microseconds(CAST(i * (90 * 86400 * 1e6 / {syncs}) AS BIGINT)),
                   now()::TIMESTAMP - to_microseconds(CAST(i * (90 * 86400 * 1e6 / {syncs}) AS BIGINT)),
                   'ok', 1000 + i // 1000, 1000 + (i + 100) // 1000
            FROM range({syncs}) t(i)
            """
        )
    return "u7"


def timed(client, url: str, requests: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """p50 and p95 of the wall time, and the CPU time per request (every thread of the process,
    DuckDB's included: a figure the machine's other load does not inflate), in ms."""
    times = []
    cpu = time.process_time()
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
    return statistics.median(times), percentile(times, 95), (time.process_time() - cpu) * 1000 / requests


def scan_rate(rounds: int) -> tuple[int, float]:
    """Lines per CPU second of the failure scan over the telemetry bench's generated sessions
    (``bench/usage.py``: 372 sessions, about 200,000 lines) and the fixture transcripts."""
    import random
    import uuid

    from usage import session_lines  # the telemetry bench's transcript generator (bench/ is on sys.path)

    from agnes.telemetry.findings import scan

    rng = random.Random(13)
    start = datetime(2026, 5, 1)
    files = [
        b"\n".join(session_lines(rng, str(uuid.UUID(int=rng.getrandbits(128))), 540, start)[0]) + b"\n"
        for _ in range(372)
    ]
    files += [p.read_bytes() for p in SESSIONS.rglob("*.jsonl")]
    lines = 0
    started = time.process_time()
    for _ in range(rounds):
        for data in files:
            lines += scan(data, mtime=datetime(2020, 1, 1), now=datetime(2026, 1, 1)).lines
    return lines, lines / max(1e-9, time.process_time() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--scan-rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="agnes-bench-activity-") as tmp:
        app = bench_app(Path(tmp) / "data")
        started = time.perf_counter()
        user = seed(app, args.rows)
        print(f"seeded {args.rows:,} audit rows in {time.perf_counter() - started:.1f} s")
        from agnes.jobs.health import compute_health
        from agnes.models import users
        from agnes.state import state_store
        from tests.conftest import IsolatedClient, session_cookie

        app.test_client_class = IsolatedClient
        with app.app_context():
            with state_store().read() as con:
                admin = users.get_user_by_email(con, "admin@example.com")
            client = app.test_client()
            with client.session_transaction() as sess:
                sess.update(session_cookie(admin.id))
            failures = []
            for label, url, target in (
                ("/admin/activity (first page, health)", "/admin/activity", PAGE_TARGET_MS),
                (
                    "/admin/activity (one user's jobs, 90 d)",
                    f"/admin/activity?user={user}&action=job.&since=90d",
                    PAGE_TARGET_MS,
                ),
                ("/admin/activity/changes (first page, health)", "/admin/activity/changes", PAGE_TARGET_MS),
                ("/api/admin/activity/health (cached)", "/api/admin/activity/health", HEALTH_TARGET_MS),
            ):
                client.get(url)  # warm: templates, the health cache
                p50, p95, cpu = timed(client, url, args.requests)
                ok = p95 <= target
                failures += [] if ok else [label]
                print(
                    f"{label:<45} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  CPU {cpu:6.1f} ms/request"
                    f"  (target p95 <= {target:.0f} ms) {'ok' if ok else 'MISSED'}"
                )
            started = time.perf_counter()
            compute_health()
            print(f"{'health pulse computed (uncached)':<45} {(time.perf_counter() - started) * 1000:7.1f} ms")
    lines, rate = scan_rate(args.scan_rounds)
    ok = rate >= SCAN_TARGET
    failures += [] if ok else ["failure scan"]
    print(
        f"{'failure scan':<45} {rate:,.0f} lines/s over {lines:,} lines"
        f" (target >= {SCAN_TARGET:,}) {'ok' if ok else 'MISSED'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
