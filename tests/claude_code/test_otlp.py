"""The OTLP intake: protobuf and JSON, gzip, the token's owner, attribution, a resent batch,
metrics, and each kind of bad input answered with its status and nothing written."""

from __future__ import annotations

import gzip
import json

import pytest
from google.protobuf import json_format

from tests.claude_code.conftest import INSTALLATION, SESSION, log_request, metric_request, skill_events
from tests.conftest import bearer

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _rows(sql: str = "SELECT event_name, user_id, ref_marketplace, ref_plugin FROM otel_events ORDER BY 1"):  # type: ignore[no-untyped-def]
    from agnes.state import state_store

    with state_store().read() as con:
        return con.execute(sql).fetchall()


def _count() -> int:
    return _rows("SELECT count(*) FROM otel_events")[0][0]


@pytest.fixture
def analyst(auth, fleet):  # type: ignore[no-untyped-def]
    """An analyst's token and id (served acme/alpha, the system plugin)."""
    token = auth.token("ana@example.com")
    return {"token": token, "id": auth.user("ana@example.com")}


def test_protobuf_logs_are_stored_under_the_tokens_owner_and_attributed(client, analyst) -> None:  # type: ignore[no-untyped-def]
    body = log_request(skill_events()).SerializeToString()
    answer = client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst["token"])})
    assert answer.status_code == 200 and answer.mimetype == "application/x-protobuf" and answer.data == b""
    rows = _rows()
    assert {r[1] for r in rows} == {analyst["id"]}  # never the payload's user.email
    by_name = {r[0]: r for r in rows}
    assert set(by_name) == {"plugin_loaded", "skill_activated", "tool_result", "hook_execution_complete", "api_request"}
    for name in ("plugin_loaded", "skill_activated", "hook_execution_complete"):
        assert by_name[name][2:] == ("acme", "alpha"), name
    skill = _rows(
        "SELECT skill_name, invocation_trigger, session_id, prompt_id, installation, host, app_version, attributes,"
        " source FROM otel_events WHERE event_name = 'skill_activated'"
    )[0]
    assert skill[:7] == ("alpha:alpha-skill", "claude-proactive", SESSION, "p-1", INSTALLATION, "laptop-1", "2.1.197")
    assert "someone-else@example.com" not in skill[7] and skill[8] == "otel"
    hook = _rows("SELECT hook_event, hook_failures FROM otel_events WHERE event_name = 'hook_execution_complete'")
    assert hook == [("PostToolUse", 1)]
    api = _rows("SELECT model, cost_usd, tokens FROM otel_events WHERE event_name = 'api_request'")
    assert api == [("claude-sonnet-4-5", 0.0123, 120)]
    load = _rows("SELECT user_id, installation, plugin_name, version, host, enabled_via FROM claude_code_plugin_loads")
    assert load == [(analyst["id"], INSTALLATION, "alpha", "1.0.0", "laptop-1", "managed")]

    # The exporter retries the same batch: nothing new.
    again = client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst["token"])})
    assert again.status_code == 200 and _count() == 5


