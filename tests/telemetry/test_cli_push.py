"""``agnes push`` and ``agnes mark-private`` as subprocesses against a live server (the hook's
stdin, subagent files, unchanged files, retries and drops, private sessions)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agnes.models import telemetry
from agnes.state import state_store
from tests.conftest import ROOT, cli_env

SID = "8463c716-a2ea-4c14-9efa-87158ebd9f20"


def agnes(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
    )


def hook_payload(session_id: str, transcript: Path, cwd: Path) -> str:
    return json.dumps(
        {"session_id": session_id, "transcript_path": str(transcript), "cwd": str(cwd), "hook_event_name": "SessionEnd"}
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def _files(user_id: str) -> list[str]:
    with state_store().read() as con:
        return [f.path.split("/", 1)[1] for f in telemetry.list_session_files(con, user_id)]


def test_hook_push_sends_transcript_and_subagents_once(
    live_server, auth, sessions_copy: Path, workspace: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("analyst@example.com")
    user_id = auth.user("analyst@example.com")
    env = cli_env(live_server.url, token, tmp_path / "home")
    transcript = sessions_copy / f"{SID}.jsonl"
    first = agnes(["push", "--quiet"], env, workspace, hook_payload(SID, transcript, workspace))
    assert first.returncode == 0, first.stderr
    assert _files(user_id) == [f"{SID}.jsonl", f"{SID}/subagents/agent-a7be2f0.jsonl"]
    status = agnes(["push", "--status", "--json"], env, workspace)
    assert json.loads(status.stdout)["uploaded"] == [
        str(transcript),
        str(transcript.with_suffix("") / "subagents" / "agent-a7be2f0.jsonl"),
    ]
    # The same session again: nothing is sent.
    again = agnes(["push", "--json"], env, workspace, hook_payload(SID, transcript, workspace))
    result = json.loads(again.stdout)
    assert result["uploaded"] == [] and len(result["unchanged"]) == 2
    # The session grew: only the main file goes again.
    with open(transcript, "ab") as fh:
        fh.write(b'{"type": "system", "timestamp": "2026-02-11T00:00:00Z"}\n')
    grown = json.loads(agnes(["push", "--json"], env, workspace, hook_payload(SID, transcript, workspace)).stdout)
    assert grown["uploaded"] == [str(transcript)]
    assert not (workspace / ".claude" / "agnes-sessions.txt").exists()


class _Refusing(BaseHTTPRequestHandler):
    status = 503

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": "x", "message": f"refused with {self.status}"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("status", "requeued"), [(503, True), (429, True), (400, False)])
def test_retryable_failures_stay_queued_and_others_are_dropped(  # type: ignore[no-untyped-def]
    sessions_copy: Path, workspace: Path, tmp_path: Path, status: int, requeued: bool
) -> None:
    handler = type("Handler", (_Refusing,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = cli_env(f"http://127.0.0.1:{server.server_port}", "agnes_pat_x", tmp_path / "home")
        transcript = sessions_copy / "short.jsonl"
        sid = "55604662-cf2a-4331-851a-ec234028f8ca"
        run = agnes(["push", "--quiet"], env, workspace, hook_payload(sid, transcript, workspace))
    finally:
        server.shutdown()
        server.server_close()
    assert run.returncode == 0  # a hook never fails the session
    queue = workspace / ".claude" / "agnes-sessions.txt"
    failed = workspace / ".claude" / "agnes-push-failed.log"
    if requeued:
        assert queue.read_text().strip() == f"{sid}\t{transcript}"
        assert not failed.exists()
    else:
        assert not queue.exists()
        assert sid in failed.read_text()
    crumb = json.loads((workspace / ".claude" / "agnes-push-status.json").read_text())
    assert any(f"refused with {status}" in e for e in crumb["errors"])


def test_unreachable_server_requeues_and_push_without_hook_fails(
    sessions_copy: Path, workspace: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    env = cli_env("http://127.0.0.1:9", "agnes_pat_x", tmp_path / "home")
    transcript = sessions_copy / "short.jsonl"
    sid = "55604662-cf2a-4331-851a-ec234028f8ca"
    assert agnes(["push", "-q"], env, workspace, hook_payload(sid, transcript, workspace)).returncode == 0
    manual = agnes(["push"], env, workspace)
    assert manual.returncode == 1 and "error:" in manual.stderr
    assert (workspace / ".claude" / "agnes-sessions.txt").read_text().strip() == f"{sid}\t{transcript}"


def test_mark_private_before_and_after_push_leaves_no_trace(  # type: ignore[no-untyped-def]
    app, live_server, auth, sessions_copy: Path, workspace: Path, tmp_path: Path
) -> None:
    token = auth.token("analyst@example.com")
    user_id = auth.user("analyst@example.com")
    env = cli_env(live_server.url, token, tmp_path / "home")
    # Before: marked, then the hook runs; nothing is sent.
    early = "55604662-cf2a-4331-851a-ec234028f8ca"
    marked = agnes(["mark-private"], {**env, "CLAUDE_CODE_SESSION_ID": early}, workspace)
    assert marked.returncode == 0, marked.stderr
    agnes(["push", "-q"], env, workspace, hook_payload(early, sessions_copy / "short.jsonl", workspace))
    assert _files(user_id) == []
    # After: pushed and processed, then marked; files, events and summaries go.
    assert (
        agnes(["push", "-q"], env, workspace, hook_payload(SID, sessions_copy / f"{SID}.jsonl", workspace)).returncode
        == 0
    )
    app.extensions["agnes_jobs"].wait_idle()
    assert len(_files(user_id)) == 2
    late = agnes(["mark-private", "--session", SID], env, workspace)
    assert late.returncode == 0 and "2 uploaded file(s) deleted" in late.stdout
    assert _files(user_id) == []
    with state_store().read() as con:
        for table in ("usage_events", "usage_session_summary"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert not (Path(app.config["AGNES_DATA_DIR"]) / "sessions" / user_id / SID).exists()
    # The hook for it again: skipped, never sent.
    again = agnes(["push", "--json"], env, workspace, hook_payload(SID, sessions_copy / f"{SID}.jsonl", workspace))
    assert json.loads(again.stdout)["uploaded"] == [] and _files(user_id) == []


def test_mark_private_needs_a_session(workspace: Path, tmp_path: Path) -> None:
    env = cli_env("http://127.0.0.1:9", "agnes_pat_x", tmp_path / "home")
    env.pop("CLAUDE_CODE_SESSION_ID", None)
    run = agnes(["mark-private"], env, workspace)
    assert run.returncode == 1 and "no session" in run.stderr
    assert ROOT.exists()


def test_a_second_push_while_one_runs_queues_its_session_and_the_next_push_sends_it(
    live_server, auth, sessions_copy: Path, workspace: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """One push at a time per workspace: a hook firing while another push holds the lock exits 0
    at once, its session kept in the queue, and nothing is uploaded twice or lost."""
    from cli.push import Paths, push_lock

    token = auth.token("analyst@example.com")
    user_id = auth.user("analyst@example.com")
    env = cli_env(live_server.url, token, tmp_path / "home")
    transcript = sessions_copy / f"{SID}.jsonl"
    with push_lock(Paths(workspace)):  # another push is running
        busy = agnes(["push", "--quiet"], env, workspace, hook_payload(SID, transcript, workspace))
        assert busy.returncode == 0, busy.stderr
        assert _files(user_id) == []
        assert SID in (workspace / ".claude" / "agnes-sessions.txt").read_text()
        status = json.loads(agnes(["push", "--status", "--json"], env, workspace).stdout)
        assert "another agnes push is running" in json.dumps(status)
    after = json.loads(agnes(["push", "--json"], env, workspace).stdout)
    assert after["uploaded"] == [
        str(transcript),
        str(transcript.with_suffix("") / "subagents" / "agent-a7be2f0.jsonl"),
    ]
    assert _files(user_id) == [f"{SID}.jsonl", f"{SID}/subagents/agent-a7be2f0.jsonl"]
