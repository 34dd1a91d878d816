"""Admin telemetry API: export (each format reads back to the database's rows), prune, reprocess
(shadow tables, progress, 409) and ask against a stub Messages API on loopback."""

from __future__ import annotations

import csv
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from flask import Flask

from agnes.state import state_store
from agnes.telemetry.processor import process_sessions
from tests.conftest import bearer
from tests.telemetry.conftest import TRANSCRIPTS, recent, upload

SMALL = {
    "55604662-cf2a-4331-851a-ec234028f8ca": "short.jsonl",
    "d6e0bada-1959-4eec-a9d2-0bfade768d8f": "tool_heavy.jsonl",
    "491e126e-1e71-469c-ade2-fcc8af567c74": "subagent.jsonl",
}


@pytest.fixture
def loaded(app: Flask, client, auth) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Two analysts' recent sessions, processed; returns the admin's auth header."""
    for email, days in (("analyst@example.com", 1), ("second@example.com", 40)):
        token = auth.token(email)
        for session_id, name in SMALL.items():
            assert (
                upload(client, token, session_id, recent((TRANSCRIPTS / name).read_bytes(), days_ago=days)).status_code
                == 201
            )
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    return bearer(auth.token("admin@example.com", admin=True))


def _db_events(where: str = "TRUE", params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with state_store().read() as con:
        return con.execute(
            f"SELECT user_id, session_id, name, is_error FROM usage_events WHERE {where}"
            " ORDER BY occurred_at, user_id, name",
            params or [],
        ).fetchall()


def test_each_export_format_reads_back_to_the_rows(client, auth, loaded) -> None:  # type: ignore[no-untyped-def]
    expected = sorted(_db_events("occurred_at >= now()::TIMESTAMP - INTERVAL 7 DAY"))
    assert expected
    for fmt in ("csv", "json", "parquet"):
        response = client.get(f"/api/admin/usage/export?format={fmt}&since=7d", headers=loaded)
        assert response.status_code == 200, response.data[:300]
        assert int(response.headers["X-Agnes-Rows"]) == len(expected)
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(response.data.decode())))
            got = [(r["user_id"], r["session_id"], r["name"], r["is_error"] == "true") for r in rows]
        elif fmt == "json":
            rows = [json.loads(line) for line in response.data.decode().splitlines()]
            got = [(r["user_id"], r["session_id"], r["name"], r["is_error"]) for r in rows]
        else:
            table = pq.read_table(io.BytesIO(response.data))
            got = list(
                zip(*(table.column(c).to_pylist() for c in ("user_id", "session_id", "name", "is_error")), strict=True)
            )
        response.close()
        assert sorted(got) == expected, fmt
    analyst = auth.user("analyst@example.com")
    sessions = client.get("/api/admin/usage/export?format=json&what=sessions&user=analyst@example.com", headers=loaded)
    assert {json.loads(line)["user_id"] for line in sessions.data.decode().splitlines()} == {analyst}
    sessions.close()
    with state_store().read() as con:
        audits = con.execute("SELECT params FROM audit_log WHERE action = 'usage.export'").fetchall()
    assert len(audits) == 4 and f'"rows": {len(expected)}' in audits[0][0].replace(
        f":{len(expected)}", f": {len(expected)}"
    )


BAD_EXPORTS = [
    ("format=xml", "format"),
    ("since=yesterday", "since"),
    ("since=2026-05-02&until=2026-05-01", "since"),
    ("until=31/12/2026", "until"),
    ("source=elsewhere", "source"),
    ("user=nobody@example.com", "user"),
    ("what=rows", "what"),
]


def test_bad_export_arguments_name_the_field(client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    for query, field in BAD_EXPORTS:
        response = client.get(f"/api/admin/usage/export?{query}", headers=headers)
        assert (response.status_code, response.get_json().get("field")) == (400, field), query


def test_prune_deletes_old_events_and_keeps_rollups(app: Flask, client, loaded) -> None:  # type: ignore[no-untyped-def]
    skipped = client.post("/api/admin/usage/prune", headers=loaded)
    assert skipped.status_code == 200 and skipped.get_json()["status"] == "skipped"
    with state_store().read() as con:
        daily_before = con.execute("SELECT sum(calls) FROM usage_item_daily").fetchone()[0]
    old = len(_db_events("occurred_at < now()::TIMESTAMP - INTERVAL 30 DAY"))
    assert old
    app.config["AGNES_USAGE_RETENTION_DAYS"] = 30
    pruned = client.post("/api/admin/usage/prune", headers=loaded).get_json()
    assert pruned["status"] == "pruned" and pruned["events"] == old
    assert _db_events("occurred_at < now()::TIMESTAMP - INTERVAL 30 DAY") == []
    with state_store().read() as con:
        assert con.execute("SELECT sum(calls) FROM usage_item_daily").fetchone()[0] == daily_before
    # The daily job goes through the same function.
    from agnes.jobs.schedule import PERIODIC

    assert any(p.target == "agnes.jobs.telemetry.run_prune_usage" for p in PERIODIC)


def test_reprocess_swaps_in_new_tables_and_refuses_a_second(app: Flask, client, loaded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agnes.telemetry import processor

    before = sorted(_db_events())
    started = threading.Event()
    release = threading.Event()
    seen_during: list[int] = []
    real_parse = processor.parse

    def slow_parse(data: bytes):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)
        return real_parse(data)

    monkeypatch.setattr(processor, "parse", slow_parse)
    first = client.post("/api/admin/usage/reprocess", headers=loaded)
    assert first.status_code == 202
    assert started.wait(10)
    second = client.post("/api/admin/usage/reprocess", headers=loaded)
    assert second.status_code == 409 and second.get_json()["error"] == "reprocess_running"
    seen_during.append(len(_db_events()))  # the old figures stay meanwhile
    release.set()
    app.extensions["agnes_jobs"].wait_idle()
    assert seen_during == [len(before)]
    assert sorted(_db_events()) == before
    job = client.get(f"/api/jobs/{first.get_json()['job']['id']}", headers=loaded).get_json()
    assert job["state"] == "finished" and job["result"]["files"] == 6
    with state_store().read() as con:
        tables = {
            r[0]
            for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%_next'").fetchall()
        }
    assert tables == set()


# -- ask --------------------------------------------------------------------------------------------


class StubMessages(BaseHTTPRequestHandler):
    """Speaks enough of the Messages API: answers with the text or status set on the server."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        status, text = self.server.reply  # type: ignore[attr-defined]
        if status != 200:
            payload = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
        else:
            payload = {
                "id": "msg_stub",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 10},
            }
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_api(app: Flask):  # type: ignore[no-untyped-def]
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubMessages)
    server.requests = []  # type: ignore[attr-defined]
    server.reply = (200, "")  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config.update(ANTHROPIC_API_KEY="sk-ant-test-key", ANTHROPIC_BASE_URL=f"http://127.0.0.1:{server.server_port}")
    yield server
    server.shutdown()
    server.server_close()


