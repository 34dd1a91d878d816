"""Benchmark of the analysts' marketplace pages under a real threaded server.

Builds a data dir with N synthetic curated plugins (default 300) written straight into the state
store and their working copies, starts ``gunicorn -k gthread wsgi:app`` on it, and drives it from a
separate load-generator process (threads on ``http.client`` with keep-alive), signed in as an
analyst who is granted every plugin. Prints p50/p95 latency seen by the client (an upper bound of
server time) and throughput for:

* a baseline: `/healthz` with the session cookie (the sign-in check every page pays);
* the full HTML listing page (24 cards), page 1 and a search;
* the listing fragment (``HX-Request``) and its JSON twin;
* a plugin detail page;

each sequentially (1 client) and with 10 concurrent clients, then the server's memory (RSS of the
gunicorn workers) before and after a sustained run.

The data holds 30 days of usage rollups for the plugins (issue 13: Most Popular, usage sorts and
a chip on every card). Issue 4 targets, on a 2-core machine: the full HTML listing page at 10 concurrent clients
>= 225 requests/s with p95 <= 100 ms, and memory flat under sustained load.

Usage: ``python bench/pages.py [--plugins 300] [--workers 2] [--threads 8] [--requests 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import bench_app, free_port  # noqa: E402  (bench/ is on sys.path)

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "data pipeline warehouse python testing review security deploy kubernetes cloud cost analytics "
    "dashboard metrics sql dbt spark streaming docs writing research finance sales marketing legal "
    "support incident on-call observability tracing logging api graphql frontend react design audit "
    "migration refactor performance profiling ml training evaluation prompts agents planning"
).split()
CATEGORIES = (
    "data",
    "engineering",
    "security",
    "productivity",
    "finance",
    "design",
    "operations",
    "research",
    "languages",
    "",
)
ANALYST = "bench-analyst@example.com"


# -- data ---------------------------------------------------------------------------------------


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _write_plugin(root: Path, name: str, rng: random.Random) -> tuple[int, int, int]:
    (root / ".claude-plugin").mkdir(parents=True)
    (root / ".claude-plugin" / "plugin.json").write_text(
        json.dumps({"name": name, "version": "1.0.0", "description": _sentence(rng, 12)})
    )
    readme = [f"# {name}\n", _sentence(rng, 40), "\n## Usage\n"]
    readme += [f"- {_sentence(rng, 10)}" for _ in range(12)]
    readme += ["\n```sh\nclaude plugin install " + name + "@agnes\n```\n", "| a | b |\n|---|---|\n| 1 | 2 |\n"]
    (root / "README.md").write_text("\n".join(readme))
    skills, agents, commands = rng.randint(1, 6), rng.randint(0, 3), rng.randint(0, 4)
    for i in range(skills):
        d = root / "skills" / f"{name}-skill-{i}"
        d.mkdir(parents=True)
        (d / "SKILL.md").write_text(
            f"---\nname: {name}-skill-{i}\ndescription: {_sentence(rng, 14)}\n---\n"
            + "\n\n".join(_sentence(rng, 30) for _ in range(20))
        )
    for i in range(agents):
        (root / "agents").mkdir(exist_ok=True)
        (root / "agents" / f"agent-{i}.md").write_text(
            f"---\nname: agent-{i}\ndescription: {_sentence(rng, 8)}\nmodel: sonnet\n---\nYou are an agent.\n"
        )
    for i in range(commands):
        (root / "commands").mkdir(exist_ok=True)
        (root / "commands" / f"cmd-{i}.md").write_text(f"Run step {i} with $ARGUMENTS.\n")
    return skills, agents, commands


def build_data(data_dir: Path, plugins: int) -> tuple[str, str]:
    """Create the data dir; returns (session cookie value, detail page path)."""
    os.environ["AGNES_DATA_DIR"] = str(data_dir)
    from agnes import people
    from agnes.auth import start_session
    from agnes.models import marketplaces, utcnow
    from agnes.models.marketplaces import PluginRecord
    from agnes.state import state_store

    app = bench_app(data_dir)
    rng = random.Random(4)
    slug = "bench"
    checkout = Path("marketplaces") / slug / "checkouts" / "s1"
    records = []
    for i in range(plugins):
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i:03d}"
        counts = _write_plugin(data_dir / checkout / name, name, rng)
        records.append(
            PluginRecord(
                name=name,
                manifest_name=name,
                source_kind="path",
                source_spec=f"./plugins/{name}",
                raw={"name": name, "source": f"./plugins/{name}"},
                description=_sentence(rng, 18),
                version="1.0.0",
                author_name=rng.choice(("Data Team", "Platform", "Security Guild", "Jane Doe")),
                category=rng.choice(CATEGORIES) or None,
                skill_count=counts[0],
                agent_count=counts[1],
                command_count=counts[2],
                content_dir=str(checkout / name),
                content_hash=f"h{i}",
                file_count=5,
                size_bytes=10_000,
            )
        )
    with app.app_context():
        with state_store().write() as con:
            marketplaces.create_marketplace(
                con,
                slug=slug,
                name="Bench Market",
                url="https://git.example.com/bench.git",
                branch=None,
                token_env=None,
                description="",
                curator_name="Cora Curator",
                curator_email="cora@example.com",
                registered_by=None,
            )
            marketplaces.apply_sync(
                con, slug, commit_sha="0" * 40, checkout_dir=str(checkout), records=records, started_at=utcnow()
            )
        group = people.create_group("Bench analysts", actor_id=None)
        user = people.create_user(ANALYST, "Bench Analyst")
        people.add_member(group.id, ANALYST, actor_id=None)
        with state_store().write() as con:
            con.executemany(
                "INSERT INTO resource_grants (id, group_id, resource_type, resource_id) VALUES (?, ?, ?, ?)",
                [[f"g{i}", group.id, "marketplace_plugin", f"{slug}/{r.name}"] for i, r in enumerate(records)],
            )
            con.executemany(
                "INSERT INTO user_plugin_subscriptions (user_id, marketplace_id, plugin_name) VALUES (?, ?, ?)",
                [[user.id, slug, r.name] for r in records[::7]],
            )
        _load_usage(slug, [r.name for r in records], rng)
        with state_store().write() as con:
            values = start_session(con, user.id)
        cookie = app.session_interface.get_signing_serializer(app).dumps(values)  # type: ignore[attr-defined]
    return cookie, f"/marketplace/curated/{slug}/{records[5].name}"


def _load_usage(slug: str, names: list[str], rng: random.Random) -> None:
    """30 days of usage rollups for every plugin and one skill each (issue 13: the pages keep their
    targets with the Most Popular block, the sorts and a chip on every card)."""
    from datetime import timedelta

    from agnes.models import utcnow
    from agnes.state import state_store

    now = utcnow()
    daily, window = [], []
    for name in names:
        parent = f"{slug}/{name}"
        used = rng.random() < 0.6
        for item_type, item in (("plugin", name), ("skill", f"{name}:skill-a")):
            calls30 = users30 = 0
            for day in range(30):
                calls = rng.randint(0, 40) if used else 0
                if calls:
                    users = rng.randint(1, 12)
                    daily.append(
                        [
                            (now - timedelta(days=day)).date(),
                            "curated",
                            item_type,
                            parent,
                            item,
                            calls,
                            calls // 20,
                            users,
                        ]
                    )
                    calls30 += calls
                    users30 = max(users30, users)
            if calls30:
                for period in ("last_7d", "last_30d"):
                    window.append(
                        [period, "curated", item_type, parent, item, calls30, calls30 // 20, users30, 20, now, now]
                    )
    import pyarrow as pa

    columns_daily = ["day", "source", "item_type", "parent", "name", "calls", "errors", "users"]
    columns_window = [
        "period",
        "source",
        "item_type",
        "parent",
        "name",
        "calls",
        "errors",
        "users",
        "active_days",
        "last_used_at",
        "refreshed_at",
    ]
    daily_table = pa.table({c: [row[i] for row in daily] for i, c in enumerate(columns_daily)})
    window_table = pa.table({c: [row[i] for row in window] for i, c in enumerate(columns_window)})
    with state_store().write() as con:
        con.register("bench_daily", daily_table)
        con.register("bench_window", window_table)
        con.execute("INSERT INTO usage_item_daily SELECT * FROM bench_daily")
        con.execute("INSERT INTO usage_item_window SELECT * FROM bench_window")


# -- server -------------------------------------------------------------------------------------


def start_server(data_dir: Path, workers: int, threads: int) -> tuple[subprocess.Popen[bytes], int]:
    """``gunicorn -k gthread wsgi:app`` on a free port; its output goes to ``<tmp>/gunicorn.log``."""
    port = free_port()
    env = {
        **os.environ,
        "AGNES_DATA_DIR": str(data_dir),
        "AGNES_LOG_LEVEL": "WARNING",
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
        "AGNES_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        # Server time of every request (%(D)s: microseconds in gunicorn) for the server-side percentiles.
        "--access-logfile",
        str(data_dir.parent / "access.log"),
        "--access-logformat",
        "%(D)s %(s)s",
        "wsgi:app",
    ]
    with open(data_dir.parent / "gunicorn.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start: " + (data_dir.parent / "gunicorn.log").read_text()[-2000:])


def _workers(master: int) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == str(master):
                found.append(pid)
    return found


def worker_rss_mb(master: int) -> float:
    """Total RSS (MB) of the gunicorn workers (children of the master)."""
    total = 0
    for pid in _workers(master):
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        total += int(fields.get("VmRSS", "0 kB").split()[0])
    return total / 1024


def server_times_ms(access_log: Path, offset: int) -> tuple[list[float], int]:
    """Server times (ms) logged by gunicorn after byte ``offset``, and the new offset."""
    with access_log.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    times = sorted(int(line.split()[0]) / 1000 for line in data.decode().splitlines() if line.strip())
    return times, offset + len(data)


def worker_cpu_seconds(master: int) -> float:
    """User + system CPU time (s) used so far by the gunicorn workers."""
    ticks = 0
    for pid in _workers(master):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# -- load generator (runs as its own process) ----------------------------------------------------


def client_main(argv: list[str]) -> None:
    """``pages.py client PORT COOKIE CONCURRENCY REQUESTS PATH [HEADER=VALUE...]`` → JSON on stdout."""
    import http.client

    port, cookie, concurrency, total, path = int(argv[0]), argv[1], int(argv[2]), int(argv[3]), argv[4]
    extra = dict(h.split("=", 1) for h in argv[5:])
    headers = {"Cookie": f"agnes_session={cookie}", **extra}
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    counter = iter(range(total))

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                with lock:
                    errors.append(response.status)
        conn.close()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=run) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "requests": len(latencies),
                "seconds": elapsed,
                "rps": len(latencies) / elapsed,
                "p50_ms": statistics.median(latencies) * 1000,
                "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
                "max_ms": latencies[-1] * 1000,
                "errors": errors[:5],
                "error_count": len(errors),
            }
        )
    )


def load(port: int, cookie: str, concurrency: int, requests: int, path: str, *headers: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "client", str(port), cookie, str(concurrency), str(requests), path, *headers],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugins", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrent run")
    parser.add_argument("--sustained", type=int, default=4000, help="requests of the memory run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="agnes-bench-pages-"))
    proc = None
    try:
        started = time.perf_counter()
        # In its own process: this one then never loads DuckDB (and never holds the state store).
        built = subprocess.run(
            [sys.executable, __file__, "build", str(tmp / "data"), str(args.plugins)],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        cookie, detail = json.loads(built.stdout.strip().splitlines()[-1])
        print(
            f"data: {args.plugins} plugins in {time.perf_counter() - started:.1f} s; "
            f"server: gunicorn gthread, {args.workers} workers x {args.threads} threads; cores: {os.cpu_count()}"
        )
        proc, port = start_server(tmp / "data", args.workers, args.threads)
        scenarios = [
            # The floor every signed-in request pays (session → user and groups: one state-store unit).
            ("baseline: /healthz, signed in", "/healthz", ()),
            ("listing page 1 (HTML, 24 cards)", "/marketplace", ()),
            ("listing search q=data (HTML)", "/marketplace?q=data", ()),
            ("listing fragment (HX-Request)", "/marketplace?page=2", ("HX-Request=true",)),
            ("listing JSON /api/marketplace/items", "/api/marketplace/items", ()),
            ("plugin detail page", detail, ()),
        ]
        for _, path, headers in scenarios:
            load(port, cookie, 4, 200, path, *headers)  # warm-up: caches, templates, connections
        print("\nclient = latency seen by the load generator; server = gunicorn's request time (access log);")
        print("CPU = CPU time of the gunicorn workers per request (unaffected by other load on the host)")
        print(
            f"{'scenario':40} {'clients':>7} {'req/s':>8} {'client p50':>10} {'p95':>6} {'server p50':>10} {'p95':>6}"
            f" {'CPU ms':>7}"
        )
        access_log = tmp / "access.log"
        _, offset = server_times_ms(access_log, 0)
        for label, path, headers in scenarios:
            for clients, count in ((1, max(200, args.requests // 5)), (10, args.requests)):
                cpu = worker_cpu_seconds(proc.pid)
                r = load(port, cookie, clients, count, path, *headers)
                cpu_ms = (worker_cpu_seconds(proc.pid) - cpu) / r["requests"] * 1000
                time.sleep(0.2)  # let gunicorn flush its access log
                server, offset = server_times_ms(access_log, offset)
                s50, s95 = statistics.median(server), server[int(len(server) * 0.95) - 1]
                flag = f"  errors: {r['error_count']} {r['errors']}" if r["error_count"] else ""
                print(
                    f"{label:40} {clients:>7} {r['rps']:>8.0f} {r['p50_ms']:>10.1f} {r['p95_ms']:>6.1f} "
                    f"{s50:>10.1f} {s95:>6.1f} {cpu_ms:>7.2f}{flag}"
                )
        rss = [worker_rss_mb(proc.pid)]
        for path in ("/marketplace?q=a&page=2", "/marketplace", "/marketplace?sort=name&page=3"):
            load(port, cookie, 10, args.sustained, path)
            rss.append(worker_rss_mb(proc.pid))
        steps = ", ".join(f"{mb:.0f}" for mb in rss)
        print(f"\nmemory (RSS of the gunicorn workers, MB) every {args.sustained} requests: {steps}")
        print("\ntarget (listing page 1, HTML, 10 clients): >= 225 req/s with p95 <= 100 ms")
        print(f"host load average (1 min) at the end: {os.getloadavg()[0]:.1f} (other processes share the cores)")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "build":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(build_data(Path(sys.argv[2]), int(sys.argv[3]))), flush=True)
        os._exit(0)  # skip interpreter teardown (DuckDB's bindings report spurious leaks there)
    else:
        main()
