"""The usage processor over uploaded fixture transcripts: counts equal the manifest, attribution
(served set, builtin, unattributed), idempotent second runs, replaced rows, parked files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from flask import Flask

from agnes.models import telemetry
from agnes.state import state_store
from agnes.telemetry import processor
from agnes.telemetry.processor import process_sessions
from tests.telemetry.conftest import TRANSCRIPTS, manifest, synced_usage_marketplace, upload

ROWS = [r for r in manifest() if r.is_transcript]


def _subagent_name(row) -> str | None:  # type: ignore[no-untyped-def]
    """The subagent file name a fixture is stored under (fasthooks' sidechain sample belongs to the
    session of its main transcript), None for main transcripts."""
    if row.path.parent.name == "subagents":
        return row.path.name
    if row.path.name == "sample_agent_sidechain.jsonl":
        return "agent-sample.jsonl"
    return None


def _stored_path(row, user_id: str) -> str:  # type: ignore[no-untyped-def]
    sub = _subagent_name(row)
    return f"{user_id}/{row.session_id}/subagents/{sub}" if sub else f"{user_id}/{row.session_id}.jsonl"


def _upload_all(client, token: str) -> None:  # type: ignore[no-untyped-def]
    """Upload every fixture transcript as agnes push would."""
    for row in ROWS:
        sub = _subagent_name(row)
        response = upload(client, token, row.session_id, row.path.read_bytes(), subagent=sub, gzipped=not sub)
        assert response.status_code == 201, (row.path, response.get_json())


def _events(where: str = "TRUE", params: list | None = None) -> list[tuple]:  # type: ignore[type-arg]
    with state_store().read() as con:
        return con.execute(
            f"SELECT path, event_type, tool_name, name, source, parent, is_error FROM usage_events WHERE {where}",
            params or [],
        ).fetchall()


def test_fixture_transcripts_are_processed_and_attributed(app: Flask, client, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin_token = auth.token("admin@example.com", admin=True)
    slug = synced_usage_marketplace(client, admin_token, tmp_path)
    token = auth.token("analyst@example.com")
    user_id = auth.user("analyst@example.com")
    # The analyst's stack holds both plugins, so they are in the served set.
    for plugin in ("handgemacht", "elixir"):
        assert (
            client.post(
                f"/api/marketplace/curated/{slug}/{plugin}/install", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
    _upload_all(client, token)
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    events = _events()
    by_file: dict[str, list[tuple]] = {}  # type: ignore[type-arg]
    for event in events:
        by_file.setdefault(event[0], []).append(event)
    for row in ROWS:
        name = row.path.name
        path = _stored_path(row, user_id)
        mine = by_file.get(path, [])
        calls = [e for e in mine if e[1] != "slash_command"]
        assert Counter(e[2] for e in calls) == row.tools, name
        assert {e[3] for e in mine if e[1] == "skill"} == row.skills, name
        assert {e[3] for e in mine if e[1] == "subagent"} == row.subagent_types, name
        assert {e[3] for e in mine if e[1] == "slash_command"} == row.command_names, name
        with state_store().read() as con:
            summary = con.execute(
                "SELECT tool_calls, tool_errors FROM usage_session_summary WHERE path = ?", [path]
            ).fetchone()
        assert summary == (row.tool_uses, row.tool_errors), name
    attributed = {(e[3], e[4], e[5]) for e in events if e[1] in ("skill", "slash_command", "subagent")}
    assert ("handgemacht:commit", "curated", f"{slug}/handgemacht") in attributed
    assert ("elixir:hex-docs-search", "curated", f"{slug}/elixir") in attributed
    assert ("/handgemacht:create-beads", "curated", f"{slug}/handgemacht") in attributed
    assert ("/compact", "builtin", "") in attributed and ("/mcp", "builtin", "") in attributed
    assert ("Explore", "builtin", "") in attributed
    with state_store().read() as con:
        plugin_rows = con.execute(
            "SELECT parent, name, calls, users FROM usage_item_window"
            " WHERE period = 'last_30d' AND item_type = 'plugin'"
        ).fetchall()
        daily = con.execute("SELECT sum(calls) FROM usage_item_daily WHERE item_type = 'plugin'").fetchone()[0]
    # The fixture sessions are from 2026-02; the 30-day window counts from now.
    assert daily == 3, _events("parent <> ''")
    assert all(r[0].startswith(f"{slug}/") for r in plugin_rows)
    # A second run writes nothing.
    with state_store().read() as con:
        before = con.execute("SELECT max(processed_at), count(*) FROM usage_file_state").fetchone()
    assert process_sessions().files == 0
    with state_store().read() as con:
        assert con.execute("SELECT max(processed_at), count(*) FROM usage_file_state").fetchone() == before


def test_unknown_prefix_is_unattributed_with_its_prefix(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("analyst@example.com")
    data = (TRANSCRIPTS / "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl").read_bytes()
    assert upload(client, token, "8463c716-a2ea-4c14-9efa-87158ebd9f20", data).status_code == 201
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    with state_store().read() as con:
        row = con.execute(
            "SELECT source, parent, parent_name, prefix, item_name FROM usage_events WHERE event_type = 'skill'"
        ).fetchone()
    assert row == ("unattributed", "", "handgemacht", "handgemacht", "commit")


def test_a_changed_file_replaces_its_rows(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("analyst@example.com")
    sid = "d6e0bada-1959-4eec-a9d2-0bfade768d8f"
    data = (TRANSCRIPTS / "tool_heavy.jsonl").read_bytes()
    lines = data.rstrip(b"\n").split(b"\n")
    half = b"\n".join(lines[:20]) + b"\n"
    upload(client, token, sid, half)
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    first = len(_events())
    upload(client, token, sid, data)
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    assert len(_events()) == 7 > first  # 6 tool calls and /mcp, once each


def test_a_failing_file_is_parked_after_three_tries_and_others_go_on(  # type: ignore[no-untyped-def]
    app: Flask, client, auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = auth.token("analyst@example.com")
    short = (TRANSCRIPTS / "short.jsonl").read_bytes()
    heavy = (TRANSCRIPTS / "tool_heavy.jsonl").read_bytes()
    real_parse = processor.parse

    def flaky(data: bytes):  # type: ignore[no-untyped-def]
        if data == short:
            raise ValueError("the parser choked")
        return real_parse(data)

    monkeypatch.setattr(processor, "parse", flaky)
    upload(client, token, "55604662-cf2a-4331-851a-ec234028f8ca", short)
    upload(client, token, "d6e0bada-1959-4eec-a9d2-0bfade768d8f", heavy)
    app.extensions["agnes_jobs"].wait_idle()
    for _ in range(3):
        process_sessions()
    assert process_sessions().failed == 0  # parked: no longer tried
    with state_store().read() as con:
        [parked] = telemetry.list_parked(con)
    assert parked.path.endswith("55604662-cf2a-4331-851a-ec234028f8ca.jsonl")
    assert parked.attempts == 3 and parked.last_error == "the parser choked"
    assert len(_events()) == 7
    # New bytes unpark it.
    monkeypatch.setattr(processor, "parse", real_parse)
    upload(client, token, "55604662-cf2a-4331-851a-ec234028f8ca", short + b"\n")
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    with state_store().read() as con:
        assert telemetry.list_parked(con) == []
    assert len(_events()) == 9


def test_uploaded_damaged_copies_are_processed_with_their_bad_lines(app: Flask, client, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.telemetry.conftest import damaged_copies

    token = auth.token("analyst@example.com")
    copies = damaged_copies(TRANSCRIPTS / "tool_heavy.jsonl", tmp_path / "damaged")
    ids = {
        "truncated": "00000000-0000-4000-8000-000000000001",
        "garbage": "00000000-0000-4000-8000-000000000002",
        "bad_utf8": "00000000-0000-4000-8000-000000000003",
    }
    for kind, path in copies.items():
        assert upload(client, token, ids[kind], path.read_bytes(), gzipped=True).status_code == 201, kind
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    with state_store().read() as con:
        states = dict(
            con.execute(
                "SELECT split_part(path, '/', 2), bad_lines FROM usage_file_state WHERE last_error IS NULL"
            ).fetchall()
        )
        events = dict(con.execute("SELECT session_id, count(*) FROM usage_events GROUP BY ALL").fetchall())
    assert states == {f"{ids['truncated']}.jsonl": 1, f"{ids['garbage']}.jsonl": 3, f"{ids['bad_utf8']}.jsonl": 1}
    assert events[ids["garbage"]] == events[ids["bad_utf8"]] == 7


def test_same_named_plugins_of_two_marketplaces_keep_separate_figures(app: Flask, client, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Established defect 5: curated telemetry keyed by the plain plugin name mixed two marketplaces."""
    admin = auth.token("admin@example.com", admin=True)
    synced_usage_marketplace(client, admin, tmp_path, slug="first")
    synced_usage_marketplace(client, admin, tmp_path, slug="second")
    data = (TRANSCRIPTS / "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl").read_bytes()
    for email, slug in (("ana@example.com", "first"), ("bo@example.com", "second")):
        token = auth.token(email)
        assert (
            client.post(
                f"/api/marketplace/curated/{slug}/handgemacht/install", headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
        assert upload(client, token, "8463c716-a2ea-4c14-9efa-87158ebd9f20", data, gzipped=True).status_code == 201
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    with state_store().read() as con:
        rows = con.execute(
            "SELECT u.email, e.parent FROM usage_events e JOIN users u ON u.id = e.user_id WHERE e.event_type = 'skill'"
        ).fetchall()
    assert sorted(rows) == [("ana@example.com", "first/handgemacht"), ("bo@example.com", "second/handgemacht")]
