"""``PUT /api/sessions/...``: storage by user id, unchanged re-uploads, and each refusal writing nothing."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from flask import Flask

from agnes.models import telemetry
from agnes.state import state_store
from tests.conftest import bearer
from tests.telemetry.conftest import FASTHOOKS, TRANSCRIPTS, upload

SID = "55604662-cf2a-4331-851a-ec234028f8ca"
SHORT = (TRANSCRIPTS / "short.jsonl").read_bytes()


def _stored(app: Flask) -> list[Path]:
    root = Path(app.config["AGNES_DATA_DIR"]) / "sessions"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _rows(user_id: str) -> list[telemetry.SessionFile]:
    with state_store().read() as con:
        return telemetry.list_session_files(con, user_id)


def test_upload_is_stored_by_user_id_and_same_bytes_are_not_rewritten(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("analyst@example.com")
    user_id = auth.user("analyst@example.com")
    first = upload(client, token, SID.upper(), SHORT)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["status"] == "created"
    target = Path(app.config["AGNES_DATA_DIR"]) / "sessions" / user_id / f"{SID}.jsonl"
    assert target.read_bytes() == SHORT
    inode, mtime = target.stat().st_ino, target.stat().st_mtime_ns
    again = upload(client, token, SID, SHORT, gzipped=True)
    assert again.status_code == 200 and again.get_json()["status"] == "unchanged"
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (inode, mtime)
    grown = SHORT + b'{"type": "system", "timestamp": "2026-02-10T22:00:00Z"}\n'
    replaced = upload(client, token, SID, grown, gzipped=True)
    assert replaced.status_code == 200 and replaced.get_json()["status"] == "replaced"
    assert target.read_bytes() == grown
    [row] = _rows(user_id)
    assert (row.path, row.size_bytes, row.kind) == (f"{user_id}/{SID}.jsonl", len(grown), "main")
    sub = upload(client, token, SID, SHORT, subagent="agent-a881341.jsonl")
    assert sub.status_code == 201
    assert (target.parent / SID / "subagents" / "agent-a881341.jsonl").exists()
    assert not [p for p in _stored(app) if p.name.endswith(".upload")]


@pytest.mark.parametrize(
    ("session_id", "subagent", "body", "status", "code"),
    [
        ("not-a-uuid", None, SHORT, 400, "invalid_session_id"),
        ("../../etc", None, SHORT, 404, None),
        (SID, "notes.txt", SHORT, 400, "invalid_file_name"),
        (SID, "agent-..jsonl", SHORT, 400, "invalid_file_name"),
        (SID, None, b"\xff\xfe\x00binary\x00", 422, "not_a_transcript"),
        (SID, None, b'{"type": "user", "text": "caf\xe9"}\n', 422, "not_a_transcript"),
        (SID, None, (FASTHOOKS / "data" / "sample_hook_logs.jsonl").read_bytes(), 422, "not_a_transcript"),
        (SID, None, b"", 422, "not_a_transcript"),
    ],
    ids=["not-uuid", "traversal", "not-agent-file", "dots", "binary", "latin1", "hook-payloads", "empty"],
)
def test_bad_uploads_are_refused_and_write_nothing(  # type: ignore[no-untyped-def]
    app: Flask, client, auth, session_id, subagent, body, status, code
) -> None:
    token = auth.token("analyst@example.com")
    response = upload(client, token, session_id, body, subagent=subagent)
    assert response.status_code == status
    if code:
        assert response.get_json()["error"] == code
        assert response.get_json()["message"]
    assert _stored(app) == []
    assert _rows(auth.user("analyst@example.com")) == []


def test_too_large_counts_decompressed_bytes(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    app.config["AGNES_SESSION_MAX_BYTES"] = 4096
    token = auth.token("analyst@example.com")
    bomb = SHORT.split(b"\n")[0] + b"\n" + b" " * 2_000_000
    assert len(gzip.compress(bomb)) < 4096
    response = upload(client, token, SID, bomb, gzipped=True)
    assert response.status_code == 413
    assert "4096" in response.get_json()["message"]
    assert _stored(app) == []


def test_broken_gzip_is_a_400(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("analyst@example.com")
    cut = gzip.compress(SHORT)[:200]
    response = client.put(f"/api/sessions/{SID}", data=cut, headers={**bearer(token), "Content-Encoding": "gzip"})
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_gzip"
    assert _stored(app) == []


def test_mark_private_deletes_and_refuses_later_uploads(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("analyst@example.com")
    user_id = auth.user("analyst@example.com")
    assert upload(client, token, SID, SHORT).status_code == 201
    assert upload(client, token, SID, SHORT, subagent="agent-a1.jsonl").status_code == 201
    app.extensions["agnes_jobs"].wait_idle()
    with state_store().read() as con:
        assert con.execute("SELECT count(*) FROM usage_events WHERE session_id = ?", [SID]).fetchone()[0] > 0
    marked = client.post(f"/api/sessions/{SID}/private", headers=bearer(token))
    assert marked.status_code == 200 and marked.get_json()["files"] == 2
    assert _stored(app) == []
    with state_store().read() as con:
        for table in ("usage_events", "usage_session_summary", "session_files"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE session_id = ?", [SID]).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM usage_file_state").fetchone()[0] == 0
    refused = upload(client, token, SID, SHORT)
    assert refused.status_code == 409 and refused.get_json()["error"] == "session_private"
    assert _stored(app) == [] and _rows(user_id) == []
    # Another user's same session id is theirs, not private.
    other = auth.token("other@example.com")
    assert upload(client, other, SID, SHORT).status_code == 201
