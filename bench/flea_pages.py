"""Benchmark of the flea market's HTML pages under gunicorn (the pages of issue 11's targets).

Builds a data dir with N approved flea entries (default 2,000) among M versions (default 20,000,
1,000 of them in review), written straight into the state store, starts ``gunicorn -k gthread
wsgi:app`` (``bench/pages.py``'s server and load generator) and measures:

* ``/marketplace?tab=flea`` (full HTML page, 24 cards) as an analyst, 1 and 10 clients, and the
  most-installed sort and a search as the htmx fragment;
* ``/admin/flea`` (full HTML page: status chips with counts, 50 rows in review) as an admin, 1 client,
  and the "all statuses" page 3 fragment.

Targets (issue 11, 2 cores): the flea tab of 2,000 >= 200 requests/s with 10 clients; ``/admin/flea``
with 1,000 pending of 20,000 versions p95 <= 60 ms. The JSON twins and upload-to-served are in
``bench/flea.py``; the archive checks in ``bench/flea_checks.py``.

Usage: ``python bench/flea_pages.py [--entities 2000] [--versions 20000] [--pending 1000] [--requests 1000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's agnes

from _common import bench_app  # noqa: E402  (bench/ is on sys.path)
from pages import WORDS, load, start_server  # noqa: E402

TAB_TARGET_RPS = 200.0
QUEUE_TARGET_MS = 60.0
CATEGORIES = ("Data & Analytics", "Code & Engineering", "Productivity", "Research", "Other")


def build_data(data_dir: Path, entities: int, versions: int, pending: int) -> tuple[str, str]:
    """Create the data dir; returns (analyst cookie, admin cookie)."""
    os.environ["AGNES_DATA_DIR"] = str(data_dir)
    from agnes import people, signals
    from agnes.auth import start_session
    from agnes.models import groups, utcnow
    from agnes.state import state_store

    app = bench_app(data_dir)
    rng = random.Random(11)
    with app.app_context():
        owners = [people.create_user(f"owner{i}@example.com", f"Owner {i}") for i in range(50)]
        analyst = people.create_user("analyst@example.com", "Bench Analyst")
        admin = people.create_user("boss@example.com", "Bench Admin")
        with state_store().write() as con:
            groups.add_member(con, "admin", admin.id)
            signals.membership_changed.send(None, con=con, user_id=admin.id, group_id="admin")
        now = utcnow()
        entity_rows, version_rows, installs = [], [], []
        per_entity = max(1, versions // entities)
        for i in range(entities):
            owner = owners[i % len(owners)]
            eid = f"{i:016x}"
            name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
            description = " ".join(rng.choice(WORDS) for _ in range(14)).capitalize() + "."
            entity_rows.append([eid, owner.id, rng.choice(("skill", "agent", "command", "plugin")), name,
                                rng.choice(CATEGORIES), description, "active", 1, now, now])  # fmt: skip
            for n in range(1, per_entity + 1):
                status = "approved" if n == 1 else rng.choice(("approved", "blocked", "review_error"))
                version_rows.append([f"{i:08x}{n:08x}", eid, n, f"{i:032x}{n:032x}", 4096, 2, status, "", "[]",
                                     owner.id, now])  # fmt: skip
            for user in rng.sample(owners, rng.randint(0, 8)):
                installs.append([eid, user.id, now])
        # The queue: `pending` versions in review, on top of the others.
        for k in range(pending):
            i = k % entities
            n = per_entity + 1 + k // entities
            version_rows.append([f"{i:08x}{n:08x}", f"{i:016x}", n, f"{k:064x}", 8192, 3, "in_review",
                                 "no reviewer", "[]", owners[i % len(owners)].id, now])  # fmt: skip
        with state_store().write() as con:
            con.executemany(
                "INSERT INTO flea_handles (user_id, handle) VALUES (?, ?)",
                [[o.id, f"owner{i}"] for i, o in enumerate(owners)],
            )
            con.executemany(
                "INSERT INTO flea_entities (id, owner_id, kind, name, category, description, state, served_version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                entity_rows,
            )
            con.executemany(
                "INSERT INTO flea_versions (id, entity_id, number, sha256, size_bytes, file_count, status, note,"
                " findings, uploaded_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                version_rows,
            )
            con.executemany("INSERT INTO flea_installs (entity_id, user_id, created_at) VALUES (?, ?, ?)", installs)
            cookies = []
            for user in (analyst, admin):
                cookies.append(app.session_interface.get_signing_serializer(app).dumps(start_session(con, user.id)))  # type: ignore[attr-defined]
    return cookies[0], cookies[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=20000)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000, help="requests per 10-client run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="agnes-bench-flea-pages-"))
    proc = None
    try:
        started = time.perf_counter()
        built = subprocess.run(
            [sys.executable, __file__, "build", str(tmp / "data"), str(args.entities), str(args.versions),
             str(args.pending)],
            capture_output=True, text=True, check=True, timeout=900,
        )  # fmt: skip
        analyst, admin = json.loads(built.stdout.strip().splitlines()[-1])
        print(
            f"data: {args.entities} entries, {args.versions + args.pending} versions ({args.pending} in review) in"
            f" {time.perf_counter() - started:.1f} s; gunicorn gthread {args.workers}x{args.threads};"
            f" cores {os.cpu_count()}"
        )
        proc, port = start_server(tmp / "data", args.workers, args.threads)
        scenarios = [
            ("flea tab, page 1 (HTML)", analyst, "/marketplace?tab=flea", (), (1, 10)),
            ("flea tab, most installed (fragment)", analyst, "/marketplace?tab=flea&sort=most_installed",
             ("HX-Request=true",), (10,)),
            ("flea tab, search q=data (fragment)", analyst, "/marketplace?tab=flea&q=data",
             ("HX-Request=true",), (10,)),
            ("/admin/flea, in review (HTML)", admin, "/admin/flea", (), (1,)),
            ("/admin/flea, all, page 3 (fragment)", admin, "/admin/flea?status=all&page=3",
             ("HX-Request=true",), (1,)),
        ]  # fmt: skip
        for _, cookie, path, headers, _clients in scenarios:
            load(port, cookie, 2, 50, path, *headers)  # warm-up
        print(f"\n{'scenario':42} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
        for label, cookie, path, headers, client_counts in scenarios:
            for clients in client_counts:
                count = args.requests if clients > 1 else max(100, args.requests // 5)
                r = load(port, cookie, clients, count, path, *headers)
                print(
                    f"{label:42} {clients:>7} {r['rps']:>8.0f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}"
                    f" {r['error_count']:>7}"
                )
        print(
            f"\ntargets: flea tab (10 clients) >= {TAB_TARGET_RPS:.0f} req/s;"
            f" /admin/flea p95 <= {QUEUE_TARGET_MS:.0f} ms"
        )
        print(f"host load average (1 min) at the end: {os.getloadavg()[0]:.1f} (other processes share the cores)")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "build":
        print(json.dumps(build_data(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
    else:
        main()
