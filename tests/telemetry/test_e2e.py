"""End to end on real parts: a synced and granted marketplace, ``agnes push`` from SessionEnd hooks
against a live server on Redis, a real ``python worker.py`` processing the uploads, per-file
counts equal to the fixtures' manifest, attribution, and a second push that writes nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from agnes.state import state_store
from tests.conftest import bearer, cli_env
from tests.data.test_e2e import run_worker_process
from tests.telemetry.conftest import WITH_SUBAGENTS, manifest, synced_usage_marketplace
from tests.telemetry.test_cli_push import agnes, hook_payload

pytestmark = pytest.mark.slow


def test_push_then_a_real_worker_processes(rq_app, rq_live_server, auth, sessions_copy: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = rq_app.test_client()
    slug = synced_usage_marketplace(client, auth.token("admin@example.com", admin=True), tmp_path)
    token = auth.token("analyst@example.com")
    user_id = auth.user("analyst@example.com")
    for plugin in ("handgemacht", "elixir"):
        assert (
            client.post(f"/api/marketplace/curated/{slug}/{plugin}/install", headers=bearer(token)).status_code == 200
        )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    env = cli_env(rq_live_server.url, token, tmp_path / "home")
    sessions = [*WITH_SUBAGENTS, "491e126e-1e71-469c-ade2-fcc8af567c74"]
    files = {s: sessions_copy / f"{s}.jsonl" for s in WITH_SUBAGENTS}
    files["491e126e-1e71-469c-ade2-fcc8af567c74"] = sessions_copy / "subagent.jsonl"
    for session_id in sessions:
        run = agnes(["push", "--quiet"], env, workspace, hook_payload(session_id, files[session_id], workspace))
        assert run.returncode == 0, run.stderr
    status = json.loads(agnes(["push", "--status", "--json"], env, workspace).stdout)
    assert status["uploaded"] == [str(files["491e126e-1e71-469c-ade2-fcc8af567c74"])] and status["errors"] == []
    with state_store().read() as con:  # 4 main files, 3 subagents (no agent-acompact-*)
        assert con.execute("SELECT count(*) FROM session_files").fetchone()[0] == 7

    run_worker_process(rq_app)

    with state_store().read() as con:
        rows = con.execute("SELECT path, event_type, tool_name, name, source, parent FROM usage_events").fetchall()
        parked = con.execute("SELECT count(*) FROM usage_file_state WHERE last_error IS NOT NULL").fetchone()[0]
    assert parked == 0
    by_path: dict[str, list[tuple]] = {}  # type: ignore[type-arg]
    for row in rows:
        by_path.setdefault(row[0], []).append(row)
    checked = 0
    for expected in manifest():
        if expected.path.parent.name == "subagents" and not expected.path.name.startswith("agent-acompact-"):
            path = f"{user_id}/{expected.session_id}/subagents/{expected.path.name}"
        elif expected.session_id in sessions and expected.path.parent.name == "transcripts":
            path = f"{user_id}/{expected.session_id}.jsonl"
        else:
            continue
        mine = by_path.get(path, [])
        assert Counter(r[2] for r in mine if r[1] != "slash_command") == expected.tools, path
        assert {r[3] for r in mine if r[1] == "skill"} == expected.skills, path
        assert {r[3] for r in mine if r[1] == "subagent"} == expected.subagent_types, path
        assert {r[3] for r in mine if r[1] == "slash_command"} == expected.command_names, path
        checked += 1
    assert checked == 7
    attributed = {(r[3], r[4], r[5]) for r in rows if r[1] in ("skill", "slash_command")}
    assert {
        ("handgemacht:commit", "curated", f"{slug}/handgemacht"),
        ("elixir:hex-docs-search", "curated", f"{slug}/elixir"),
        ("/handgemacht:create-beads", "curated", f"{slug}/handgemacht"),
        ("/compact", "builtin", ""),
    } <= attributed

    # Every session again: nothing is sent, nothing is rewritten.
    stored = sorted(
        (p, p.stat().st_mtime_ns) for p in (Path(rq_app.config["AGNES_DATA_DIR"]) / "sessions").rglob("*.jsonl")
    )
    for session_id in sessions:
        again = agnes(["push", "--json"], env, workspace, hook_payload(session_id, files[session_id], workspace))
        assert json.loads(again.stdout)["uploaded"] == []
    assert (
        sorted((p, p.stat().st_mtime_ns) for p in (Path(rq_app.config["AGNES_DATA_DIR"]) / "sessions").rglob("*.jsonl"))
        == stored
    )
