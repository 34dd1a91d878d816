"""End to end with real parts: a fixture marketplace in a local git repository, registered and
granted with the ``agnes`` CLI, synced by a real RQ worker, served on a loopback port, and used by
the real Claude Code CLI (``claude plugin ...``) with ``HOME`` in a temp dir.

Needs ``scripts/install-test-tools.sh`` (Claude Code in ``.tools``); skipped without it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, run_cli, run_rq_jobs
from tests.marketplace.conftest import fixture_repo

CLAUDE = ROOT / ".tools" / "node_modules" / ".bin" / "claude"
PLUGIN = "accessibility-compliance"  # wshobson-agents: 2 skills, 1 agent, 1 command, version 1.2.3
ANALYST = "analyst@example.com"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code not installed (scripts/install-test-tools.sh)"),
]


def claude_env(home: Path) -> dict[str, str]:
    """Claude Code with a private HOME, no network chatter, and no system git config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "ANTHROPIC_", "CLAUDE", "GIT_"))}
    env.update(
        HOME=str(home),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        GIT_CONFIG_NOSYSTEM="1",  # this machine's /etc/gitconfig names a cloud credential helper
        GIT_TERMINAL_PROMPT="0",
        PYTHONPATH=str(ROOT),
        AGNES_CONFIG_DIR=str(home / ".config" / "agnes"),
    )
    return env


def claude(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(CLAUDE), "plugin", *args],
        env=claude_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return result


def available(home: Path) -> set[str]:
    listed = claude(home, "list", "--json", "--available")
    assert listed.returncode == 0, listed.stderr
    return {p["pluginId"] for p in json.loads(listed.stdout)["available"]}


def files_under(home: Path) -> str:
    text = []
    for path in (home / ".claude").rglob("*"):
        if path.is_file() and path.stat().st_size < 2_000_000:
            text.append(path.read_text(errors="replace"))
    return "\n".join(text)