def test_json_and_gzip_and_metrics(client, analyst) -> None:  # type: ignore[no-untyped-def]
    text = json_format.MessageToJson(log_request(skill_events()[1:2]))
    answer = client.post(
        "/v1/logs",
        data=gzip.compress(text.encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip", **bearer(analyst["token"])},
    )
    assert answer.status_code == 200 and answer.get_json() == {}
    assert _rows("SELECT event_name, ref_plugin FROM otel_events") == [("skill_activated", "alpha")]

    metrics = metric_request(
        [
            ("claude_code.cost.usage", 0.5, {"model": "claude-sonnet-4-5"}),
            ("claude_code.token.usage", 1200.0, {"model": "claude-sonnet-4-5", "type": "input"}),
            ("claude_code.session.count", 1.0, {}),
        ]
    )
    done = client.post(
        "/v1/metrics", data=metrics.SerializeToString(), headers={**PROTOBUF, **bearer(analyst["token"])}
    )
    assert done.status_code == 200
    rows = _rows(
        "SELECT event_name, cost_usd, tokens, token_type, session_id FROM otel_events"
        " WHERE event_name LIKE 'metric.%' ORDER BY 1"
    )
    assert rows == [
        ("metric.cost", 0.5, None, None, SESSION),
        ("metric.session.count", None, None, None, SESSION),
        ("metric.tokens", None, 1200, "input", SESSION),
    ]


def test_a_newer_version_restarts_version_since_and_an_older_load_changes_nothing(client, analyst) -> None:  # type: ignore[no-untyped-def]
    headers = {**PROTOBUF, **bearer(analyst["token"])}
    first = skill_events()[:1]
    client.post("/v1/logs", data=log_request(first).SerializeToString(), headers=headers)
    newer = [{**first[0], "plugin.version": "1.1.0", "event.timestamp": "2030-12-07T09:00:00.000Z"}]
    client.post("/v1/logs", data=log_request(newer).SerializeToString(), headers=headers)
    older = [{**first[0], "plugin.version": "0.9.0", "event.timestamp": "2026-12-01T09:00:00.000Z"}]
    client.post("/v1/logs", data=log_request(older).SerializeToString(), headers=headers)
    rows = _rows("SELECT version, version_since, last_loaded_at FROM claude_code_plugin_loads")
    assert len(rows) == 1 and rows[0][0] == "1.1.0"
    assert rows[0][1].isoformat() == rows[0][2].isoformat() == "2030-12-07T09:00:00"


def test_bad_input_gets_its_status_and_writes_nothing(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    good = log_request(skill_events()).SerializeToString()
    token = bearer(analyst["token"])

    def post(data: bytes, headers: dict[str, str], path: str = "/v1/logs"):  # type: ignore[no-untyped-def]
        return client.post(path, data=data, headers=headers)

    anonymous = post(good, PROTOBUF)
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "authentication_required"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = post(good, {**PROTOBUF, **bearer("agnes_pat_wrong")})
    assert wrong.status_code == 401 and wrong.get_json()["error"] in ("invalid_token", "authentication_required")
    corrupt = post(b"\xff\xff\xff\x01garbage", {**PROTOBUF, **token})
    assert corrupt.status_code == 400 and corrupt.get_json()["error"] == "malformed_otlp"
    truncated = post(good[: len(good) // 2], {**PROTOBUF, **token})
    assert truncated.status_code == 400
    not_json = post(b"{not json", {"Content-Type": "application/json", **token})
    assert not_json.status_code == 400 and not_json.get_json()["error"] == "malformed_otlp"
    not_otlp = post(json.dumps({"resourceLogs": "nope"}).encode(), {"Content-Type": "application/json", **token})
    assert not_otlp.status_code == 400
    bad_gzip = post(b"\x1f\x8b not gzip", {**PROTOBUF, "Content-Encoding": "gzip", **token})
    assert bad_gzip.status_code == 400
    text = post(good, {"Content-Type": "text/plain", **token})
    assert text.status_code == 415 and text.get_json()["field"] == "Content-Type"

    app.config["AGNES_OTLP_MAX_KB"] = 1
    oversize = post(log_request(skill_events() * 8).SerializeToString(), {**PROTOBUF, **token})
    assert oversize.status_code == 413 and oversize.get_json()["error"] == "body_too_large"
    bomb = gzip.compress(b"\x00" * 5_000_000)  # 5 MB of zeros in 5 KB
    assert post(bomb, {**PROTOBUF, "Content-Encoding": "gzip", **token}).status_code == 413
    app.config["AGNES_OTLP_MAX_KB"] = 4096

    app.config["AGNES_OTLP_MAX_EVENTS"] = 3
    many = post(good, {**PROTOBUF, **token})
    assert many.status_code == 413 and many.get_json()["error"] == "too_many_events"
    app.config["AGNES_OTLP_MAX_EVENTS"] = 2000
    assert _count() == 0

    app.config["AGNES_OTLP_RATE"] = 1  # 30 events at once, then one a second
    burst = log_request(skill_events() * 5).SerializeToString()  # 25 events
    assert post(burst, {**PROTOBUF, **token}).status_code == 200
    limited = post(burst, {**PROTOBUF, **token})
    assert limited.status_code == 429 and limited.get_json()["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert _count() == 25  # the first burst only


def test_a_session_cookie_is_not_enough(client, auth, fleet) -> None:  # type: ignore[no-untyped-def]
    auth.login("ana@example.com")
    answer = client.post("/v1/logs", data=log_request(skill_events()).SerializeToString(), headers=PROTOBUF)
    assert answer.status_code == 401 and _count() == 0


def test_accepted_exports_write_no_audit_row_and_refusals_do(client, analyst) -> None:  # type: ignore[no-untyped-def]
    from agnes.state import state_store

    def audited() -> list[str]:
        with state_store().read() as con:
            return [
                r[0] for r in con.execute("SELECT result FROM audit_log WHERE action LIKE 'http.otlp.%'").fetchall()
            ]

    body = log_request(skill_events()).SerializeToString()
    assert client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst["token"])}).status_code == 200
    assert audited() == []  # the events are the record
    refused = client.post("/v1/logs", data=b"\xff\xff", headers={**PROTOBUF, **bearer(analyst["token"])})
    assert refused.status_code == 400 and audited() == ["400"]


def test_a_private_session_is_dropped_on_arrival(client, analyst) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import utcnow
    from agnes.state import state_store
    from tests.claude_code.conftest import SESSION

    with state_store().write() as con:
        con.execute(
            "INSERT INTO private_sessions (user_id, session_id, marked_at) VALUES (?, ?, ?)",
            [analyst["id"], SESSION, utcnow()],
        )
    body = log_request(skill_events()).SerializeToString()
    answer = client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst["token"])})
    assert answer.status_code == 200 and _count() == 0
    other = log_request([{**e, "session.id": "another-session"} for e in skill_events()])
    client.post("/v1/logs", data=other.SerializeToString(), headers={**PROTOBUF, **bearer(analyst["token"])})
    assert _count() == 5
