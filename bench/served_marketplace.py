"""Served-marketplace benchmark: ZIP, 304 and git clone against a real gunicorn server.

Builds a synthetic curated marketplace of N plugins (50 is about 12 MB of text-like files, 300
about 70 MB), syncs it into a fresh data dir, grants and subscribes one analyst to every plugin,
starts ``gunicorn wsgi:app`` (1 worker, 8 threads) on a loopback port and prints:

* cold build of the served artifacts (git pack repository, ZIP) in-process;
* cold and warm ``GET /marketplace.zip``, and the same bytes from a bare static-file WSGI app on
  the same kind of server (gunicorn, sendfile) as the floor;
* ``304`` latency (``If-None-Match``, keep-alive connection);
* for each pack level (``--levels``, default 0, 1 and the setting's default): pack size, cold and
  warm ``git clone`` of ``/marketplace.git``, and C git on the same bare repository as the floor:
  ``git clone --no-local file://`` (no HTTP at all); for the default level also ``git
  http-backend`` over HTTP (same client path as ours: git-remote-http, a 401 round trip, the fetch);
* with several plugin counts (``50 300``), the total warm clone time per level: the default of
  ``AGNES_MARKETPLACE_PACK_LEVEL`` is the level with the smallest total.

Usage: ``python bench/served_marketplace.py [N ...] [--repeat R] [--levels 0,1,6]``. Targets
(issue 3): warm clone ≤ 1.5× the C git floor, warm ZIP ≤ 2× the static file, 304 ≤ 3 ms, cold
build of 50 plugins ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import bench_app, free_port, wait_http  # noqa: E402  (bench/ is on sys.path)
from _delay_proxy import DelayProxy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.com",
}


def generate(repo: Path, plugins: int, seed: int = 42) -> int:
    """A marketplace repo of ``plugins`` plugins of text-like files; returns total bytes."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz_", k=rng.randint(2, 12))) for _ in range(6000)]
    total = 0
    entries = []
    for p in range(plugins):
        name = f"plugin-{p:03d}"
        root = repo / "plugins" / name
        (root / ".claude-plugin").mkdir(parents=True)
        (root / ".claude-plugin" / "plugin.json").write_text(f'{{"name": "{name}", "version": "1.0.{p}"}}\n')
        skill = root / "skills" / f"skill-{p}"
        skill.mkdir(parents=True)
        (skill / "SKILL.md").write_text(f"---\nname: skill-{p}\ndescription: bench skill {p}\n---\nDo it.\n")
        for f in range(rng.randint(5, 10)):
            sub = rng.choice(["", "src", "src/lib", "docs"])
            size = rng.randint(5_000, 50_000) if rng.random() > 0.006 else rng.randint(300_000, 900_000)
            words = []
            length = 0
            while length < size:
                line = " ".join(rng.choices(vocab, k=rng.randint(2, 12))) + "\n"
                words.append(line)
                length += len(line)
            data = "".join(words)[:size].encode()
            path = root / sub / f"file{f:02d}.{rng.choice(['py', 'md', 'js', 'txt'])}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            total += len(data)
        entries.append(f'{{"name": "{name}", "source": "./plugins/{name}", "description": "bench {p}"}}')
    (repo / ".claude-plugin").mkdir(parents=True)
    (repo / ".claude-plugin" / "marketplace.json").write_text(
        '{"name": "bench", "owner": {"name": "bench"}, "plugins": [' + ",\n".join(entries) + "]}\n"
    )
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=GIT_ENV, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, env=GIT_ENV, check=True)
    subprocess.run(["git", "commit", "-qm", "bench"], cwd=repo, env=GIT_ENV, check=True)
    return total


