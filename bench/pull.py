"""Benchmark of data distribution: manifest latency, full ``agnes pull`` and no-change pull.

    python bench/pull.py                 # 20 tables, ~500 MB
    python bench/pull.py --total-mb 100  # smaller
    python bench/pull.py --tables 50 --total-mb 1000 --parallelism 8

It registers N parquet tables of incompressible data, syncs them, serves the app with gunicorn
(``gunicorn --threads 8 wsgi:app``, as in production) on a loopback port, and measures:

* manifest latency (client side, keep-alive, median and p95 of 200 calls);
* a full ``agnes pull`` into an empty workspace (wall time of the CLI process, start-up included),
  next to the floor: ``curl`` fetching the same files from ``python -m http.server``
  (same parallelism, written to disk);
* a no-change ``agnes pull`` (wall time, Python start-up included; median of 7).

Targets (issue 5): full pull >= 650 MB/s, no-change pull <= 0.15 s, manifest <= 5 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import bench_app, free_port, wait_http  # noqa: E402  (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_sources(folder: Path, tables: int, total_mb: float) -> None:
    """``tables`` parquet files of random bytes (zstd cannot shrink them) totalling ``total_mb``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_table = int(total_mb * 1024 * 1024 / tables)
    row_bytes = 16 * 1024
    rows = max(1, per_table // row_bytes)
    for index in range(tables):
        blobs = pa.array([os.urandom(row_bytes) for _ in range(rows)], type=pa.binary())
        ids = pa.array(range(rows), type=pa.int64())
        pq.write_table(pa.table({"id": ids, "blob": blobs}), folder / f"t{index:02d}.parquet", compression="none")


def setup(data_dir: Path, sources: Path, tables: int) -> str:
    """Register, sync and grant the tables; returns an analyst token."""
    from agnes import people
    from agnes.auth.pat import create_pat
    from agnes.data.registration import register_table
    from agnes.data.sync import sync_table

    app = bench_app(data_dir)
    with app.app_context():
        for index in range(tables):
            table_id = f"bench_{index:02d}"
            register_table(
                {
                    "id": table_id,
                    "name": table_id,
                    "source_type": "parquet",
                    "source_spec": {"location": str(sources / f"t{index:02d}.parquet")},
                },
                owner_id=None,
            )
            sync_table(table_id)
            people.create_grant("everyone", "table", table_id, actor_id=None)
        user = people.create_user("analyst@example.com")
        _, token = create_pat(user.id, "bench", 1)
    return token


def manifest_latency(port: int, token: str, calls: int = 200, path: str = "/api/sync/manifest") -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    timings = []
    for _ in range(calls + 10):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        timings.append(time.perf_counter() - started)
        assert response.status == 200, response.status
    conn.close()
    timings = sorted(timings[10:])
    return statistics.median(timings) * 1000, timings[int(len(timings) * 0.95)] * 1000


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_pull(env: dict[str, str], workspace: Path) -> tuple[float, dict]:  # type: ignore[type-arg]
    """Wall time of one ``agnes pull --json`` process (its CPU time lands in children_cpu())."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "pull", "--json", "--workspace", str(workspace)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"agnes pull failed: {done.stderr}")
    return elapsed, json.loads(done.stdout)


def curl_floor(files: list[Path], root: Path, target: Path, parallelism: int) -> float:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(port)
        args = ["curl", "-s", "--fail", "--parallel", "--parallel-max", str(parallelism)]
        for path in files:
            args += ["-o", str(target / path.name), f"http://127.0.0.1:{port}/{path.relative_to(root)}"]
        started = time.perf_counter()
        subprocess.run(args, check=True)
        return time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--total-mb", type=float, default=500)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="agnes-bench-pull-"))
    data_dir, sources = work / "data", work / "sources"
    sources.mkdir(parents=True)
    gunicorn = None
    try:
        print(f"generating {args.tables} tables, {args.total_mb:.0f} MB ...", flush=True)
        make_sources(sources, args.tables, args.total_mb)
        token = setup(data_dir, sources, args.tables)
        files = sorted((data_dir / "extracts").rglob("bench_*.parquet"))
        total = sum(p.stat().st_size for p in files)
        mb = total / 1e6

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_") and k != "REDIS_URL"}
        server_env = {**env, "AGNES_DATA_DIR": str(data_dir), "AGNES_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        gunicorn = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                str(args.threads),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=server_env,
        )
        wait_http(port)
        median_ms, p95_ms = manifest_latency(port, token)
        # Every request with a token pays for the token check (one state-store read); /healthz does nothing else.
        floor_ms, _ = manifest_latency(port, token, path="/healthz")

        cli_env = {
            **env,
            "AGNES_URL": f"http://127.0.0.1:{port}",
            "AGNES_TOKEN": token,
            "PYTHONPATH": str(ROOT),
            "AGNES_CONFIG_DIR": str(work / "config"),
            "AGNES_PULL_PARALLELISM": str(args.parallelism),
        }
        workspace = work / "workspace"
        cpu_before = children_cpu()
        full_s, summary = run_pull(cli_env, workspace)
        full_cpu = children_cpu() - cpu_before
        assert len(summary["downloaded"]) == args.tables and not summary["errors"], summary
        pulled_bytes = summary["bytes"]

        floor_dir = work / "curl"
        floor_dir.mkdir()
        cpu_before = children_cpu()
        floor_s = curl_floor(files, data_dir / "extracts", floor_dir, args.parallelism)
        floor_cpu = children_cpu() - cpu_before

        no_change = []
        for _ in range(7):
            seconds, summary = run_pull(cli_env, workspace)
            assert summary["downloaded"] == [], summary
            no_change.append(seconds)
        startup = []
        for _ in range(7):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "cli.main", "--version"], env=cli_env, cwd=ROOT, capture_output=True, check=True
            )
            startup.append(time.perf_counter() - started)

        print(
            f"tables: {args.tables}, {mb:.0f} MB on disk (parallelism {args.parallelism}, "
            f"gunicorn 1 worker x {args.threads} threads, {os.cpu_count()} cores)"
        )
        print(f"manifest latency:     median {median_ms:.2f} ms, p95 {p95_ms:.2f} ms   (target <= 5 ms)")
        print(f"  same server, GET /healthz with the token (the token check alone): median {floor_ms:.2f} ms")
        print(
            f"full pull:            {full_s:.2f} s, {pulled_bytes / 1e6 / full_s:.0f} MB/s "
            f"(CLI wall time incl. start-up, MD5 verify, views)   (target >= 650 MB/s)"
        )
        print(f"floor (curl <- python -m http.server): {floor_s:.2f} s, {mb / floor_s:.0f} MB/s")
        print(
            f"CPU seconds: agnes pull {full_cpu:.2f} (client only; MD5 alone is ~{mb / 600:.2f}),"
            f" curl + http.server {floor_cpu:.2f}"
        )
        load = os.getloadavg()[0]
        print(
            f"machine load average during the run: {load:.1f} on {os.cpu_count()} cores"
            f"{' (busy: figures are lower than on an idle machine)' if load > 1.5 else ''}"
        )
        print(
            f"no-change pull:       median {statistics.median(no_change):.3f} s, min {min(no_change):.3f} s "
            f"(incl. Python start-up)   (target <= 0.15 s)"
        )
        print(f"CLI start-up alone (agnes --version): median {statistics.median(startup):.3f} s")
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(10)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
