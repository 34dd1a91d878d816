"""``agnes pull`` and integrity: against a stand-in server, digests (SHA-256, MD5 from older servers),
a flipped byte, ``--jobs``, and views changed only when needed (DuckDB not even imported otherwise);
against the real server, files published before SHA-256 was recorded."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import cli_env, run_cli


def parquet_bytes(tmp_path: Path, sql: str) -> bytes:
    """The parquet file DuckDB writes for ``sql``."""
    path = tmp_path / "made.parquet"
    duckdb.sql(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    data = path.read_bytes()
    path.unlink()
    return data


class StandIn:
    """A loopback HTTP server speaking the two endpoints ``agnes pull`` uses.

    ``new`` servers list ``sha256`` and ``schema`` and send ``X-Content-SHA256``; older ones only
    the MD5 (``hash``, ``X-Content-MD5``). ``flip`` names tables served with one byte changed.
    ``gather`` makes each download wait (up to ``gather_seconds``) until that many are in flight,
    so the highest concurrency seen is the client's parallelism.
    """

    def __init__(self, *, new: bool) -> None:
        self.new = new
        self.tables: dict[str, tuple[bytes, str]] = {}  # id -> (bytes, schema fingerprint)
        self.flip: set[str] = set()
        self.gather = 0
        self.gather_seconds = 0.3
        self.active = self.most_active = 0
        self.downloads: list[str] = []
        self.cond = threading.Condition()

    def manifest(self) -> dict[str, Any]:
        listed = {}
        for table_id, (data, schema) in self.tables.items():
            entry = {
                "name": table_id,
                "hash": hashlib.md5(data).hexdigest(),
                "size_bytes": len(data),
                "rows": 0,
                "updated": "2026-01-01T00:00:00Z",
                "query_mode": "local",
                "source_type": "parquet",
                "status": "ok",
            }
            if self.new:
                entry.update(sha256=hashlib.sha256(data).hexdigest(), schema=schema)
            listed[table_id] = entry
        return {"tables": listed, "server_time": "2026-01-01T00:00:00Z"}

    def download(self, table_id: str) -> tuple[bytes, dict[str, str]]:
        data, _ = self.tables[table_id]
        headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"', "X-Content-MD5": hashlib.md5(data).hexdigest()}
        if self.new:
            headers["X-Content-SHA256"] = hashlib.sha256(data).hexdigest()
        if table_id in self.flip:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
        with self.cond:
            self.downloads.append(table_id)
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.active >= self.gather, timeout=self.gather_seconds)
        return data, headers

    def done(self) -> None:
        with self.cond:
            self.active -= 1


@pytest.fixture
def stand_in() -> Iterator[tuple[StandIn, str]]:
    """``(server state, base URL)``; pass ``new=`` by setting ``server.new``."""
    server = StandIn(new=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

        def log_message(self, *args: Any) -> None:
            pass

        def send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/api/sync/manifest":
                self.send(200, json.dumps(server.manifest()).encode(), {"Content-Type": "application/json"})
                return
            table_id = self.path.removeprefix("/api/data/").removesuffix("/download")
            if table_id not in server.tables:
                self.send(404, b'{"error": "table_not_found", "message": "No such table."}', {})
                return
            body, headers = server.download(table_id)
            try:
                self.send(200, body, headers)
            finally:
                server.done()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def pull(base: str, workspace: Path, home: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Run ``agnes pull --json`` in a fresh interpreter; returns (process, whether DuckDB was imported)."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('\\nDUCKDB-IMPORTED=%s\\n' % ('duckdb' in sys.modules)))\n"
        "from cli.main import main\n"
        f"sys.argv = ['agnes', 'pull', '--json', '--workspace', {str(workspace)!r}, *{list(extra)!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=cli_env(base, "token", home), capture_output=True, text=True, timeout=120
    )
    marker = done.stderr.strip().splitlines()[-1]
    assert marker.startswith("DUCKDB-IMPORTED="), done.stderr
    return done, marker.endswith("True")


def rows(workspace: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(workspace / "data" / "analytics.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("new", [True, False], ids=["sha256-server", "md5-only-server"])
def test_a_flipped_byte_is_caught_the_file_removed_and_the_exit_code_is_1(stand_in, tmp_path, new):
    server, base = stand_in
    server.new = new
    server.tables = {
        "good": (parquet_bytes(tmp_path, "SELECT 1 AS a"), "s1"),
        "bad": (parquet_bytes(tmp_path, "SELECT range AS a FROM range(1000)"), "s1"),
    }
    server.flip = {"bad"}
    ws = tmp_path / "ws"
    done, _ = pull(base, ws, tmp_path / "home")
    assert done.returncode == 1
    summary = json.loads(done.stdout)
    name = "SHA-256" if new else "MD5"
    assert summary["errors"]["bad"].startswith(f"{name} mismatch") and "discarded" in summary["errors"]["bad"]
    assert summary["downloaded"] == ["good"]
    tables = ws / "data" / "tables"
    assert sorted(p.name for p in tables.iterdir()) == ["good.parquet"]  # no bad.parquet, no .part left
    assert "bad" not in json.loads((ws / "data" / ".pull-state.json").read_text())["tables"]
    plain = run_cli(["pull", "--workspace", str(ws)], cli_env(base, "token", tmp_path / "home"))
    assert plain.returncode == 1 and f"error: bad: {name} mismatch" in plain.stderr
    server.flip = set()
    healed, _ = pull(base, ws, tmp_path / "home")
    assert healed.returncode == 0 and json.loads(healed.stdout)["downloaded"] == ["bad"]
    assert (tables / "bad.parquet").read_bytes() == server.tables["bad"][0]


def test_an_older_server_without_sha256_still_works(stand_in, tmp_path):
    server, base = stand_in
    server.new = False
    server.tables = {"t": (parquet_bytes(tmp_path, "SELECT 42 AS answer"), "")}
    ws = tmp_path / "ws"
    done, _ = pull(base, ws, tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["downloaded"] == ["t"]
    state = json.loads((ws / "data" / ".pull-state.json").read_text())
    assert state["tables"]["t"]["hash"] == hashlib.md5(server.tables["t"][0]).hexdigest()
    assert rows(ws, "SELECT answer FROM t") == [(42,)]
    again, imported = pull(base, ws, tmp_path / "home")
    assert json.loads(again.stdout)["downloaded"] == [] and not imported
    # New data from an older server: no schema fingerprint, so the view is recreated to be safe.
    server.tables = {"t": (parquet_bytes(tmp_path, "SELECT 43 AS answer, 'x' AS extra"), "")}
    changed, imported = pull(base, ws, tmp_path / "home")
    assert json.loads(changed.stdout)["downloaded"] == ["t"] and imported
    assert rows(ws, "SELECT answer, extra FROM t") == [(43, "x")]


def test_views_change_only_when_a_table_is_added_removed_or_changes_schema(stand_in, tmp_path):
    server, base = stand_in
    home = tmp_path / "home"
    ws = tmp_path / "ws"
    server.tables = {
        "a": (parquet_bytes(tmp_path, "SELECT 1 AS x"), "schema-a1"),
        "b": (parquet_bytes(tmp_path, "SELECT 'b' AS y"), "schema-b1"),
    }
    first, imported = pull(base, ws, home)
    assert first.returncode == 0 and imported  # the views are created: the check can see DuckDB
    assert rows(ws, "SELECT x FROM a") == [(1,)]

    quiet, imported = pull(base, ws, home)
    assert json.loads(quiet.stdout)["downloaded"] == [] and not imported

    # New rows, same columns: the file is replaced, the view stays, DuckDB is never loaded.
    server.tables["a"] = (parquet_bytes(tmp_path, "SELECT 2 AS x UNION ALL SELECT 3"), "schema-a1")
    data_only, imported = pull(base, ws, home)
    assert json.loads(data_only.stdout)["downloaded"] == ["a"] and not imported
    assert rows(ws, "SELECT sum(x) FROM a") == [(5,)]

    # A new column: that view is replaced; b's view is left as it was.
    server.tables["a"] = (parquet_bytes(tmp_path, "SELECT 4 AS x, 'new' AS z"), "schema-a2")
    reshaped, imported = pull(base, ws, home)
    assert json.loads(reshaped.stdout)["downloaded"] == ["a"] and imported
    assert rows(ws, "SELECT column_name FROM information_schema.columns WHERE table_name = 'a'") == [("x",), ("z",)]

    # A table added and one removed: views follow.
    server.tables["c"] = (parquet_bytes(tmp_path, "SELECT 7 AS w"), "schema-c1")
    del server.tables["b"]
    moved, imported = pull(base, ws, home)
    summary = json.loads(moved.stdout)
    assert summary["downloaded"] == ["c"] and summary["removed"] == ["b"] and imported
    assert rows(ws, "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1") == [("a",), ("c",)]
    assert rows(ws, "SELECT w FROM c") == [(7,)]
    state = json.loads((ws / "data" / ".pull-state.json").read_text())
    assert state["views"] == {"a": "schema-a2", "c": "schema-c1"}


@pytest.mark.parametrize(("args", "expected"), [(["--jobs", "1"], 1), (["--jobs", "3"], 3), ([], 4)])
def test_jobs_sets_how_many_downloads_run_at_once(stand_in, tmp_path, args, expected):
    server, base = stand_in
    server.tables = {f"t{i}": (parquet_bytes(tmp_path, f"SELECT {i} AS n"), "s") for i in range(5)}
    server.gather = expected + 1  # every download waits a moment for one more than expected
    done = run_cli(["pull", "--quiet", "--workspace", str(tmp_path / "ws"), *args], cli_env(base, "t", tmp_path / "h"))
    assert done.returncode == 0, done.stderr
    assert server.most_active == expected and sorted(server.downloads) == [f"t{i}" for i in range(5)]


def test_bad_parallelism_is_refused_clearly(stand_in, tmp_path):
    _, base = stand_in
    env = cli_env(base, "t", tmp_path / "h")
    zero = run_cli(["pull", "--jobs", "0", "--workspace", str(tmp_path / "ws")], env)
    assert zero.returncode == 2 and "--jobs" in zero.stderr
    bad = run_cli(["pull", "--workspace", str(tmp_path / "ws")], {**env, "AGNES_PULL_PARALLELISM": "many"})
    assert bad.returncode == 1 and "AGNES_PULL_PARALLELISM must be a whole number" in bad.stderr
    assert not (tmp_path / "ws" / "data" / "tables").exists()


def test_files_published_before_sha256_was_recorded_are_verified_with_md5(app, live_server, auth, folder, tmp_path):
    """Rows synced before migration 0045 have no SHA-256: no header, and the client checks the MD5."""
    from agnes import markers, people
    from agnes.data.sync import sync_table
    from agnes.models import tables
    from agnes.state import state_store
    from cli.client import Client
    from cli.pull import run_pull
    from cli.workspace import Workspace
    from tests.data.conftest import register

    spec = {"location": str(folder / "stocks.csv"), "date_format": "%b %d %Y"}
    register({"name": "stocks", "source_type": "csv", "source_spec": spec})
    sync_table("stocks")
    people.create_grant("everyone", "table", "stocks", actor_id=None)
    with state_store().write() as con:
        con.execute("UPDATE sync_state SET sha256 = NULL WHERE table_id = 'stocks'")
        assert tables.get_sync_state(con, "stocks").sha256 is None
    markers.TABLES.bump()
    client = Client(live_server.url, auth.token("analyst@example.com"))
    entry = client.get("/api/sync/manifest")["tables"]["stocks"]
    assert entry["sha256"] == "" and len(entry["hash"]) == 32
    raw = client.open("GET", "/api/data/stocks/download")
    raw.read()
    assert raw.getheader("X-Content-SHA256") is None and raw.getheader("X-Content-MD5") == entry["hash"]
    ws = Workspace(tmp_path / "ws")
    ws.tables.mkdir(parents=True)
    part = ws.parquet("stocks").with_name(f".stocks.{entry['hash'][:16]}.part")
    part.write_bytes(b"PAR1 but not the right bytes")  # resumed from: the digest covers these bytes too
    broken = run_pull(client, ws)
    assert broken.errors["stocks"].startswith("MD5 mismatch") and not part.exists()
    assert not ws.parquet("stocks").exists()
    healed = run_pull(client, ws)
    assert healed.errors == {} and list(healed.downloaded) == ["stocks"]
