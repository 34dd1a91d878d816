"""Benchmark of remote tables: snapshot estimate accuracy, snapshot throughput against ``psql COPY``,
time to the first progress line, and the web process's peak memory while it streams.

    python bench/remote.py                        # 10,000,000 rows (generated once, kept)
    python bench/remote.py --rows 1000000 --rounds 1
    AGNES_BENCH_PG=postgresql://postgres@127.0.0.1:5432 python bench/remote.py

It creates (once) the database ``agnes_bench_remote`` with ``events`` (``--rows`` rows: id, user
id, time, kind, amount numeric(12,2), a text payload), registers it as a remote table on an
Agnes served by gunicorn on a loopback port, and prints:

* the source's ``--estimate`` for a filter selecting 1 % of the rows beside the true count;
* per round, ``agnes snapshot create`` of that slice and of ``--big-where`` (default: 30 % of the
  rows), as rows/s and MB/s of parquet written, beside ``psql -c "COPY (SELECT ...) TO STDOUT"``
  of the same rows to /dev/null (the floor), and the time from start to the CLI's first progress line;
* whether the snapshot holds exactly the rows psql returns (count and an MD5 over the sorted ids);
* the web worker's peak resident memory (``VmHWM``) after the snapshots.

Targets (issue 17): estimate within 3x of the true count; snapshot >= 0.5x the floor's rows/s;
web process under 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import bench_app, free_port, wait_http  # noqa: E402  (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATABASE = "agnes_bench_remote"


def ensure_table(base: str, rows: int) -> str:
    """The DSN of the bench database, with ``events`` of ``rows`` rows (created or re-created)."""
    import psycopg

    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    dsn = f"{base}/{DATABASE}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('public.events')"
        ).fetchone()
        if found and abs(int(found[0]) - rows) <= rows * 0.01:
            return dsn
        print(f"generating events: {rows:,} rows ...", flush=True)
        started = time.perf_counter()
        conn.execute("DROP TABLE IF EXISTS events")
        conn.execute(
            "CREATE TABLE events AS SELECT g::bigint AS id, (g %% 10000)::int AS user_id,"
            " timestamptz '2025-01-01 00:00+00' + g * interval '3 seconds' AS created_at,"
            " (ARRAY['view','click','buy','scroll'])[1 + g %% 4] AS kind,"
            " ((g::bigint * 7919) %% 100000 / 100.0)::numeric(12,2) AS amount,"
            " md5(g::text) AS payload FROM generate_series(1, %s) g",
            [rows],
        )
        conn.execute("ALTER TABLE events ADD PRIMARY KEY (id)")
        conn.execute("ANALYZE events")
        print(f"  generated in {time.perf_counter() - started:.1f}s", flush=True)
    return dsn


def setup(data_dir: Path, dsn: str) -> str:
    """Register and sync ``events`` as a remote table, grant it; returns an analyst token."""
    from agnes import people
    from agnes.auth.pat import create_pat
    from agnes.data.registration import register_table
    from agnes.data.sync import sync_table

    (data_dir / "state").mkdir(parents=True, exist_ok=True)
    overlay = data_dir / "state" / ".env_overlay"
    overlay.write_text(f"BENCH_PG_DSN={dsn}\n")
    os.chmod(overlay, 0o600)
    app = bench_app(data_dir)
    with app.app_context():
        register_table(
            {
                "id": "events",
                "name": "events",
                "source_type": "postgres",
                "query_mode": "remote",
                "source_spec": {"dsn_env": "BENCH_PG_DSN", "table": "public.events"},
            },
            owner_id=None,
        )
        sync_table("events")
        people.create_grant("everyone", "table", "events", actor_id=None)
        user = people.create_user("analyst@example.com")
        _, token = create_pat(user.id, "bench", 1)
    return token


def psql_floor(dsn: str, select: str) -> float:
    """Seconds ``psql -c "COPY (select) TO STDOUT"`` takes to write the rows to /dev/null."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["psql", dsn, "-q", "-c", f"COPY ({select}) TO STDOUT"], stdout=sink, check=True)
    return time.perf_counter() - started


def psql_value(dsn: str, sql: str) -> str:
    return subprocess.run(["psql", dsn, "-qtAc", sql], capture_output=True, text=True, check=True).stdout.strip()


