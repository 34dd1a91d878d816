"""The marketplace commands of the ``agnes`` CLI against a live server (embedded jobs): admin
commands, the analyst's stack, setup and the git credential helper, search and show."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, run_cli
from tests.marketplace.conftest import SYSTEM, register, small_marketplace, sync_now

ANALYST = "analyst@example.com"


def test_admin_marketplace_commands(live_server, auth, tmp_path):  # type: ignore[no-untyped-def]
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path / "home")
    repo = small_marketplace(tmp_path / "repo", ("alpha", "beta"))
    added = run_cli(
        ["admin", "marketplace", "add", "acme", str(repo), "--name", "Acme", "--no-sync", "--token-stdin"],
        {**env},
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert "Registered Acme (acme)" in added.stdout
    synced = run_cli(["admin", "marketplace", "sync", "acme", "--wait"], env)
    assert synced.returncode == 0, synced.stderr
    assert "acme: 2 plugins" in synced.stdout and "added alpha, beta" in synced.stdout
    listed = json.loads(run_cli(["admin", "marketplace", "list", "--json"], env).stdout)
    assert [(m["id"], m["plugin_count"], m["has_token"]) for m in listed] == [("acme", 2, False)]
    plugins = run_cli(["admin", "marketplace", "plugins", "acme"], env)
    assert "acme/alpha" in plugins.stdout and "acme/beta" in plugins.stdout
    bad = run_cli(["admin", "marketplace", "add", "Bad Slug", str(repo)], env)
    assert bad.returncode == 1 and "slug" in bad.stderr
    # A missing path is refused at registration (issue 15), not a sync failure later.
    missing = run_cli(["admin", "marketplace", "add", "gone", str(tmp_path / "missing"), "--no-sync"], env)
    assert missing.returncode == 1 and "does not exist on the server" in missing.stderr
    other = small_marketplace(tmp_path / "other", ("gamma",))
    broken = run_cli(["admin", "marketplace", "add", "gone", str(other), "--no-sync"], env)
    assert broken.returncode == 0
    shutil.rmtree(other)  # the repository goes away after registration: the sync fails
    failed = run_cli(["admin", "marketplace", "sync", "gone", "--wait"], env)
    assert failed.returncode == 1 and "not found" in failed.stderr
    removed = run_cli(["admin", "marketplace", "remove", "acme", "--purge", "--yes"], env)
    assert removed.returncode == 0, removed.stderr
    assert [m["id"] for m in json.loads(run_cli(["admin", "marketplace", "list", "--json"], env).stdout)] == ["gone"]


def test_analyst_stack_commands(live_server, client, auth, tmp_path):  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {auth.token('admin@example.com', admin=True)}"}
    register(client, admin, "acme", small_marketplace(tmp_path / "repo", ("alpha", "beta")))
    sync_now("acme")
    client.post(
        "/api/admin/grants",
        json={"group_id": "everyone", "resource_type": "marketplace_plugin", "resource_id": "acme/alpha"},
        headers=admin,
    )
    env = cli_env(live_server.url, auth.token(ANALYST), tmp_path / "home")
    assert run_cli(["marketplace", "install", "acme/beta"], env).returncode == 1  # not granted
    installed = run_cli(["marketplace", "install", "acme/alpha"], env)
    assert installed.returncode == 0 and "claude plugin marketplace update agnes" in installed.stdout
    assert "claude plugin install alpha@agnes" in installed.stdout  # the exact name (issue 15)
    stack = json.loads(run_cli(["marketplace", "list", "--json"], env).stdout)
    assert [(p["id"], p["subscribed"]) for p in stack] == [("acme/alpha", True)]
    info = json.loads(run_cli(["marketplace", "info", "--json"], env).stdout)
    assert [p["prefixed_name"] for p in info["plugins"]] == ["acme-alpha"]
    uninstalled = run_cli(["marketplace", "uninstall", "acme/alpha"], env)
    assert uninstalled.returncode == 0 and "claude plugin uninstall alpha@agnes" in uninstalled.stdout
    assert json.loads(run_cli(["marketplace", "info", "--json"], env).stdout)["plugins"] == []
    # An id without a slash names a flea-market entry: an unknown one is an error, not a usage error.
    unknown = run_cli(["marketplace", "install", "no-slash"], env)
    assert unknown.returncode == 1 and "no flea-market entry 'no-slash'" in unknown.stderr


def test_setup_print_and_git_credential_helper(live_server, auth, tmp_path):  # type: ignore[no-untyped-def]
    token = auth.token(ANALYST)
    home = tmp_path / "home"
    home.mkdir()
    env = {**cli_env(live_server.url, token, home), "GIT_CONFIG_NOSYSTEM": "1"}
    printed = run_cli(["marketplace", "setup", "--print"], env)
    assert printed.returncode == 0
    host = live_server.url.removeprefix("http://")
    assert f"credential.http://{host}.helper" in printed.stdout
    assert f"claude plugin marketplace add {live_server.url}/marketplace.git" in printed.stdout
    assert token not in printed.stdout and not (home / ".gitconfig").exists()  # --print changes nothing
    # setup without Claude Code installed still configures git, then says what to run
    setup = run_cli(["marketplace", "setup", "--claude", str(tmp_path / "no-claude")], env)
    assert setup.returncode == 1 and "was not found" in setup.stderr
    helpers = subprocess.run(
        ["git", "config", "--global", "--get-all", f"credential.http://{host}.helper"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert helpers[0] == "" and helpers[1].endswith("-m cli.main git-credential")
    assert token not in (home / ".gitconfig").read_text()

    def ask(request: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "git-credential", "get"],
            input=request,
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout

    assert ask(f"protocol=http\nhost={host}\n") == f"username=agnes\npassword={token}\n"
    assert ask("protocol=https\nhost=github.com\n") == ""  # never handed to another host
    assert ask(f"protocol=https\nhost={host}\n") == ""
    # and git itself gets the token from it
    filled = subprocess.run(
        ["git", "credential", "fill"],
        input=f"url={live_server.url}/marketplace.git\n\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert f"password={token}" in filled


# -- CLI: the git credential helper must not import code from git's working directory --------------


def test_git_credential_helper_ignores_a_cli_package_in_the_working_directory(tmp_path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir()
    server = "http://agnes.test:8080"
    env = {**cli_env(server, "agnes_pat_secret", home), "GIT_CONFIG_NOSYSTEM": "1"}
    assert run_cli(["marketplace", "setup", "--claude", str(tmp_path / "no-claude")], env).returncode == 1
    project = tmp_path / "project"  # any repository with its own top-level cli package
    (project / "cli").mkdir(parents=True)
    (project / "cli" / "__init__.py").write_text("")
    marker = tmp_path / "ran-project-code"
    (project / "cli" / "main.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    filled = subprocess.run(
        ["git", "credential", "fill"],
        input=f"url={server}/marketplace.git\n\n",
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert not marker.exists()
    assert "password=agnes_pat_secret" in filled.stdout


# -- search and show, over the synced fixture marketplaces --------------------------------------


@pytest.mark.synced_marketplaces
def test_search_and_show(live_server, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(live_server.url, auth.token("ana@example.com"), tmp_path / "home")

    found = run_cli(["marketplace", "search", "python", "--sort", "name"], env)
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0].split()[:3] == ["PLUGIN", "VERSION", "CATEGORY"]
    assert [line.split()[0] for line in lines[2:]] == ["team/python-development", "wshobson/python-development"]

    as_json = run_cli(["marketplace", "search", "--tab", "my", "--json"], env)
    data = json.loads(as_json.stdout)
    assert [i["id"] for i in data["items"]] == [SYSTEM] and data["items"][0]["in_stack"] is True

    paged = run_cli(["marketplace", "search", "--limit", "2"], env)
    assert "2 of 8 (page 1 of 4" in paged.stdout

    shown = run_cli(["marketplace", "show", "team/team-tools"], env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "team-tools 2.0.0"
    assert "Stack: not in your stack (add with 'agnes marketplace install team/team-tools'" in shown.stdout
    assert "  /deploy" in shown.stdout.splitlines() and "  warehouse (http) https://mcp.example" in shown.stdout

    denied = run_cli(["marketplace", "show", "wshobson/ui-design"], env)
    assert denied.returncode == 1 and "granted" in denied.stderr
    bad = run_cli(["marketplace", "show", "no-slash"], env)
    assert bad.returncode == 1 and "no-slash" in bad.stderr