def prepare(data_dir: Path, repo: Path) -> tuple[str, object]:
    """Register, sync, grant and subscribe; returns (PAT, served set)."""
    from agnes import people
    from agnes.access import AuthMethod, Principal
    from agnes.auth.pat import create_pat
    from agnes.jobs.marketplace import run_sync_marketplace
    from agnes.marketplace import curated, resolver, stack
    from agnes.models import marketplaces
    from agnes.state import state_store

    app = bench_app(data_dir)
    with app.app_context():
        curated.create_marketplace(
            {"slug": "bench", "name": "Bench", "url": str(repo)}, actor_id=None, actor_email="admin@example.com"
        )
        started = time.perf_counter()
        run_sync_marketplace("bench")
        print(f"sync of the marketplace (fetch, snapshot, parse): {time.perf_counter() - started:.2f} s")
        user = people.create_user("analyst@example.com")
        principal = Principal(user=user, group_ids=("everyone",), method=AuthMethod.PAT)
        with state_store().read() as con:
            plugins = marketplaces.list_plugins(con, "bench")
        for plugin in plugins:
            people.create_grant("everyone", "marketplace_plugin", plugin.resource_id, actor_id=None)
            stack.install(principal, "bench", plugin.name)
        _, token = create_pat(user.id, "bench", 1)
        served = resolver.resolve(user.id, ("everyone",))
    return token, (app, served)