def snapshot(env: dict[str, str], workspace: Path, where: str, name: str) -> tuple[float, float, float]:
    """``(seconds, seconds to the first progress line, to the first line counting bytes)`` of one
    ``agnes snapshot create``."""
    command = [sys.executable, "-m", "cli.main", "snapshot", "create", "events", "--where", where]
    command += ["--as", name, "--force", "--workspace", str(workspace)]
    started = time.perf_counter()
    first = first_bytes = None
    lines = []
    with subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        assert p.stdout is not None
        for line in p.stdout:
            if line.startswith(f"snapshot {name}:"):
                now = time.perf_counter() - started
                first = now if first is None else first
                if first_bytes is None and "/s" in line:
                    first_bytes = now
            lines.append(line)
        code = p.wait()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit("snapshot failed:\n" + "".join(lines))
    return elapsed, first if first is not None else elapsed, first_bytes if first_bytes is not None else elapsed


def worker_peak_mb(master: int) -> float:
    """Peak resident memory (VmHWM) of the gunicorn workers under ``master``, MB."""
    peak = 0.0
    for child in Path("/proc").iterdir():
        if not child.name.isdigit():
            continue
        try:
            status = (child / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(master) and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]) / 1024)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--where", default="user_id < 100", help="the 1 %% slice")
    parser.add_argument("--big-where", default="user_id < 3000", help="the throughput slice (30 %%)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    base = os.environ.get("AGNES_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    dsn = ensure_table(base, args.rows)

    work = Path(tempfile.mkdtemp(prefix="agnes-bench-remote-"))
    data_dir = work / "data"
    gunicorn = None
    try:
        token = setup(data_dir, dsn)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_") and k != "REDIS_URL"}
        server_env = {**env, "AGNES_DATA_DIR": str(data_dir), "AGNES_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4", "--timeout", "0"]
        gunicorn = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=server_env
        )
        wait_http(port)
        cli_env = {
            **env,
            "HOME": str(work / "home"),
            "AGNES_CONFIG_DIR": str(work / "home" / "config"),
            "AGNES_URL": f"http://127.0.0.1:{port}",
            "AGNES_TOKEN": token,
            "PYTHONPATH": str(ROOT),
        }
        workspace = work / "ws"

        estimate_out = subprocess.run(
            [sys.executable, "-m", "cli.main", "snapshot", "create", "events", "--where", args.where, "--estimate"],
            env=cli_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        estimated = int(
            next(line for line in estimate_out.splitlines() if "rows" in line).split(":")[1].replace(",", "")
        )
        true_rows = int(psql_value(dsn, f"SELECT count(*) FROM events WHERE {args.where}"))
        ratio = max(estimated, 1) / max(true_rows, 1)
        print(f"\nestimate for WHERE {args.where}: {estimated:,} rows, true {true_rows:,} (x{ratio:.2f})")

        for label, where in (("1% slice", args.where), ("30% slice", args.big_where)):
            rows = int(psql_value(dsn, f"SELECT count(*) FROM events WHERE {where}"))
            print(f"\n{label}: WHERE {where} ({rows:,} rows)")
            for round_no in range(1, args.rounds + 1):
                floor = psql_floor(dsn, f"SELECT * FROM events WHERE {where}")
                seconds, first, first_bytes = snapshot(cli_env, workspace, where, "s")
                size = (workspace / "data" / "snapshots" / "s.parquet").stat().st_size
                print(
                    f"  round {round_no}: snapshot {seconds:.2f}s = {rows / seconds:,.0f} rows/s,"
                    f" {size / 1e6 / seconds:.1f} MB/s parquet ({size / 1e6:.1f} MB); first progress line"
                    f" after {first:.2f}s, first bytes {first_bytes:.2f}s"
                    f" | psql COPY {floor:.2f}s = {rows / floor:,.0f} rows/s"
                    f" | {floor / seconds:.2f}x the floor",
                    flush=True,
                )
            listed = json.loads(
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "cli.main",
                        "query",
                        "-f",
                        "json",
                        "--workspace",
                        str(workspace),
                        "SELECT count(*) AS n, md5(string_agg(id::VARCHAR, ',' ORDER BY id)) AS h FROM s",
                    ],
                    env=cli_env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )[0]
            truth = psql_value(dsn, f"SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM events WHERE {where}")
            same = listed["n"] == rows and listed["h"] == truth
            print(
                f"  snapshot rows = psql rows: {'yes' if same else 'NO'} ({listed['n']:,} rows, ids md5 {listed['h']})"
            )
        print(f"\nweb worker peak memory (VmHWM): {worker_peak_mb(gunicorn.pid):.0f} MB")
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(timeout=20)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
