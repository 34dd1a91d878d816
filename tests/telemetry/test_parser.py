"""Transcript parsing against the published fixtures and their manifest (tests/fixtures/sessions)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agnes.telemetry.parser import SLASH_COMMAND, parse_lines
from tests.telemetry.conftest import CLAUDE_CODE_LOG, FASTHOOKS, TRANSCRIPTS, damaged_copies, manifest

ROWS = manifest()


@pytest.mark.parametrize("row", ROWS, ids=[r.path.name for r in ROWS])
def test_each_fixture_file_matches_the_manifest(row) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_lines(row.path.read_bytes())
    calls = [e for e in parsed.events if e.event_type != SLASH_COMMAND]
    assert Counter(e.tool_name for e in calls) == row.tools
    assert parsed.summary.tool_calls == row.tool_uses
    assert {e.name for e in parsed.events if e.event_type == "skill"} == row.skills
    assert {e.name for e in parsed.events if e.event_type == "subagent"} == row.subagent_types
    assert {e.name for e in parsed.events if e.event_type == SLASH_COMMAND} == row.command_names
    assert parsed.summary.tool_errors == row.tool_errors
    assert sum(e.is_error for e in calls) <= row.tool_errors
    assert parsed.summary.lines == row.lines
    assert parsed.summary.bad_lines == 0
    assert parsed.is_transcript == row.is_transcript


def test_command_tags_quoted_in_tool_results_do_not_count() -> None:
    """8463c716 quotes /mcp, /model and /handgemacht:create-beads inside tool results."""
    data = (TRANSCRIPTS / "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl").read_bytes()
    assert b"<command-name>/handgemacht:create-beads</command-name>" in data
    assert [e for e in parse_lines(data).events if e.event_type == SLASH_COMMAND] == []


def test_errors_are_marked_on_the_failed_call() -> None:
    parsed = parse_lines((TRANSCRIPTS / "short.jsonl").read_bytes())
    assert sorted(e.tool_name for e in parsed.events if e.is_error) == ["Bash", "Glob"]


def test_tokens_count_once_per_message_id() -> None:
    lines = []
    for index, output in enumerate((5, 17, 17)):
        lines.append(
            {
                "type": "assistant",
                "timestamp": f"2026-01-01T10:00:0{index}Z",
                "message": {
                    "id": "msg_1",
                    "model": "claude-opus-4-6",
                    "content": [{"type": "text", "text": "hi"}],
                    "usage": {"input_tokens": 100, "output_tokens": output, "cache_read_input_tokens": 40},
                },
            }
        )
    parsed = parse_lines("\n".join(json.dumps(x) for x in lines).encode())
    assert (parsed.summary.input_tokens, parsed.summary.output_tokens, parsed.summary.cache_read_tokens) == (
        100,
        17,
        40,
    )
    assert parsed.summary.assistant_messages == 1


def test_damaged_copies_still_parse(tmp_path: Path) -> None:
    source = TRANSCRIPTS / "ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl"
    whole = parse_lines(source.read_bytes())
    copies = damaged_copies(source, tmp_path)
    truncated = parse_lines(copies["truncated"].read_bytes())
    assert truncated.summary.bad_lines == 1
    assert len(truncated.events) >= len(whole.events) - 1
    garbage = parse_lines(copies["garbage"].read_bytes())
    assert garbage.summary.bad_lines == 3
    assert len(garbage.events) == len(whole.events)
    bad = parse_lines(copies["bad_utf8"].read_bytes())
    assert bad.summary.bad_lines == 1
    assert len(bad.events) == len(whole.events)


def test_version_1_commands_get_their_slash_and_inline_sidechains_count() -> None:
    lines = [
        {
            "type": "user",
            "timestamp": "2025-06-01T10:00:00Z",
            "version": "1.0.31",
            "message": {
                "role": "user",
                "content": "<command-name>review</command-name>\n<command-args></command-args>",
            },
        },
        {
            "type": "assistant",
            "isSidechain": True,
            "timestamp": "2025-06-01T10:00:05Z",
            "version": "1.0.31",
            "message": {"id": "m1", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]},
        },
    ]
    parsed = parse_lines("\n".join(json.dumps(x) for x in lines).encode())
    assert [(e.event_type, e.name, e.is_sidechain) for e in parsed.events] == [
        ("slash_command", "/review", False),
        ("tool_use", "Read", True),
    ]


def test_every_single_event_file_parses_and_unknown_types_are_skipped() -> None:
    files = sorted(CLAUDE_CODE_LOG.rglob("*.jsonl"))
    assert len(files) > 50
    for path in files:
        parsed = parse_lines(path.read_bytes())
        assert parsed.is_transcript, path.name
    future = parse_lines(b'{"type": "hologram", "timestamp": "2030-01-01T00:00:00Z"}\n')
    assert future.is_transcript and future.events == [] and future.summary.bad_lines == 0


def test_hook_payloads_are_not_a_transcript() -> None:
    parsed = parse_lines((FASTHOOKS / "data" / "sample_hook_logs.jsonl").read_bytes())
    assert not parsed.is_transcript
    assert parsed.events == []


def test_active_seconds_stop_at_ten_minute_gaps() -> None:
    stamps = ["2026-01-01T10:00:00Z", "2026-01-01T10:05:00Z", "2026-01-01T11:00:00Z", "2026-01-01T11:01:00Z"]
    data = "\n".join(json.dumps({"type": "system", "timestamp": t}) for t in stamps).encode()
    summary = parse_lines(data).summary
    assert summary.active_seconds == 360
    assert summary.wall_seconds == 3660
