"""End to end with the real Claude Code CLI: managed settings Agnes generated, installed where
Claude Code reads them (``/etc/claude-code`` inside a private mount namespace, over the real
``/etc``, which is never touched), a loopback stub of the Messages API answering with a ``Skill``
tool use, Claude Code's OpenTelemetry export arriving at Agnes, and ``agnes push`` uploading the
transcript of the same session (one use, not two).

Needs Claude Code in ``.tools`` (``scripts/install-test-tools.sh``) and ``unshare`` with overlay
mounts (root, or user namespaces); skipped otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.claude_code.conftest import synced_marketplace
from tests.claude_code.messages_stub import MessagesStub
from tests.conftest import ROOT, cli_env, run_cli
from tests.marketplace.conftest import small_marketplace, sync_now

CLAUDE = ROOT / ".tools" / "node_modules" / ".bin" / "claude"
ANALYST = "ana@example.com"
INVALID = "Managed settings contain invalid entries"


def _namespace_prefix(etc_layer: Path) -> list[str]:
    """A command prefix running its command with ``etc_layer`` laid over ``/etc`` (read-only
    overlay, private mount namespace: the machine's /etc and its policy files stay as they are)."""
    script = 'mount -t overlay overlay -o "lowerdir=$0:/etc" /etc && exec "$@"'
    user_ns = [] if _is_root() else ["--map-root-user"]
    return ["unshare", "--mount", "--propagation", "private", *user_ns, "sh", "-c", script, str(etc_layer)]


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def _namespaces_work(tmp: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    layer = tmp / "probe" / "claude-code"
    layer.mkdir(parents=True)
    (layer / "probe").write_text("ok")
    done = subprocess.run(
        [*_namespace_prefix(layer.parent), "cat", "/etc/claude-code/probe"], capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout == "ok"


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code not installed (scripts/install-test-tools.sh)"),
]


def _claude_env(home: Path, stub_url: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "ANTHROPIC_", "CLAUDE", "GIT_", "OTEL_"))}
    env.update(
        HOME=str(home),
        ANTHROPIC_API_KEY="sk-ant-test",  # the stub accepts anything
        ANTHROPIC_BASE_URL=stub_url,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        GIT_CONFIG_NOSYSTEM="1",  # this machine's /etc/gitconfig names a cloud credential helper
        GIT_TERMINAL_PROMPT="0",
        PYTHONPATH=str(ROOT),  # for the helpers: agnes git-credential and agnes otel-headers
        AGNES_CONFIG_DIR=str(home / ".config" / "agnes"),
    )
    return env


def _rows(sql: str, *params: object) -> list[tuple]:  # type: ignore[type-arg]
    from agnes.state import state_store

    with state_store().read() as con:
        return con.execute(sql, list(params)).fetchall()


