"""One use, not two: a skill use reported by the transcript (``agnes push``) and by Claude Code's
OpenTelemetry export counts once in the usage figures, whichever arrives first; the transcript
adds the failure, OTLP the trigger. Marking the session private removes its OTLP rows too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.claude_code.conftest import SESSION, log_request
from tests.conftest import bearer
from tests.telemetry.conftest import upload

PROTOBUF = {"Content-Type": "application/x-protobuf"}
SKILL = "alpha:alpha-skill"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def transcript(uses: list[tuple[str, str, bool]]) -> bytes:
    """A 2.1.x transcript of SESSION: per ``(prompt id, tool use id, failed)`` a prompt, the
    assistant's ``Skill`` tool use (no promptId on assistant lines) and its result."""
    lines: list[dict[str, Any]] = []
    for i, (prompt, use_id, failed) in enumerate(uses):
        when = (START + timedelta(seconds=10 * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        common = {"sessionId": SESSION, "timestamp": when, "version": "2.1.197", "isSidechain": False}
        lines += [
            {
                **common,
                "type": "user",
                "promptId": prompt,
                "uuid": f"u{i}",
                "message": {"role": "user", "content": "Check it"},
            },
            {
                **common,
                "type": "assistant",
                "uuid": f"a{i}",
                "message": {
                    "id": f"msg_{i}",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [{"type": "tool_use", "id": use_id, "name": "Skill", "input": {"skill": SKILL}}],
                },
            },
            {
                **common,
                "type": "user",
                "promptId": prompt,
                "uuid": f"r{i}",
                "message": {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use_id, "content": "x", "is_error": failed}],
                },
            },
        ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def activations(prompts: list[str]) -> bytes:
    """OTLP logs: a skill_activated (claude-proactive) per prompt, as Claude Code exports them."""
    events = [
        {
            "event.name": "skill_activated",
            "skill.name": SKILL,
            "invocation_trigger": "claude-proactive",
            "skill.source": "plugin",
            "plugin.name": "alpha",
            "marketplace.name": "agnes",
            "prompt.id": prompt,
            "event.sequence": 100 + i,  # a distinct event per prompt
        }
        for i, prompt in enumerate(prompts)
    ]
    return log_request(events, start=START).SerializeToString()


def figures() -> tuple[int, int, int]:
    """(calls, errors, plugin calls) of the skill over the last 30 days, after a processing run."""
    from agnes.state import state_store
    from agnes.telemetry.processor import process_sessions

    process_sessions()
    with state_store().read() as con:
        rows = dict(
            (r[0], (int(r[1]), int(r[2])))
            for r in con.execute(
                "SELECT item_type, calls, errors FROM usage_item_window WHERE period = 'last_30d'"
                " AND parent = 'acme/alpha' AND source = 'curated' AND (name = ? OR item_type = 'plugin')",
                [SKILL],
            ).fetchall()
        )
    skill, plugin = rows.get("skill", (0, 0)), rows.get("plugin", (0, 0))
    return skill[0], skill[1], plugin[0]


def triggers() -> dict[str, int]:
    from agnes.claude_code.skills import skill_usage

    return skill_usage("acme", "alpha", "alpha-skill").to_dict()


@pytest.fixture
def analyst(auth, fleet):  # type: ignore[no-untyped-def]
    return {"token": auth.token("ana@example.com"), "id": auth.user("ana@example.com")}


def _otlp(client, analyst, body: bytes) -> None:  # type: ignore[no-untyped-def]
    assert client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst["token"])}).status_code == 200


