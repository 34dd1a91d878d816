"""``agnes pull`` edge cases against a live server: resume, MD5 mismatch, grants, dry run, encoding, init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.client import Client
from cli.pull import make_plan, run_pull
from cli.workspace import Workspace
from tests.conftest import cli_env, run_cli
from tests.data.conftest import penguins_fields, register


@pytest.fixture
def served(app, live_server, auth, tmp_path, folder):  # type: ignore[no-untyped-def]
    """penguins and stocks synced and granted to Everyone; returns (client for an analyst, env)."""
    from agnes import people
    from agnes.data.sync import sync_table

    register(penguins_fields(folder, description="Tučňáci 🐧 z Palmerova souostroví"))
    register(
        {
            "name": "stocks",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "stocks.csv"), "date_format": "%b %d %Y"},
        }
    )
    for table_id in ("penguins", "stocks"):
        sync_table(table_id)
        people.create_grant("everyone", "table", table_id, actor_id=None)
    token = auth.token("analyst@example.com")
    return Client(live_server.url, token), cli_env(live_server.url, token, tmp_path / "home")


def test_interrupted_download_is_resumed(served, tmp_path):
    client, _ = served
    ws = Workspace(tmp_path / "ws")
    full = run_pull(client, ws)
    assert sorted(full.downloaded) == ["penguins", "stocks"]
    original = ws.parquet("penguins").read_bytes()
    # Simulate a pull that died half-way through penguins: a .part with the first half, no final file.
    ws.parquet("penguins").unlink()
    digest = ws.load_state()["penguins"]["hash"]
    part = ws.parquet("penguins").with_name(f".penguins.{digest[:16]}.part")
    part.write_bytes(original[: len(original) // 2])
    older = ws.parquet("penguins").with_name(".penguins.0123456789abcdef.part")
    older.write_bytes(b"bytes of a previous version")
    resumed = run_pull(client, ws)
    assert resumed.resumed == ["penguins"] and resumed.errors == {}
    assert resumed.downloaded["penguins"] == len(original) - len(original) // 2
    assert ws.parquet("penguins").read_bytes() == original and not part.exists() and not older.exists()


def test_a_corrupt_partial_file_fails_sha256_and_is_discarded(served, tmp_path):
    client, _ = served
    ws = Workspace(tmp_path / "ws")
    run_pull(client, ws)
    size = ws.parquet("stocks").stat().st_size
    ws.parquet("stocks").unlink()
    part = ws.parquet("stocks").with_name(f".stocks.{ws.load_state()['stocks']['hash'][:16]}.part")
    part.write_bytes(b"X" * (size // 2))
    broken = run_pull(client, ws)
    assert "SHA-256 mismatch" in broken.errors["stocks"] and not part.exists()
    assert not ws.parquet("stocks").exists()
    again = run_pull(client, ws)
    assert again.errors == {} and sorted(again.downloaded) == ["stocks"]


def test_no_grant_means_403_and_nothing_listed(app, live_server, auth, tmp_path, folder):
    from agnes.data.sync import sync_table

    register(penguins_fields(folder))
    sync_table("penguins")
    client = Client(live_server.url, auth.token("nobody@example.com"))
    assert client.get("/api/sync/manifest")["tables"] == {}
    raw = client.open("GET", "/api/data/penguins/download")
    assert raw.status == 403 and json.loads(raw.read())["error"] == "access_denied"
    outcome = run_pull(client, Workspace(tmp_path / "ws"))
    assert outcome.downloaded == {} and outcome.errors == {}


def test_dry_run_table_filter_and_json(served, tmp_path):
    _, env = served
    ws = tmp_path / "ws"
    dry = run_cli(["pull", "--dry-run", "--json", "--workspace", str(ws)], env)
    assert dry.returncode == 0 and json.loads(dry.stdout)["would_download"] == ["penguins", "stocks"]
    assert not (ws / "data" / "tables").exists()
    only = run_cli(["pull", "--json", "--table", "stocks", "--workspace", str(ws)], env)
    assert json.loads(only.stdout)["downloaded"] == ["stocks"]
    env_ws = {**env, "AGNES_WORKSPACE": str(ws)}
    rest = run_cli(["pull", "--json"], env_ws)
    assert json.loads(rest.stdout)["downloaded"] == ["penguins"]


def run_in_console(args: list[str], env: dict[str, str], encoding: str):  # type: ignore[no-untyped-def]
    """The CLI on a console with a legacy code page: output decoded the way that console would."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**env, "PYTHONIOENCODING": encoding},
        capture_output=True,
        timeout=120,
    )
    # click itself writes UTF-8 when the stream claims plain ASCII, hence errors="replace" here.
    return done.returncode, done.stdout.decode(encoding, "replace"), done.stderr.decode(encoding, "replace")