def _ask(client, headers, stub, sql: str, question: str = "How is usage?"):  # type: ignore[no-untyped-def]
    stub.reply = (200, json.dumps({"sql": sql, "rationale": "Because."}))
    return client.post("/api/admin/usage/ask", json={"question": question}, headers=headers)


QUESTIONS = [
    (
        "Which tools were called most in the last 30 days?",
        "SELECT name, calls, users FROM usage_item_window WHERE period = 'last_30d' AND item_type = 'tool'"
        " ORDER BY calls DESC",
    ),
    (
        "How many sessions did each person have?",
        "SELECT u.email, count(*) AS sessions FROM usage_session_summary s JOIN users u ON u.id = s.user_id "
        "WHERE s.kind = 'main' GROUP BY u.email ORDER BY sessions DESC",
    ),
    (
        "What share of tool calls fail, per tool?",
        "```json\n"
        + json.dumps(
            {
                "sql": "WITH t AS (SELECT tool_name, count(*) AS c, count(*) FILTER (WHERE is_error) AS e "
                "FROM usage_events WHERE event_type = 'tool_use' GROUP BY tool_name)"
                " SELECT tool_name, e / c AS rate FROM t ORDER BY c DESC;",
                "rationale": "Errors over calls.",
            }
        )
        + "\n```",
    ),
]


