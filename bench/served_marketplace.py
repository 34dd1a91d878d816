"""Served-marketplace benchmark: ZIP, 304 and git clone against a real gunicorn server.

Builds a synthetic curated marketplace of N plugins (default 50, about 12 MB of text-like files),
syncs it into a fresh data dir, grants and subscribes one analyst to every plugin, starts
``gunicorn wsgi:app`` (1 worker, 8 threads) on a loopback port and prints:

* cold build of the served artifacts (git pack repository, ZIP) in-process;
* cold and warm ``GET /marketplace.zip``, and the same bytes from a bare static-file WSGI app on
  the same kind of server (gunicorn, sendfile) as the floor;
* ``304`` latency (``If-None-Match``, keep-alive connection);
* cold and warm ``git clone`` of ``/marketplace.git``, and C git serving the same bare repository as
  the floor: ``git clone --no-local file://`` (no HTTP at all) and ``git http-backend`` over HTTP
  (same client path as ours: git-remote-http, a 401 round trip, then the fetch).

Usage: ``python bench/served_marketplace.py [N] [--repeat R]``. Targets (issue 3): warm clone
≤ 1.5× the C git floor, warm ZIP ≤ 2× the static file, 304 ≤ 3 ms, cold build of 50 plugins ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
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


def clone(url: str, dest: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run(["git", "clone", "-q", *extra, url, str(dest)], env=GIT_ENV, check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(dest)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("plugins", nargs="?", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pack-level", type=int, default=1, help="AGNES_MARKETPLACE_PACK_LEVEL (zlib 0-9)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agnes-bench-mp-"))
    server = static = None
    try:
        total = generate(work / "repo", args.plugins)
        print(
            f"marketplace: {args.plugins} plugins, {total / 1e6:.1f} MB of plugin files, pack level {args.pack_level}"
        )
        os.environ["AGNES_MARKETPLACE_PACK_LEVEL"] = str(args.pack_level)
        token, (app, served) = prepare(work / "data", work / "repo")
        build_git, build_zip = cold_build(app, served, 3)
        print(
            f"cold build (in-process, median of 3): git pack repo {build_git * 1000:.0f} ms,"
            f" zip {build_zip * 1000:.0f} ms"
        )

        port = free_port()
        env = {
            **os.environ,
            "AGNES_DATA_DIR": str(work / "data"),
            "REDIS_URL": "",
            "AGNES_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                "8",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
        )
        wait_http(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        auth = {"Authorization": f"Bearer {token}"}
        cold_zip, status, body, headers = timed_get(conn, "/marketplace.zip", auth)
        assert status == 200, status
        warm_zip = statistics.median(timed_get(conn, "/marketplace.zip", auth)[0] for _ in range(args.repeat * 2))
        etag = headers["ETag"]
        not_modified = []
        for _ in range(300):
            elapsed, status, _, _ = timed_get(conn, "/marketplace.zip", {**auth, "If-None-Match": etag})
            assert status == 304, status
            not_modified.append(elapsed)
        zip_dir = work / "static"
        zip_dir.mkdir()
        (zip_dir / "same.zip").write_bytes(body)
        static_port = free_port()
        static = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                "8",
                "--bind",
                f"127.0.0.1:{static_port}",
                "--log-level",
                "warning",
                "--chdir",
                str(ROOT / "bench"),
                "served_marketplace:static_app",
            ],
            env={**env, "BENCH_STATIC_FILE": str(zip_dir / "same.zip")},
        )
        wait_http(static_port, "/same.zip")
        static_conn = http.client.HTTPConnection("127.0.0.1", static_port, timeout=60)
        static_zip = statistics.median(timed_get(static_conn, "/same.zip", {})[0] for _ in range(args.repeat * 2))

        url = f"http://x:{token}@127.0.0.1:{port}/marketplace.git"
        cold_clone = clone(url, work / "clone")  # the git repository is built by this first fetch
        warm_clone = statistics.median(clone(url, work / "clone") for _ in range(args.repeat))
        bare = work / "data" / "marketplaces" / "git-cache" / f"{etag.strip(chr(34))}.git"
        floor = statistics.median(clone(f"file://{bare}", work / "clone", "--no-local") for _ in range(args.repeat))
        backend_port = free_port()
        backend = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                "8",
                "--bind",
                f"127.0.0.1:{backend_port}",
                "--log-level",
                "warning",
                "--chdir",
                str(ROOT / "bench"),
                "served_marketplace:http_backend_app",
            ],
            env={**env, "BENCH_GIT_ROOT": str(bare.parent)},
        )
        wait_http(backend_port, f"/{bare.name}/info/refs?service=git-upload-pack")
        http_floor = statistics.median(
            clone(f"http://127.0.0.1:{backend_port}/{bare.name}", work / "clone") for _ in range(args.repeat)
        )
        backend.terminate()
        backend.wait(10)
        pack = next((bare / "objects" / "pack").glob("*.pack")).stat().st_size

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
        print(
            f"git clone ({pack / 1e6:.1f} MB pack): cold {cold_clone:.3f} s, warm {warm_clone:.3f} s;"
            f" C git floor, same bare repo: file:// {floor:.3f} s -> {warm_clone / floor:.2f}x,"
            f" git http-backend {http_floor:.3f} s -> {warm_clone / http_floor:.2f}x (target <= 1.5x)"
        )
        print(f"cold build {args.plugins} plugins: {build_git:.3f} s (target <= 0.5 s at 50)")
    finally:
        for proc in (server, static):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