@pytest.mark.parametrize("encoding", ["cp1250", "ascii"])
def test_consoles_that_cannot_encode_unicode_never_crash(served, tmp_path, encoding):
    _, env = served
    env = {**env, "AGNES_WORKSPACE": str(tmp_path / "ws")}
    code, out, err = run_in_console(["pull"], env, encoding)
    assert code == 0, err
    assert "[2/2]" in out
    code, out, err = run_in_console(["catalog"], env, encoding)
    assert code == 0, err
    assert "penguins" in out and "Tu" in out
    if encoding == "cp1250":
        assert "Tučňáci ? z Palmerova" in out  # Czech letters kept, the emoji replaced
    code, out, err = run_in_console(["describe", "penguins", "-n", "2"], env, encoding)
    assert code == 0 and "344 rows" in out


def test_query_schema_and_wide_tables(served, tmp_path):
    _, env = served
    env = {**env, "AGNES_WORKSPACE": str(tmp_path / "ws"), "COLUMNS": "60"}
    assert run_cli(["pull", "--quiet"], env).returncode == 0
    schema = json.loads(run_cli(["schema", "penguins", "--json"], env).stdout)
    assert {"name": "bill_length_mm", "type": "DOUBLE"} in schema
    wide = run_cli(["query", "SELECT * FROM penguins LIMIT 2"], env)
    assert wide.returncode == 0 and wide.stdout.count("-[ row ") == 2
    assert "species           | Adelie" in wide.stdout
    missing = run_cli(["query", "SELECT * FROM nope"], env)
    assert missing.returncode == 1 and "agnes catalog" in missing.stderr


def test_init_writes_hooks_idempotently_and_keeps_settings(tmp_path):
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(
        json.dumps(
            {"model": "opus", "hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": "echo hi"}]}]}}
        )
    )
    env = cli_env("http://127.0.0.1:9", "unused", tmp_path / "home")
    for _ in range(2):
        done = run_cli(["init", "--workspace", str(tmp_path)], env)
        assert done.returncode == 0, done.stderr
    data = json.loads(settings.read_text())
    assert data["model"] == "opus"
    commands = {
        event: [h["command"] for entry in entries for h in entry["hooks"]] for event, entries in data["hooks"].items()
    }
    assert commands == {
        "SessionStart": ["echo hi", "agnes pull --quiet || true"],
        "SessionEnd": ["agnes push --quiet || true"],
    }
    settings.write_text("{not json")
    broken = run_cli(["init", "--workspace", str(tmp_path)], env)
    assert broken.returncode == 1 and settings.read_text() == "{not json"