def test_ask_answers_realistic_questions_with_rows(client, loaded, stub_api) -> None:  # type: ignore[no-untyped-def]
    for question, sql in QUESTIONS:
        if sql.startswith("```"):
            stub_api.reply = (200, sql)
            response = client.post("/api/admin/usage/ask", json={"question": question}, headers=loaded)
        else:
            response = _ask(client, loaded, stub_api, sql, question)
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        assert answer["rows"] and answer["columns"], question
    assert {"analyst@example.com", "second@example.com"} == {r[0] for r in answer_rows(client, loaded, stub_api)}
    sent = stub_api.requests[-1]
    assert "usage_events" in sent["system"] and "sk-ant" not in json.dumps(sent)
    assert "analyst@example.com" not in json.dumps(stub_api.requests)  # no rows go to the model


def answer_rows(client, headers, stub):  # type: ignore[no-untyped-def]
    return _ask(client, headers, stub, QUESTIONS[1][1]).get_json()["rows"]


REJECTED = [
    "DROP TABLE usage_events",
    "SELECT * FROM personal_access_tokens",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT 1; SELECT 2",
    "ATTACH '/tmp/x.duckdb' AS x",
    "SELECT * FROM usage_events; DELETE FROM usage_events",
    "SELECT read_text('/etc/passwd')",
    "SELECT * FROM sys.users",
    "PRAGMA database_list",
    "COPY usage_events TO '/tmp/out.csv'",
]


def test_ask_rejects_sql_that_is_not_one_read_only_query(client, auth, stub_api) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    for sql in REJECTED:
        response = _ask(client, headers, stub_api, sql)
        body = response.get_json()
        assert (response.status_code, body["error"], body["sql"]) == (422, "sql_rejected", sql), sql
        assert body["reason"]
    assert not Path("/tmp/out.csv").exists()


def test_ask_provider_failures(app: Flask, client, loaded, stub_api) -> None:  # type: ignore[no-untyped-def]
    stub_api.reply = (429, "")
    limited = client.post("/api/admin/usage/ask", json={"question": "Top skills?"}, headers=loaded)
    assert limited.status_code == 503 and limited.get_json()["error"] == "ask_unavailable"
    stub_api.reply = (200, "I think you should look at the Bash tool.")
    prose = client.post("/api/admin/usage/ask", json={"question": "Top skills?"}, headers=loaded)
    assert prose.status_code == 502 and prose.get_json()["error"] == "ask_bad_reply"
    assert client.post("/api/admin/usage/ask", json={"question": " "}, headers=loaded).status_code == 400
    assert client.post("/api/admin/usage/ask", json={"question": "x" * 1001}, headers=loaded).status_code == 400
    app.config["ANTHROPIC_API_KEY"] = ""
    missing = client.post("/api/admin/usage/ask", json={"question": "Top skills?"}, headers=loaded)
    assert missing.status_code == 503 and "ANTHROPIC_API_KEY" in missing.get_json()["message"]
    with state_store().read() as con:
        rows = con.execute("SELECT result FROM audit_log WHERE action = 'usage.ask'").fetchall()
    assert rows and all("sk-ant" not in str(r) for r in rows)


def test_ask_reads_only_the_telemetry_database(client, loaded, stub_api, app: Flask) -> None:  # type: ignore[no-untyped-def]
    path = Path(app.config["AGNES_DATA_DIR"]) / "state" / "telemetry.duckdb"
    first = _ask(client, loaded, stub_api, "SELECT count(*) AS n FROM usage_events").get_json()
    assert path.exists() and first["rows"][0][0] > 0
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        columns = {
            r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'users'").fetchall()
        }
    finally:
        con.close()
    assert tables == {"usage_events", "usage_session_summary", "usage_item_daily", "usage_item_window", "users"}
    assert columns == {"id", "email", "name"}


def test_a_private_session_leaves_the_ask_database(client, auth, loaded, stub_api) -> None:  # type: ignore[no-untyped-def]
    count = "SELECT count(*) AS n FROM usage_events WHERE session_id = '55604662-cf2a-4331-851a-ec234028f8ca'"
    assert _ask(client, loaded, stub_api, count).get_json()["rows"] == [[4]]  # two users' copies
    token = auth.token("analyst@example.com")
    assert (
        client.post("/api/sessions/55604662-cf2a-4331-851a-ec234028f8ca/private", headers=bearer(token)).status_code
        == 200
    )
    assert _ask(client, loaded, stub_api, count).get_json()["rows"] == [[2]]
