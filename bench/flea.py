"""Benchmark of the flea market (issue 11 targets, on 2 cores).

1. **Upload to served**: an analyst uploads a new version of a 1 MB plugin ZIP through the API;
   the review job (embedded, against an instant stub Messages API on 127.0.0.1) approves it; the
   time until a colleague's ``/marketplace.zip`` carries the new version. Target p95 <= 1 s.
2. **Admin queue**: ``GET /api/admin/flea`` (the data of ``/admin/flea``: chips with counts, 50 rows)
   and the HTML page ``/admin/flea`` with 1,000 versions in review among 20,000, under gunicorn,
   1 client. Target p95 <= 60 ms.
3. **Flea tab**: ``GET /api/flea/entities`` (the data of ``/marketplace?tab=flea``) and the HTML
   page ``/marketplace?tab=flea`` over 2,000 approved entries, 10 concurrent clients.
   Target >= 200 requests/s.

The archive checks (20 MB / 2,000 files, a bomb) are measured by ``bench/flea_checks.py``.

Usage: ``python bench/flea.py [--rounds 10] [--requests 1000] [--entities 2000] [--versions 20000]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's agnes and tests

from _common import bench_app  # noqa: E402  (bench/ is on sys.path)
from pages import load, start_server  # noqa: E402

UPLOAD_TARGET_S = 1.0
QUEUE_TARGET_MS = 60.0
TAB_TARGET_RPS = 200.0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def plugin_zip(revision: int, size: int = 1024 * 1024) -> bytes:
    """A ~``size``-byte plugin ZIP (40 Markdown files of random words, stored, so ~size bytes)."""
    rng = random.Random(revision)
    words = "data warehouse query report churn revenue cohort funnel metric table join window".split()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(
            "kit/.claude-plugin/plugin.json",
            json.dumps({"name": "kit", "version": "1.0.0", "description": "Careful analytics helpers for reports."}),
        )
        zf.writestr(
            "kit/skills/report/SKILL.md",
            "---\nname: report\ndescription: Builds the weekly report from the warehouse and explains it.\n---\n\n"
            f"Revision {revision}. Query the warehouse, then summarise what changed.\n",
        )
        per_file = size // 40
        for n in range(40):
            text = " ".join(rng.choice(words) for _ in range(per_file // 7))
            zf.writestr(f"kit/docs/notes-{n:02d}.md", f"# Notes {n}\n\n{text}\n")
    return buf.getvalue()


def bench_upload_to_served(rounds: int) -> list[float]:
    from agnes.access import AuthMethod, Principal  # noqa: F401 - the app's modules load here
    from agnes.auth.pat import create_pat
    from agnes.people import create_user
    from tests.flea.reviewer_stub import ReviewerStub

    stub = ReviewerStub()
    tmp = Path(tempfile.mkdtemp(prefix="flea-bench-"))
    try:
        app = bench_app(tmp / "data")
        app.config.update(ANTHROPIC_API_KEY="sk-ant-bench", ANTHROPIC_BASE_URL=stub.url)
        with app.app_context():
            owner, colleague = create_user("owner@example.com"), create_user("colleague@example.com")
            owner_token, colleague_token = create_pat(owner.id, "b", 1)[1], create_pat(colleague.id, "b", 1)[1]
            client = app.test_client()
            jobs = app.extensions["agnes_jobs"]

            def post(path: str, revision: int) -> dict:
                form = {
                    "file": (io.BytesIO(plugin_zip(revision)), "kit.zip"),
                    "type": "plugin",
                    "name": "kit",
                    "category": "Data & Analytics",
                }
                res = client.post(path, data=form, headers={"Authorization": f"Bearer {owner_token}"})
                assert res.status_code == 201, res.get_json()
                return res.get_json()

            def served_version() -> str:
                res = client.get(
                    "/marketplace.zip", headers={"Authorization": f"Bearer {colleague_token}"}, buffered=True
                )
                manifest = json.loads(zipfile.ZipFile(io.BytesIO(res.data)).read(".claude-plugin/marketplace.json"))
                return next((p["version"] for p in manifest["plugins"] if p["name"] == "kit-by-owner"), "")

            first = post("/api/flea/entities", 0)
            entity_id = first["entity"]["id"]
            jobs.wait_idle()
            client.post(
                f"/api/flea/entities/{entity_id}/install", headers={"Authorization": f"Bearer {colleague_token}"}
            )
            assert served_version().startswith("1-")
            timings = []
            for revision in range(1, rounds + 1):
                started = time.perf_counter()
                post(f"/api/flea/entities/{entity_id}/versions", revision)
                jobs.wait_idle()
                version = served_version()
                timings.append(time.perf_counter() - started)
                assert version.startswith(f"{revision + 1}-"), version
            return timings
    finally:
        stub.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def build_data(data_dir: Path, entities: int, versions: int, pending: int) -> tuple[str, str]:
    """A data dir with ``entities`` approved entries (``versions`` versions, ``pending`` in review)
    written straight into the state store. Returns (admin PAT, analyst PAT)."""
    from agnes.auth.pat import create_pat
    from agnes.models import new_id, users, utcnow
    from agnes.people import create_user
    from agnes.state import state_store

    app = bench_app(data_dir)
    rng = random.Random(11)
    words = "sql report churn cohort funnel revenue forecast docs review deploy audit metrics".split()
    with app.app_context():
        owners = [create_user(f"owner{n}@example.com") for n in range(50)]
        analyst = create_user("analyst@example.com")
        with state_store().read() as con:
            admin = users.get_user_by_email(con, "admin@example.com")
        now = utcnow()
        entity_rows, version_rows = [], []
        per_entity = max(1, versions // entities)
        for n in range(entities):
            entity_id = new_id()
            owner = owners[n % len(owners)]
            count = per_entity
            entity_rows.append(
                (
                    entity_id,
                    owner.id,
                    rng.choice(["skill", "agent", "command", "plugin"]),
                    f"{rng.choice(words)}-{n}",
                    "Data & Analytics",
                    " ".join(rng.choice(words) for _ in range(20)),
                    "active",
                    count,
                    now,
                    now,
                )
            )
            for number in range(1, count + 1):
                version_rows.append(
                    (new_id(), entity_id, number, os.urandom(32).hex(), 4096, 3, "approved", "", "[]", owner.id, now)
                )
        for row in rng.sample(range(len(version_rows)), pending):
            version_rows[row] = version_rows[row][:6] + ("in_review",) + version_rows[row][7:]
        with state_store().write() as con:
            con.executemany(
                "INSERT INTO flea_handles (user_id, handle) VALUES (?, ?)",
                [(o.id, f"owner{n}") for n, o in enumerate(owners)],
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
        admin_token = create_pat(admin.id, "bench", 1)[1]
        analyst_token = create_pat(analyst.id, "bench", 1)[1]
    return admin_token, analyst_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="uploads to served")
    parser.add_argument("--requests", type=int, default=1000, help="requests per server measurement")
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=20000)
    parser.add_argument("--pending", type=int, default=1000)
    args = parser.parse_args()

    timings = bench_upload_to_served(args.rounds)
    print(
        f"upload to served (1 MB ZIP, instant stub), {len(timings)} rounds: p50 {statistics.median(timings):.3f} s,"
        f" p95 {p95(timings):.3f} s (target <= {UPLOAD_TARGET_S} s)"
    )

    tmp = Path(tempfile.mkdtemp(prefix="flea-bench-"))
    proc = None
    try:
        started = time.perf_counter()
        admin_token, analyst_token = build_data(tmp / "data", args.entities, args.versions, args.pending)
        print(
            f"data: {args.entities:,} entries, {args.versions:,} versions, {args.pending:,} in review"
            f" (built in {time.perf_counter() - started:.1f} s)"
        )
        proc, port = start_server(tmp / "data", 2, 8)
        admin = f"Authorization=Bearer {admin_token}"
        analyst = f"Authorization=Bearer {analyst_token}"
        for path in ("/api/admin/flea", "/api/admin/flea?status=all&sort=newest&page=7", "/admin/flea"):
            load(port, "-", 1, 50, path, admin)  # warm-up
            r = load(port, "-", 1, args.requests // 4, path, admin)
            print(
                f"admin queue {path}: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, errors {r['error_count']}"
                f" (target p95 <= {QUEUE_TARGET_MS:.0f} ms)"
            )
        for path in (
            "/api/flea/entities",
            "/api/flea/entities?sort=most_installed&q=churn&page=2",
            "/marketplace?tab=flea",
        ):
            load(port, "-", 4, 100, path, analyst)
            r = load(port, "-", 10, args.requests, path, analyst)
            print(
                f"flea tab {path}, 10 clients: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms,"
                f" p95 {r['p95_ms']:.1f} ms, errors {r['error_count']} (target >= {TAB_TARGET_RPS:.0f} req/s)"
            )
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