def cold_build(app, served, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from agnes.marketplace import packager

    git_times, zip_times = [], []
    with app.app_context():
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                packager.write_git_repo(served, Path(tmp) / "r.git")
                git_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                packager.write_zip(served, Path(tmp) / "r.zip")
                zip_times.append(time.perf_counter() - started)
    return statistics.median(git_times), statistics.median(zip_times)


def static_app(environ, start_response):  # type: ignore[no-untyped-def]
    """The floor for the ZIP: the same bytes from the same server kind (gunicorn, sendfile), no logic."""
    handle = open(os.environ["BENCH_STATIC_FILE"], "rb")  # noqa: SIM115 (closed by the file wrapper)
    size = os.fstat(handle.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/zip"), ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](handle, 1 << 20)


def http_backend_app(environ, start_response):  # type: ignore[no-untyped-def]
    """C git's ``git http-backend`` behind a minimal WSGI-to-CGI bridge (the HTTP floor for clones)."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0) or -1)
    cgi_env = {
        "GIT_PROJECT_ROOT": os.environ["BENCH_GIT_ROOT"],
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH": os.environ["PATH"],
        "GIT_CONFIG_NOSYSTEM": "1",
        "REQUEST_METHOD": environ["REQUEST_METHOD"],
        "REMOTE_ADDR": "127.0.0.1",
        "PATH_INFO": environ.get("PATH_INFO", ""),
        "QUERY_STRING": environ.get("QUERY_STRING", ""),
        "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
        "CONTENT_LENGTH": str(len(body)),
        "GATEWAY_INTERFACE": "CGI/1.1",
    }
    if environ.get("HTTP_CONTENT_ENCODING"):
        cgi_env["HTTP_CONTENT_ENCODING"] = environ["HTTP_CONTENT_ENCODING"]
    out = subprocess.run(["git", "http-backend"], input=body, env=cgi_env, capture_output=True).stdout
    head, _, payload = out.partition(b"\r\n\r\n")
    status, headers = "200 OK", []
    for line in head.decode().split("\r\n"):
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = value.strip()
        elif key:
            headers.append((key, value.strip()))
    start_response(status, [*headers, ("Content-Length", str(len(payload)))])
    return [payload]


def timed_get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[float, int, bytes, dict]:
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    return time.perf_counter() - started, response.status, body, dict(response.getheaders())


def clone(url: str, folder: Path, *extra: str) -> float:
    """Seconds of one ``git clone`` into a new directory under ``folder``.

    Clones are left in place until the caller removes ``folder``: deleting one right before the
    next clone made that clone wait for the file system (discard of the freed blocks).
    """
    folder.mkdir(parents=True, exist_ok=True)
    dest = Path(tempfile.mkdtemp(dir=folder)) / "clone"
    started = time.perf_counter()
    subprocess.run(["git", "clone", "-q", *extra, url, str(dest)], env=GIT_ENV, check=True)
    return time.perf_counter() - started


def gunicorn(port: int, env: dict[str, str], app: str = "wsgi:app", chdir: Path | None = None):  # type: ignore[no-untyped-def]
    command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8"]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    if chdir is not None:
        command += ["--chdir", str(chdir)]
    return subprocess.Popen([*command, app], cwd=ROOT, env=env)


def measure_zip(port: int, token: str, work: Path, env: dict[str, str], repeat: int) -> str:
    """Print the ZIP and 304 figures; returns the served ETag."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    auth = {"Authorization": f"Bearer {token}"}
    cold_zip, status, body, headers = timed_get(conn, "/marketplace.zip", auth)
    assert status == 200, status
    warm_zip = statistics.median(timed_get(conn, "/marketplace.zip", auth)[0] for _ in range(repeat * 2))
    etag = headers["ETag"]
    not_modified = []
    for _ in range(300):
        elapsed, status, _, _ = timed_get(conn, "/marketplace.zip", {**auth, "If-None-Match": etag})
        assert status == 304, status
        not_modified.append(elapsed)
    zip_dir = work / "static"
    zip_dir.mkdir(exist_ok=True)
    (zip_dir / "same.zip").write_bytes(body)
    static_port = free_port()
    static = gunicorn(
        static_port,
        {**env, "BENCH_STATIC_FILE": str(zip_dir / "same.zip")},
        "served_marketplace:static_app",
        ROOT / "bench",
    )
    try:
        wait_http(static_port, "/same.zip")
        static_conn = http.client.HTTPConnection("127.0.0.1", static_port, timeout=60)
        static_zip = statistics.median(timed_get(static_conn, "/same.zip", {})[0] for _ in range(repeat * 2))
    finally:
        static.terminate()
        static.wait(10)
    p304 = sorted(not_modified)
    print(
        f"ZIP ({len(body) / 1e6:.1f} MB): cold {cold_zip * 1000:.0f} ms, warm {warm_zip * 1000:.1f} ms,"
        f" static file of the same bytes (gunicorn) {static_zip * 1000:.1f} ms"
        f" -> {warm_zip / static_zip:.2f}x (target <= 2x)"
    )
    print(
        f"304: median {statistics.median(p304) * 1000:.2f} ms, p95 {p304[int(len(p304) * 0.95)] * 1000:.2f} ms"
        " (target <= 3 ms)"
    )
    return etag.strip('"')


def measure_levels(
    levels: list[int],
    token: str,
    work: Path,
    env: dict[str, str],
    etag: str,
    repeat: int,
    default: int,
    link: dict[str, float] | None = None,
) -> dict[int, float]:
    """Serve the repository built at each level (one server and data dir each) and clone them in
    interleaved rounds, so load from other programs hits every level alike.

    Prints per level: pack size, cold and warm clone, C git ``file://`` on the same bare repository
    (and ``git http-backend`` for the default level, on loopback). ``link`` (DelayProxy arguments)
    puts a simulated distant link between git and our server. Returns ``{level: warm clone s}``.
    """
    servers, urls, bares, cold = {}, {}, {}, {}
    proxies = contextlib.ExitStack()
    try:
        for level in levels:
            data = work / f"data-level{level}"
            shutil.copytree(work / "data", data, symlinks=True)
            shutil.rmtree(data / "marketplaces" / "git-cache", ignore_errors=True)  # built at this level
            port = free_port()
            servers[level] = gunicorn(
                port, {**env, "AGNES_DATA_DIR": str(data), "AGNES_MARKETPLACE_PACK_LEVEL": str(level)}
            )
            wait_http(port)
            if link:
                port = proxies.enter_context(DelayProxy(port, **link)).port  # type: ignore[arg-type]
            urls[level] = f"http://x:{token}@127.0.0.1:{port}/marketplace.git"
            bares[level] = data / "marketplaces" / "git-cache" / f"{etag}.git"
            cold[level] = clone(urls[level], work / "clone")  # the first fetch builds the pack
        warm: dict[int, list[float]] = {level: [] for level in levels}
        floor: dict[int, list[float]] = {level: [] for level in levels}
        for _ in range(repeat):
            for level in levels:
                warm[level].append(clone(urls[level], work / "clone"))
                floor[level].append(clone(f"file://{bares[level]}", work / "clone", "--no-local"))
    finally:
        proxies.close()
        for server in servers.values():
            server.terminate()
            server.wait(10)
        shutil.rmtree(work / "clone", ignore_errors=True)
    result = {}
    for level in levels:
        pack = next((bares[level] / "objects" / "pack").glob("*.pack")).stat().st_size
        result[level] = statistics.median(warm[level])
        file_s = statistics.median(floor[level])
        print(
            f"  level {level}: pack {pack / 1e6:.1f} MB; git clone cold {cold[level]:.3f} s,"
            f" warm {result[level]:.3f} s; C git file:// {file_s:.3f} s -> {result[level] / file_s:.2f}x"
        )
    if default in levels and not link:
        backend_s = http_backend_clone(bares[default], env, work, repeat)
        print(
            f"  level {default} from C git http-backend: {backend_s:.3f} s"
            f" -> ours {result[default] / backend_s:.2f}x (target <= 1.5x)"
        )
    return result


def http_backend_clone(bare: Path, env: dict[str, str], work: Path, repeat: int) -> float:
    """Median clone time of ``bare`` served by C git's ``git http-backend`` (the HTTP floor)."""
    port = free_port()
    backend = gunicorn(
        port, {**env, "BENCH_GIT_ROOT": str(bare.parent)}, "served_marketplace:http_backend_app", ROOT / "bench"
    )
    try:
        wait_http(port, f"/{bare.name}/info/refs?service=git-upload-pack")
        return statistics.median(clone(f"http://127.0.0.1:{port}/{bare.name}", work / "clone") for _ in range(repeat))
    finally:
        shutil.rmtree(work / "clone", ignore_errors=True)
        backend.terminate()
        backend.wait(10)


def bench_marketplace(
    plugins: int, levels: list[int], default: int, repeat: int, link: dict[str, float] | None
) -> dict[int, float]:
    """Run every measurement for one marketplace size; returns {level: warm clone seconds}."""
    work = Path(tempfile.mkdtemp(prefix="agnes-bench-mp-"))
    server = None
    try:
        total = generate(work / "repo", plugins)
        print(f"marketplace: {plugins} plugins, {total / 1e6:.1f} MB of plugin files (load {load_text()})")
        os.environ["AGNES_MARKETPLACE_PACK_LEVEL"] = str(default)
        token, (app, served) = prepare(work / "data", work / "repo")
        build_git, build_zip = cold_build(app, served, 3)
        print(
            f"cold build (in-process, median of 3, level {default}): git pack repo {build_git * 1000:.0f} ms,"
            f" zip {build_zip * 1000:.0f} ms (target <= 0.5 s at 50 plugins)"
        )
        env = {
            **os.environ,
            "AGNES_DATA_DIR": str(work / "data"),
            "REDIS_URL": "",
            "AGNES_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        port = free_port()
        server = gunicorn(port, env)
        wait_http(port)
        etag = measure_zip(port, token, work, env, repeat)
        server.terminate()
        server.wait(10)
        server = None
        print(f"git clone of /marketplace.git by pack level (median of {repeat} interleaved rounds):")
        return measure_levels(levels, token, work, env, etag, repeat, default, link)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def load_text() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    from agnes.config import SETTINGS_BY_NAME

    default = int(SETTINGS_BY_NAME["AGNES_MARKETPLACE_PACK_LEVEL"].default)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("plugins", nargs="*", type=int, default=[50], help="marketplace sizes (default 50)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--levels", default=f"0,1,{default}", help="pack levels to compare (zlib 0-9)")
    parser.add_argument("--delay-ms", type=float, default=0, help="clone through a proxy adding this one-way latency")
    parser.add_argument("--rate-mbit", type=float, default=0, help="proxy: shared link rate, Mbit/s (0 = none)")
    parser.add_argument("--window-kb", type=int, default=4096, help="proxy: TCP window per stream, KiB")
    args = parser.parse_args()
    levels = sorted({int(level) for level in args.levels.split(",")})
    link = None
    if args.delay_ms or args.rate_mbit:
        link = {"delay": args.delay_ms / 1000, "rate": args.rate_mbit * 1e6 / 8, "window": args.window_kb << 10}
        print(
            f"clones go through a delay proxy: +{args.delay_ms:g} ms each way, window {args.window_kb} KiB"
            + (f", link {args.rate_mbit:g} Mbit/s" if args.rate_mbit else "")
        )
    totals = dict.fromkeys(levels, 0.0)
    for plugins in args.plugins:
        for level, seconds in bench_marketplace(plugins, levels, default, args.repeat, link).items():
            totals[level] += seconds
    if len(args.plugins) > 1:
        sizes = " + ".join(str(n) for n in args.plugins)
        ranked = ", ".join(f"level {level} {seconds:.3f} s" for level, seconds in sorted(totals.items()))
        best = min(totals, key=lambda level: totals[level])
        print(f"total warm clone time ({sizes} plugins): {ranked}; smallest: level {best} (default {default})")
    print(f"load average at the end: {load_text()} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