def test_admin_cli_registers_syncs_and_lists(app, live_server, auth, tmp_path, folder):
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path / "home")
    created = run_cli(
        [
            "admin",
            "register-table",
            "Weather",
            "--source-type",
            "csv",
            "-o",
            f"location={folder / 'seattle-weather.csv'}",
            "-o",
            "date_format=%Y/%m/%d",
            "--schedule",
            "every 30m",
        ],
        env,
    )
    assert created.returncode == 0, created.stderr
    synced = run_cli(["admin", "sync-tables", "weather", "--wait", "--json"], env)
    [job] = json.loads(synced.stdout)["jobs"]
    assert job["id"] == "sync-table:weather" and job["state"] == "finished" and job["result"]["rows"] == 1461
    listed = json.loads(run_cli(["admin", "list-tables", "--json"], env).stdout)
    assert listed[0]["sync"]["rows"] == 1461 and listed[0]["schedule"] == "every 30m"
    updated = run_cli(["admin", "update-table", "weather", "-o", "null_strings=NA"], env)
    assert updated.returncode == 0, updated.stderr
    (folder / "seattle-weather.csv").write_text("date,x\n2012/01/01,1,2,3\n2012/01/02,4\n")
    failed = run_cli(["admin", "sync-tables", "weather", "--wait"], env)
    assert failed.returncode == 1 and "weather: failed" in failed.stdout
    assert failed.stderr.startswith("error: weather: ") and "line 2 has 4 fields" in failed.stderr, failed.stderr
    metrics = tmp_path / "metrics" / "weather"
    metrics.mkdir(parents=True)
    (metrics / "rainy_days.yml").write_text("name: rainy_days\ntable: weather\nsql: SELECT count(*) FROM weather\n")
    imported = run_cli(["admin", "metrics", "import", str(tmp_path / "metrics")], env)
    assert "weather/rainy_days" in imported.stdout
    listed_metrics = run_cli(["catalog", "--metrics"], env)
    assert "weather/rainy_days" in listed_metrics.stdout
    shown = json.loads(run_cli(["catalog", "--show", "weather/rainy_days", "--json"], env).stdout)
    assert shown["table"] == "weather"
    gone = run_cli(["admin", "unregister-table", "weather", "-y"], env)
    assert gone.returncode == 0 and not Path(app.config["AGNES_DATA_DIR"], "extracts", "csv").exists()


def test_terminal_gets_a_progress_bar(served, tmp_path):
    """On a TTY, pull draws rich's bar (sizes, speed); tested through a pseudo-terminal."""
    import os
    import pty
    import subprocess
    import sys

    _, env = served
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "pull", "--workspace", str(tmp_path / "ws")],
        env={**env, "COLUMNS": "100", "TERM": "xterm"},
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(60) == 0
    text = output.decode("utf-8", "replace")
    assert "2 table(s)" in text and "KiB" in text and "━" in text
    assert "agnes pull: 2 downloaded" in text


def test_a_dropped_connection_keeps_the_part_and_the_next_pull_resumes(served, tmp_path):
    import http.client

    client, _ = served
    ws = Workspace(tmp_path / "ws")

    class DroppingResponse:
        """Delivers the first 3000 bytes of the body, then the connection 'drops'."""

        def __init__(self, raw) -> None:  # type: ignore[no-untyped-def]
            self.raw, self.sent = raw, 0
            self.status = raw.status

        def getheader(self, name, default=None):  # type: ignore[no-untyped-def]
            return self.raw.getheader(name, default)

        def read(self, *args):  # type: ignore[no-untyped-def]
            return self.raw.read(*args)

        def close(self) -> None:
            self.raw.close()

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            if self.sent >= 3000:
                raise http.client.IncompleteRead(b"", 1)
            count = self.raw.readinto(memoryview(buffer)[: 3000 - self.sent])
            self.sent += count
            return count

    class FlakyClient(Client):
        def open(self, method, path, **kwargs):  # type: ignore[no-untyped-def]
            raw = super().open(method, path, **kwargs)
            return DroppingResponse(raw) if path.endswith("/penguins/download") else raw

    flaky = FlakyClient(client.server, client.token)
    first = run_pull(flaky, ws)
    assert "interrupted after 3000 bytes" in first.errors["penguins"] and "stocks" in first.downloaded
    [part] = ws.tables.glob(".penguins.*.part")
    assert part.stat().st_size == 3000 and not ws.parquet("penguins").exists()
    second = run_pull(client, ws)
    assert (
        second.resumed == ["penguins"]
        and second.errors == {}
        and second.downloaded == {"penguins": ws.parquet("penguins").stat().st_size - 3000}
    )


