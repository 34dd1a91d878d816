"""Guidance that matches Claude Code (issue 15 item 4): the version Claude Code installs (plugin.json
wins over the marketplace entry), each hook's event, matcher, condition, timeout and mode, and the
exact commands after adding or removing a plugin (page fragment, API and CLI).

Before the fix the page said 1.0.0 while Claude Code installed 2.0.0, and after "Remove from stack"
nothing said to run ``claude plugin uninstall``, so Claude Code listed the plugin as "failed to load".
"""

from __future__ import annotations

import json
from pathlib import Path

from bs4 import BeautifulSoup

from tests.conftest import bearer, csrf_token
from tests.marketplace.conftest import commit_all, register, sync_now, write_manifest, write_plugin
from tests.marketplace.test_serving import grant

ANALYST = "ana@example.com"
HOOKS = {
    "hooks": {
        "PreToolUse": [
            {
                "matcher": "Bash",
                "hooks": [
                    {"type": "command", "command": "./check-commit.sh", "if": "Bash(git commit:*)", "timeout": 30},
                    {"type": "command", "command": "./check-push.sh", "if": "Bash(git push:*)", "async": True},
                ],
            }
        ]
    }
}


def _market(repo: Path) -> Path:
    write_plugin(repo / "plugins" / "guard", "guard", version="2.0.0", extra={"hooks/hooks.json": json.dumps(HOOKS)})
    write_manifest(repo, [{"name": "guard", "source": "./plugins/guard", "version": "1.0.0"}])
    commit_all(repo)
    return repo


def test_version_and_hooks_are_what_claude_code_gets(client, auth, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", _market(tmp_path / "repo"))
    sync_now("acme")
    grant(client, admin_headers, "everyone", "acme/guard")
    analyst = bearer(auth.token(ANALYST))
    body = client.get("/api/marketplace/curated/acme/guard", headers=analyst).get_json()
    assert body["version"] == "2.0.0"  # plugin.json's, not the entry's 1.0.0
    assert [(h["condition"], h["timeout"], h["async"]) for h in body["hooks"]] == [
        ("Bash(git commit:*)", 30, False),
        ("Bash(git push:*)", None, True),
    ]
    auth.login(ANALYST)
    page = BeautifulSoup(client.get("/marketplace/curated/acme/guard").data, "html.parser")
    assert "Version 2.0.0" in page.select_one("#plugin-meta").get_text(" ", strip=True)
    rows = page.select("#hooks tr.hook")
    assert [r.select_one(".hook-condition").get_text(strip=True) for r in rows] == [
        "Bash(git commit:*)",
        "Bash(git push:*)",
    ]
    assert [r.select_one(".hook-timeout").get_text(strip=True) for r in rows] == ["30 s", "default"]
    assert [r.select_one(".hook-mode").get_text(strip=True) for r in rows] == ["waits", "async (background)"]


def test_add_and_remove_say_exactly_what_to_run(client, auth, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", _market(tmp_path / "repo"))
    sync_now("acme")
    grant(client, admin_headers, "everyone", "acme/guard")
    auth.login(ANALYST)
    token = csrf_token(client, "/marketplace/curated/acme/guard")
    hx = {"HX-Request": "true"}
    added = BeautifulSoup(
        client.post("/marketplace/curated/acme/guard/install", data={"csrf_token": token}, headers=hx).data,
        "html.parser",
    )
    assert added.select_one("#claude-commands").get_text().splitlines() == [
        "claude plugin marketplace update agnes",
        "claude plugin install guard@agnes",
    ]
    removed = BeautifulSoup(
        client.post("/marketplace/curated/acme/guard/remove", data={"csrf_token": token}, headers=hx).data,
        "html.parser",
    )
    assert removed.select_one("#claude-commands").get_text().splitlines() == [
        "claude plugin uninstall guard@agnes",
        "claude plugin marketplace update agnes",
    ]
    # The JSON twins carry the same commands.
    analyst = bearer(auth.token(ANALYST))
    api = client.post("/api/marketplace/curated/acme/guard/install", headers=analyst).get_json()
    assert api["claude_commands"][-1] == "claude plugin install guard@agnes"
    api = client.delete("/api/marketplace/curated/acme/guard/install", headers=analyst).get_json()
    assert api["claude_commands"][0] == "claude plugin uninstall guard@agnes"


def test_the_admin_plugin_table_counts_hooks_and_links_names(client, auth, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", _market(tmp_path / "repo"))
    sync_now("acme")
    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get("/admin/marketplaces/acme").data, "html.parser")
    row = page.select_one("#plugin-guard")
    assert row.select_one(".plugin-hooks").get_text() == "2" and row.select_one(".plugin-mcp").get_text() == "0"
    assert row.select_one("a")["href"] == "/marketplace/curated/acme/guard"
    assert row.select_one(".status-ok").get_text() == "available"
    body = client.get("/api/marketplaces/acme", headers=admin_headers).get_json()
    assert (body["plugins"][0]["hooks"], body["plugins"][0]["mcp_servers"]) == (2, 0)