def test_managed_settings_otlp_and_fleet_with_the_real_claude_code(app, client, live_server, tmp_path, auth) -> None:  # type: ignore[no-untyped-def]
    if not _namespaces_work(tmp_path):
        pytest.skip("no private mount namespace with overlay (unshare) on this machine")
    from agnes.marketplace import system

    # An admin serves acme/alpha (skill alpha-skill) and marks it system: every group must have it.
    admin_token = auth.token("admin@example.com", admin=True)
    repo = tmp_path / "acme-repo"
    synced_marketplace(client, admin_token, repo)
    system.set_system("acme", "alpha", True, actor_id=None)
    analyst_token = auth.token(ANALYST)
    analyst_id = auth.user(ANALYST)
    url = live_server.url
    # Claude Code runs the helper through a shell; this checkout's CLI stands in for `agnes`.
    app.config["AGNES_OTEL_HEADERS_HELPER"] = f"{sys.executable} -P -m cli.main otel-headers"

    # The admin writes the group's file with the CLI into a layer laid over /etc.
    etc_layer = tmp_path / "etc-layer"
    (etc_layer / "claude-code").mkdir(parents=True)
    policy = etc_layer / "claude-code" / "managed-settings.json"
    admin_env = cli_env(url, admin_token, tmp_path / "admin-home")
    wrote = run_cli(["admin", "claude-code", "settings", "--group", "Everyone", "--out", str(policy)], admin_env)
    assert wrote.returncode == 0, wrote.stderr
    assert json.loads(policy.read_text())["enabledPlugins"] == {"alpha@agnes": True}

    # The analyst logs in once (token stored, git credential helper installed).
    home = tmp_path / "ana-home"
    home.mkdir()
    stub = MessagesStub("alpha:alpha-skill")
    env = _claude_env(home, stub.url)
    login = run_cli(["login", "--server", url, "--token", analyst_token], env)
    assert login.returncode == 0, login.stderr
    work = tmp_path / "work"
    work.mkdir()

    def claude(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_namespace_prefix(etc_layer), str(CLAUDE), *args],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )

    def run_skill() -> dict:  # type: ignore[type-arg]
        done = claude(
            "-p", "Check this page for accessibility problems.", "--output-format", "json", "--allowedTools", "Skill"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert INVALID not in done.stderr + done.stdout  # Claude Code's own validation of the file
        return json.loads(done.stdout)

    def push(session_id: str) -> int:
        """``agnes push`` of one session as the SessionEnd hook runs it, then a processing run;
        returns the transcript's skill uses."""
        from agnes.telemetry.processor import process_sessions

        transcript = next(home.glob(f".claude/projects/*/{session_id}.jsonl"))
        hook = json.dumps(
            {"session_id": session_id, "transcript_path": str(transcript), "hook_event_name": "SessionEnd"}
        )
        pushed = subprocess.run(
            [sys.executable, "-m", "cli.main", "push", "--quiet"],
            env=env,
            cwd=work,
            input=hook,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert pushed.returncode == 0, pushed.stdout + pushed.stderr
        process_sessions()
        found = _rows("SELECT count(*) FROM usage_events WHERE session_id = ? AND event_type = 'skill'", session_id)
        return int(found[0][0])

    def skill_figures() -> tuple[int, dict]:  # type: ignore[type-arg]
        """The skill page's uses over 30 days and its invocations by trigger, as the analyst sees them."""
        page = client.get(
            "/api/marketplace/curated/acme/alpha/skill/alpha-skill",
            headers={"Authorization": f"Bearer {analyst_token}"},
        )
        assert page.status_code == 200, page.get_json()
        data = page.get_json()
        return data["usage"]["calls_30d"], data["invocations"]

    try:
        # Claude Code 2.1 does not register extraKnownMarketplaces in headless mode: one
        # `claude plugin marketplace add` (documented in docs/claude-code.md); it then installs
        # the required plugin by itself (scope "managed").
        added = claude("plugin", "marketplace", "add", f"{url}/marketplace.git")
        assert added.returncode == 0, added.stdout + added.stderr
        assert INVALID not in added.stdout + added.stderr
        # A session installs the plugins the managed settings enable as it starts, and uses the
        # plugins installed before it started: the first run installs, the next one has the skill.
        warm_up = run_skill()
        assert stub.tool_uses == 0 and warm_up["is_error"] is False
        listed = claude("plugin", "list")
        assert listed.returncode == 0 and "alpha@agnes" in listed.stdout, listed.stdout + listed.stderr
        result = run_skill()
        assert stub.tool_uses >= 1 and result["is_error"] is False
        installed = json.loads((home / ".claude" / "plugins" / "installed_plugins.json").read_text())["plugins"]
        assert installed["alpha@agnes"][0]["scope"] == "managed" and installed["alpha@agnes"][0]["version"] == "1.0.0"

        skills = _rows(
            "SELECT user_id, skill_name, invocation_trigger, ref_marketplace, ref_plugin, session_id"
            " FROM otel_events WHERE event_name = 'skill_activated'"
        )
        assert skills == [(analyst_id, "alpha:alpha-skill", "claude-proactive", "acme", "alpha", result["session_id"])]
        # `agnes push` uploads the transcript (as the SessionEnd hook does); once processed, Agnes
        # shows one use of the skill, not two, with the trigger only OpenTelemetry knows.
        assert push(result["session_id"]) == 1
        assert _rows("SELECT prompt_id FROM usage_events WHERE event_type = 'skill'") == _rows(
            "SELECT prompt_id FROM otel_events WHERE event_name = 'skill_activated'"
        )
        assert skill_figures() == (1, {"by_claude": 1, "typed": 0, "other": 0, "days": 30})
        admin = {"Authorization": f"Bearer {admin_token}"}
        fleet = client.get("/api/admin/claude-code", headers=admin).get_json()["fleet"]
        alpha = next(p for p in fleet["plugins"] if p["id"] == "acme/alpha")
        assert alpha["version"] == "1.0.0" and alpha["current"] == 1 and alpha["behind"] == []
        assert ANALYST not in alpha["not_loaded"]

        # A new version is served: until that Claude Code reloads, the analyst is behind.
        small_marketplace(repo, names=("alpha", "beta"), version="1.1.0")
        sync_now("acme")
        fleet = client.get("/api/admin/claude-code", headers=admin).get_json()["fleet"]
        alpha = next(p for p in fleet["plugins"] if p["id"] == "acme/alpha")
        assert alpha["version"] == "1.1.0" and alpha["current"] == 0
        assert [(b["email"], b["loaded_version"]) for b in alpha["behind"]] == [(ANALYST, "1.0.0")]

        # Claude Code 2.1 refreshes auto-update marketplaces only after a random delay that a
        # headless run does not live to see, and `marketplace update` leaves installed plugins as
        # they are: the documented refresh is both commands, then a new session.
        updated = claude("plugin", "marketplace", "update", "agnes")
        assert updated.returncode == 0, updated.stdout + updated.stderr
        run_skill()
        fleet = client.get("/api/admin/claude-code", headers=admin).get_json()["fleet"]
        assert next(p for p in fleet["plugins"] if p["id"] == "acme/alpha")["current"] == 0  # still behind
        plugin_updated = claude("plugin", "update", "alpha@agnes", "--scope", "managed")
        assert plugin_updated.returncode == 0, plugin_updated.stdout + plugin_updated.stderr
        last = run_skill()
        fleet = client.get("/api/admin/claude-code", headers=admin).get_json()["fleet"]
        alpha = next(p for p in fleet["plugins"] if p["id"] == "acme/alpha")
        assert alpha["current"] == 1 and alpha["behind"] == [], alpha
        assert ANALYST in alpha["current_users"]
        assert analyst_token not in policy.read_text()
        # Three uses so far, two known by OpenTelemetry only: pushing the last session's
        # transcript makes it three, not four.
        assert push(last["session_id"]) == 1
        assert skill_figures() == (3, {"by_claude": 3, "typed": 0, "other": 0, "days": 30})

        # The validation above can fail: a file with a wrong type is reported by Claude Code itself.
        policy.write_text(json.dumps({**json.loads(policy.read_text()), "enabledPlugins": ["alpha@agnes"]}))
        broken = claude("-p", "hello", "--output-format", "json")
        assert INVALID in broken.stdout + broken.stderr and "enabledPlugins" in broken.stdout + broken.stderr
    finally:
        stub.stop()