def test_plain_progress_reports_long_transfers(capsys):
    from cli.commands.data import PlainReporter

    reporter = PlainReporter(every=0)
    reporter.start([("big", 10 * 1024 * 1024), ("small", 1024)])
    reporter.advance("big", 4 * 1024 * 1024)
    reporter.advance("big", 6 * 1024 * 1024)
    reporter.done("big", True)
    reporter.advance("small", 1024)
    reporter.done("small", True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "agnes pull: downloading 2 table(s), 10.0 MiB"
    assert lines[1].startswith("  4.0 MiB of 10.0 MiB (39%),") and "left" in lines[1]
    assert lines[-2:] == ["[1/2] big 10.0 MiB ok", "[2/2] small 1.0 KiB ok"]
    assert all(line.isascii() for line in lines)


def test_skip_materialized_leaves_query_tables_out(served, tmp_path):
    from agnes import people
    from agnes.data.sync import sync_table

    client, _ = served
    register(
        {
            "name": "by island",
            "source_type": "sql",
            "source_spec": {"query": "SELECT island, count(*) AS n FROM penguins GROUP BY 1"},
        }
    )
    sync_table("by_island")
    people.create_grant("everyone", "table", "by_island", actor_id=None)
    ws = Workspace(tmp_path / "ws")
    first = run_pull(client, ws, skip_materialized=True)
    assert first.plan.skipped == ["by_island"] and "by_island" not in first.downloaded
    second = run_pull(client, ws)
    assert list(second.downloaded) == ["by_island"]
    third = run_pull(client, ws, skip_materialized=True)
    assert third.plan.remove == [] and ws.parquet("by_island").exists()


def test_views_that_cannot_be_replaced_warn_but_keep_the_files(served, tmp_path, monkeypatch):
    client, _ = served
    ws = Workspace(tmp_path / "ws")

    def locked(self):  # type: ignore[no-untyped-def]
        raise PermissionError("[WinError 32] The process cannot access the file")

    monkeypatch.setattr(Workspace, "rebuild_views", locked)
    outcome = run_pull(client, ws)
    assert outcome.errors == {} and sorted(outcome.downloaded) == ["penguins", "stocks"]
    assert "local views not rebuilt" in outcome.warnings[0] and ws.parquet("stocks").exists()
    monkeypatch.undo()
    again = run_pull(client, ws)  # nothing to download, but the views are rebuilt now
    assert again.downloaded == {} and again.views == ["penguins", "stocks"] and again.warnings == []


# -- agnes pull: two pulls in one workspace (two Claude Code sessions starting at once) -------------


def test_a_second_pull_in_the_same_workspace_refuses_instead_of_sharing_part_files(tmp_path):
    import fcntl

    workspace = tmp_path / "ws"
    (workspace / "data").mkdir(parents=True)
    env = cli_env("http://127.0.0.1:9", "agnes_pat_x", tmp_path)  # nothing listens: the lock comes first
    with open(workspace / "data" / ".pull.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        busy = run_cli(["pull", "--workspace", str(workspace)], env)
    assert busy.returncode == 1 and "another agnes pull is running" in busy.stderr, busy.stderr
    free = run_cli(["pull", "--workspace", str(workspace)], env)
    assert free.returncode == 1 and "cannot reach" in free.stderr  # the lock was released with the holder


# -- agnes init: hooks of another shape in .claude/settings.json are explained, the file untouched ------


def test_agnes_init_with_malformed_hooks_explains_instead_of_crashing(tmp_path):
    env = cli_env("http://127.0.0.1:9", "x", tmp_path)
    for hooks in ([], {"SessionStart": {"command": "x"}}):
        workspace = tmp_path / f"ws{len(hooks)}"
        settings = workspace / ".claude" / "settings.json"
        settings.parent.mkdir(parents=True)
        settings.write_text(json.dumps({"hooks": hooks}))
        result = run_cli(["init", "--workspace", str(workspace)], env)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert json.loads(settings.read_text()) == {"hooks": hooks}  # untouched


# -- agnes pull: keys of a hand-edited .pull-state.json that are not table ids are ignored, not a crash --


def test_pull_state_with_foreign_keys_is_ignored_not_a_crash(tmp_path):
    workspace = Workspace(tmp_path)
    workspace.data.mkdir(parents=True)
    workspace.state_path.write_text(
        json.dumps({"tables": {"../../etc/passwd": {}, "Bad Name": {}, "ok": "x", "penguins": {"hash": "a"}}})
    )
    state = workspace.load_state()
    assert state == {"penguins": {"hash": "a"}}
    assert make_plan({"tables": {}}, workspace, state, None).remove == ["penguins"]