def test_otlp_first_then_the_transcript_counts_once(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import telemetry
    from agnes.state import state_store
    from agnes.telemetry.processor import process_sessions

    _otlp(client, analyst, activations(["p-1"]))
    assert figures() == (1, 0, 1)  # OTLP alone already counts (real-time channel)
    with state_store().read() as con:
        rolled = telemetry.get_meta(con, "windows_refreshed_at")
    process_sessions()  # nothing arrived since: no rollup again
    with state_store().read() as con:
        assert telemetry.get_meta(con, "windows_refreshed_at") == rolled
    # The transcript arrives: the same occurrence, which failed (only the transcript knows).
    assert upload(client, analyst["token"], SESSION, transcript([("p-1", "toolu_01", True)])).status_code in (200, 201)
    assert figures() == (1, 1, 1)
    assert triggers()["by_claude"] == 1
    with state_store().read() as con:
        stored = con.execute("SELECT prompt_id, tool_use_id FROM usage_events WHERE event_type = 'skill'").fetchall()
    assert stored == [("p-1", "toolu_01")]


def test_transcript_first_then_otlp_counts_once_and_an_unreported_use_adds_one(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    uses = [("p-1", "toolu_01", False), ("p-2", "toolu_02", False)]
    assert upload(client, analyst["token"], SESSION, transcript(uses)).status_code in (200, 201)
    assert figures() == (2, 0, 2)
    _otlp(client, analyst, activations(["p-1", "p-2"]))
    assert figures() == (2, 0, 2)
    # A third activation the transcript does not have (pushed before it happened) counts.
    _otlp(client, analyst, activations(["p-1", "p-2", "p-3"]))
    assert figures() == (3, 0, 3)
    assert triggers() == {"by_claude": 3, "typed": 0, "other": 0, "days": 30}


def test_a_tool_use_counts_once_by_its_tool_use_id(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    from agnes.state import state_store
    from agnes.telemetry.processor import process_sessions

    def tool(name: str, use_id: str, success: str) -> dict[str, Any]:
        return {
            "event.name": "tool_result",
            "tool_name": name,
            "tool_use_id": use_id,
            "success": success,
            "prompt.id": "p-1",
        }

    results = [tool("Bash", "toolu_b1", "true"), tool("Read", "toolu_r1", "false"), tool("Skill", "toolu_01", "true")]
    _otlp(client, analyst, log_request(results, start=START).SerializeToString())
    lines = transcript([("p-1", "toolu_01", False)]).decode().splitlines()
    bash = json.loads(lines[1])
    bash["uuid"], bash["message"]["id"] = "a-bash", "msg_bash"
    bash["message"]["content"] = [{"type": "tool_use", "id": "toolu_b1", "name": "Bash", "input": {"command": "ls"}}]
    upload(client, analyst["token"], SESSION, ("\n".join([*lines, json.dumps(bash)]) + "\n").encode())
    process_sessions()
    with state_store().read() as con:
        tools = con.execute(
            "SELECT name, calls, errors FROM usage_item_window WHERE period = 'last_30d' AND item_type = 'tool'"
            " ORDER BY name"
        ).fetchall()
    # Bash: once (transcript and OTLP); Read: OTLP alone, failed; the Skill tool counts as the skill.
    assert tools == [("Bash", 1, 0), ("Read", 1, 1)]
    assert figures()[0] == 1


def test_marking_the_session_private_deletes_its_otlp_rows(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    from agnes.state import state_store

    _otlp(client, analyst, activations(["p-1"]))
    other = log_request([{"event.name": "user_prompt", "session.id": "another-session"}]).SerializeToString()
    _otlp(client, analyst, other)
    assert figures()[0] == 1
    answer = client.post(f"/api/sessions/{SESSION}/private", headers=bearer(analyst["token"]))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["otel_events"] == 1
    with state_store().read() as con:
        left = con.execute("SELECT session_id, event_name FROM otel_events").fetchall()
    assert left == [("another-session", "user_prompt")]
    assert figures()[0] == 0 and triggers()["by_claude"] == 0
    _otlp(client, analyst, activations(["p-9"]))  # and what Claude Code sends later is dropped
    with state_store().read() as con:
        assert con.execute("SELECT count(*) FROM otel_events WHERE session_id = ?", [SESSION]).fetchone() == (0,)
