"""The failure scan: detectors over the fixture transcripts (tool errors equal manifest.tsv's,
the rejections of short.jsonl, the interruptions of tool_heavy.jsonl, a loop in a copy with a
repeated call, abrupt ends only once a file is an hour old), checkpoints and rescans, private
sessions, the job chained after processing on a real ``worker.py``, and ``/admin/sessions``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta

import pytest
from flask import Flask

from agnes.state import state_store
from agnes.telemetry.findings import SCANNER_VERSION, scan, scan_sessions
from tests.conftest import ROOT, bearer
from tests.telemetry.conftest import TRANSCRIPTS, manifest, upload

OLD = datetime(2020, 1, 1)
NOW = datetime(2026, 6, 1)


def _types(data: bytes, *, mtime: datetime = OLD, now: datetime = NOW) -> Counter[str]:
    return Counter(f.finding_type for f in scan(data, mtime=mtime, now=now).findings)


@pytest.mark.parametrize("expected", [e for e in manifest()], ids=lambda e: e.path.name)
def test_tool_errors_equal_the_manifest(expected) -> None:  # type: ignore[no-untyped-def]
    assert _types(expected.path.read_bytes())["tool_error"] == expected.tool_errors


def test_rejections_interruptions_and_excerpts() -> None:
    short = scan((TRANSCRIPTS / "short.jsonl").read_bytes(), mtime=OLD, now=NOW).findings
    rejections = [f for f in short if f.finding_type == "user_rejection"]
    assert [f.turn_index for f in rejections] == [11, 12]
    assert rejections[0].excerpt.startswith("The user doesn't want to proceed with this tool use")
    assert all(len(f.excerpt) <= 300 for f in short)
    heavy = _types((TRANSCRIPTS / "tool_heavy.jsonl").read_bytes())
    assert heavy["interrupted"] == 2
    assert _types((TRANSCRIPTS / "subagent.jsonl").read_bytes())["tool_error"] == 0


def test_short_replies_saying_no_are_rejections_and_long_ones_are_not() -> None:
    lines = [
        {"type": "user", "message": {"role": "user", "content": "No, that's wrong"}},
        {"type": "assistant", "message": {"role": "assistant", "content": [{"type": "text", "text": "Sorry"}]}},
        {"type": "user", "message": {"role": "user", "content": "no " + "please continue with the plan " * 3}},
        {"type": "user", "message": {"role": "user", "content": "<command-name>/stop</command-name>"}},
        {"type": "assistant", "message": {"role": "assistant", "content": "ok"}},
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    found = scan(data, mtime=OLD, now=NOW).findings
    assert [(f.finding_type, f.turn_index) for f in found] == [("user_rejection", 1)]


def test_a_copy_with_a_repeated_call_gets_one_loop() -> None:
    lines = (TRANSCRIPTS / "tool_heavy.jsonl").read_bytes().splitlines()
    call = next(i for i, line in enumerate(lines) if b'"tool_use"' in line and json.loads(line)["type"] == "assistant")
    copy = lines[: call + 1] + [lines[call]] * 3 + lines[call + 1 :]  # the same call four times in a row
    assert _types(b"\n".join(lines))["loop"] == 0
    assert _types(b"\n".join(copy))["loop"] == 1


def test_abrupt_end_only_once_the_file_is_an_hour_old() -> None:
    data = (TRANSCRIPTS / "tool_heavy.jsonl").read_bytes()  # ends on the user's interruption
    live = scan(data, mtime=NOW - timedelta(minutes=5), now=NOW)
    assert "abrupt_end" not in {f.finding_type for f in live.findings}
    assert live.recheck_after == NOW + timedelta(minutes=55)
    assert _types(data, mtime=NOW - timedelta(hours=2))["abrupt_end"] == 1
    answered = data + b"\n" + json.dumps({"type": "assistant", "message": {"content": "Done."}}).encode()
    assert _types(answered)["abrupt_end"] == 0


def test_secrets_are_masked_in_excerpts() -> None:
    line = {
        "type": "user",
        "message": {
            "content": [{"type": "tool_result", "is_error": True, "content": "auth failed for ghp_abcdefgh12345678"}]
        },
    }
    (finding,) = scan(json.dumps(line).encode(), mtime=NOW, now=NOW).findings
    assert "ghp_abcdefgh" not in finding.excerpt and "[redacted]" in finding.excerpt


def _findings(path_like: str = "") -> list[tuple[str, int]]:
    with state_store().read() as con:
        return con.execute(
            "SELECT finding_type, turn_index FROM session_findings WHERE session_file LIKE ? ORDER BY 2, 1",
            [f"%{path_like}%"],
        ).fetchall()


def test_scan_checkpoints_rescans_and_private_sessions(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("ana@example.com")
    short = (TRANSCRIPTS / "short.jsonl").read_bytes()
    session = "55604662-cf2a-4331-851a-ec234028f8ca"
    assert upload(client, token, session, short).status_code in (200, 201)
    first = scan_sessions()
    assert first["files"] == 1 and first["findings"] == len(_findings(session)) > 0
    assert scan_sessions()["files"] == 0  # checkpoint: nothing changed
    # A grown file is scanned again and its findings replaced (not added to).
    grown = short + b"\n" + json.dumps({"type": "assistant", "message": {"content": "Let me retry."}}).encode() + b"\n"
    assert upload(client, token, session, grown).status_code == 200
    before = Counter(t for t, _ in _findings(session))
    assert scan_sessions()["files"] == 1
    after = Counter(t for t, _ in _findings(session))
    assert after["tool_error"] == before["tool_error"] == 2 and after["abrupt_end"] == 0
    with state_store().read() as con:
        version = con.execute("SELECT scanner_version FROM finding_scan_state").fetchone()[0]
    assert version == SCANNER_VERSION
    # Marking the session private deletes its findings with the rest.
    assert client.post(f"/api/sessions/{session}/private", headers=bearer(token)).status_code == 200
    assert _findings(session) == []


def test_a_real_worker_finds_a_tool_error_after_processing(rq_app: Flask) -> None:
    from tests.conftest import Auth
    from tests.jobs.test_worker_process import worker_env

    client = rq_app.test_client()
    token = Auth(rq_app, client).token("ana@example.com")
    session = "8463c716-a2ea-4c14-9efa-87158ebd9f20"
    data = (TRANSCRIPTS / f"{session}.jsonl").read_bytes()
    assert upload(client, token, session, data).status_code in (200, 201)
    proc = subprocess.run(
        [sys.executable, "worker.py", "--burst", "--name", f"agnes-scan-{os.getpid()}"],
        cwd=ROOT,
        env=worker_env(rq_app),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Counter(t for t, _ in _findings(session))["tool_error"] == 13, proc.stderr[-3000:]