def test_claude_code_installs_a_granted_subscribed_plugin(rq_live_server, rq_app, tmp_path):  # type: ignore[no-untyped-def]
    from agnes.auth.pat import create_pat
    from agnes.people import create_user
    from agnes.state import state_store

    url = rq_live_server.url
    with rq_app.app_context():
        from agnes.models import users

        with state_store().read() as con:
            admin = users.get_user_by_email(con, "admin@example.com")
        _, admin_token = create_pat(admin.id, "e2e-admin", 1)
        analyst = create_user(ANALYST)
        _, token = create_pat(analyst.id, "e2e", 1)
    admin_env = cli_env(url, admin_token, tmp_path / "admin-home")

    # The admin registers the fixture marketplace; a real RQ worker syncs it.
    repo = fixture_repo("wshobson-agents", tmp_path / "wshobson")
    added = run_cli(["admin", "marketplace", "add", "wsh", str(repo), "--name", "Workflows"], admin_env)
    assert added.returncode == 0, added.stderr
    run_rq_jobs(rq_app)
    listed = json.loads(run_cli(["admin", "marketplace", "list", "--json"], admin_env).stdout)
    assert listed[0]["plugin_count"] == 92 and listed[0]["last_error"] is None

    # Grant the plugin to a group the analyst is in; the analyst subscribes.
    for args in (
        ["admin", "group", "create", "Analysts"],
        ["admin", "group", "add-member", "Analysts", ANALYST],
        ["admin", "grant", "create", "Analysts", "marketplace_plugin", f"wsh/{PLUGIN}"],
    ):
        done = run_cli(args, admin_env)
        assert done.returncode == 0, done.stderr
    home = tmp_path / "analyst-home"
    login = run_cli(
        ["login", "--server", url, "--token", token], {**cli_env(url, token, home), "AGNES_TOKEN": "", "AGNES_URL": ""}
    )
    assert login.returncode == 0, login.stderr
    env = claude_env(home)
    mine = run_cli(["marketplace", "install", f"wsh/{PLUGIN}"], env)
    assert mine.returncode == 0, mine.stderr

    # agnes marketplace setup registers Agnes in Claude Code through a git credential helper.
    printed = run_cli(["marketplace", "setup", "--print", "--claude", str(CLAUDE)], env)
    assert f"plugin marketplace add {url}/marketplace.git" in printed.stdout and token not in printed.stdout
    setup = run_cli(["marketplace", "setup", "--claude", str(CLAUDE)], env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert f"wsh-{PLUGIN}" not in available(home) and f"{PLUGIN}@agnes" in available(home)
    again = run_cli(["marketplace", "setup", "--claude", str(CLAUDE)], env)  # re-running it refreshes
    assert again.returncode == 0, again.stdout + again.stderr
    installed = claude(home, "install", f"{PLUGIN}@agnes")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    cache = home / ".claude" / "plugins" / "cache" / "agnes" / PLUGIN / "1.2.3"
    assert (cache / "skills" / "wcag-audit-patterns" / "SKILL.md").is_file()
    assert (cache / "agents" / "ui-visual-validator.md").is_file()
    assert token not in files_under(home)  # the PAT stays in the agnes config and the helper

    # Unsubscribing removes it from what Claude Code is offered after a marketplace update.
    gone = run_cli(["marketplace", "uninstall", f"wsh/{PLUGIN}"], env)
    assert gone.returncode == 0, gone.stderr
    updated = claude(home, "marketplace", "update", "agnes")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    served = json.loads(
        (home / ".claude" / "plugins" / "marketplaces" / "agnes" / ".claude-plugin" / "marketplace.json").read_text()
    )
    assert served["plugins"] == []
    assert f"{PLUGIN}@agnes" not in available(home)

    # Re-subscribe, then the two other URL forms: PAT in the URL, and the trailing slash.
    assert run_cli(["marketplace", "install", f"wsh/{PLUGIN}"], env).returncode == 0
    host = url.removeprefix("http://")
    for form, git_url in (
        ("pat", f"http://x:{token}@{host}/marketplace.git"),
        ("slash", f"http://x:{token}@{host}/marketplace.git/"),
    ):
        other = tmp_path / f"home-{form}"
        other.mkdir()
        added = claude(other, "marketplace", "add", git_url)
        assert added.returncode == 0, f"{form}: {added.stdout}{added.stderr}"
        assert f"{PLUGIN}@agnes" in available(other), form
        installed = claude(other, "install", f"{PLUGIN}@agnes")
        assert installed.returncode == 0, f"{form}: {installed.stdout}{installed.stderr}"
        found = list((other / ".claude" / "plugins" / "cache" / "agnes" / PLUGIN).rglob("wcag-audit-patterns/SKILL.md"))
        assert found, form
    # setup refuses to silently replace a marketplace 'agnes' added another way (and hides its token)
    clash = run_cli(
        ["marketplace", "setup", "--claude", str(CLAUDE)],
        {**claude_env(tmp_path / "home-pat"), "AGNES_URL": url, "AGNES_TOKEN": token},
    )
    assert clash.returncode == 1 and "already has a marketplace named 'agnes'" in clash.stderr
    assert token not in clash.stderr


def test_page_version_and_remove_guidance_match_claude_code(live_server, client, auth, tmp_path):  # type: ignore[no-untyped-def]
    """Issue 15: the version a plugin page shows is the one Claude Code installs (plugin.json's 2.0.0,
    not the entry's 1.0.0), and after "Remove from stack" the printed commands leave ``claude plugin
    list`` without a plugin that "failed to load"."""
    from bs4 import BeautifulSoup

    from tests.conftest import bearer, csrf_token
    from tests.marketplace.conftest import commit_all, register, sync_now, write_manifest, write_plugin

    url = live_server.url
    admin = bearer(auth.token("admin@example.com", admin=True))
    repo = tmp_path / "market"
    write_plugin(repo / "plugins" / "guard", "guard", version="2.0.0")
    write_manifest(repo, [{"name": "guard", "source": "./plugins/guard", "version": "1.0.0"}])
    commit_all(repo)
    register(client, admin, "acme", repo)
    sync_now("acme")
    grant = {"group_id": "everyone", "resource_type": "marketplace_plugin", "resource_id": "acme/guard"}
    assert client.post("/api/admin/grants", json=grant, headers=admin).status_code == 201
    token = auth.token(ANALYST)
    home = tmp_path / "analyst-home"
    login = run_cli(
        ["login", "--server", url, "--token", token], {**cli_env(url, token, home), "AGNES_TOKEN": "", "AGNES_URL": ""}
    )
    assert login.returncode == 0, login.stderr
    env = claude_env(home)
    added = run_cli(["marketplace", "install", "acme/guard"], env)
    assert added.returncode == 0, added.stderr
    setup = run_cli(["marketplace", "setup", "--claude", str(CLAUDE)], env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    for line in [ln.strip() for ln in added.stdout.splitlines() if ln.strip().startswith("claude ")]:
        done = claude(home, *line.split()[2:])  # exactly what the CLI printed
        assert done.returncode == 0, f"{line}: {done.stdout}{done.stderr}"
    installed = [p.name for p in (home / ".claude" / "plugins" / "cache" / "agnes" / "guard").iterdir()]
    auth.login(ANALYST)
    page = BeautifulSoup(client.get("/marketplace/curated/acme/guard").data, "html.parser")
    assert installed == ["2.0.0"] and "Version 2.0.0" in page.select_one("#plugin-meta").get_text(" ", strip=True)

    # Remove from stack on the page; follow the commands it prints.
    form = csrf_token(client, "/marketplace/curated/acme/guard")
    panel = client.post(
        "/marketplace/curated/acme/guard/remove", data={"csrf_token": form}, headers={"HX-Request": "true"}
    )
    commands = BeautifulSoup(panel.data, "html.parser").select_one("#claude-commands").get_text().splitlines()
    assert commands == ["claude plugin uninstall guard@agnes", "claude plugin marketplace update agnes"]
    for line in commands:
        done = claude(home, *line.split()[2:])
        assert done.returncode == 0, f"{line}: {done.stdout}{done.stderr}"
    listed = claude(home, "list")
    assert listed.returncode == 0, listed.stderr
    assert "guard" not in listed.stdout and "failed" not in (listed.stdout + listed.stderr).lower(), listed.stdout
