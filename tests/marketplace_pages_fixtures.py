"""A data directory with real marketplaces synced once per test session, copied into each test.

* ``wshobson``: the wshobson-agents fixture (its local ``./plugins/x`` entries; the one remote
  entry is left out so nothing tries the network);
* ``team``: a small marketplace with a plugin named like one of wshobson's
  (``python-development``), a plugin whose README and skill carry hostile markup
  (``team-tools``), and a plugin marked system (``org-baseline``).

Grants to Everyone: the plugins in :data:`GRANTED`; ``wshobson/ui-design`` exists but is not
granted (403 tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SHARED

FIXTURES = SHARED / "fixtures" / "marketplaces"
GRANTED = (
    "wshobson/accessibility-compliance",
    "wshobson/data-engineering",
    "wshobson/pptx-deck-creation",
    "wshobson/protect-mcp",
    "wshobson/python-development",
    "team/python-development",
    "team/team-tools",
)
NOT_GRANTED = "wshobson/ui-design"
SYSTEM = "team/org-baseline"

HOSTILE_README = """# Team tools

Helpers for <em>our</em> team.

<script>document.title = 'owned'</script>
<img src="x" onerror="document.title='owned'">
[click me](javascript:document.title='owned')
<a href="javascript:alert(1)" onmouseover="alert(2)">hover</a>
"""


def _git_repo(path: Path) -> None:
    """``git init`` + commit everything (a local repository the sync clones)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "import"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True, timeout=60)


def _wshobson(dest: Path) -> Path:
    shutil.copytree(FIXTURES / "wshobson-agents", dest)
    manifest_path = dest / ".claude-plugin" / "marketplace.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["plugins"] = [p for p in manifest["plugins"] if isinstance(p.get("source"), str)]
    manifest_path.write_text(json.dumps(manifest, indent=2))
    _git_repo(dest)
    return dest


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _team(dest: Path) -> Path:
    plugins = dest / "plugins"
    _write(
        plugins / "python-development/.claude-plugin/plugin.json",
        json.dumps({"name": "python-development", "version": "0.9.0", "description": "Our own Python helpers"}),
    )
    _write(
        plugins / "python-development/skills/pytest-style/SKILL.md",
        "---\nname: pytest-style\ndescription: How we write tests\n---\nUse fixtures.\n",
    )
    _write(
        plugins / "team-tools/.claude-plugin/plugin.json",
        json.dumps({"name": "team-tools", "version": "2.0.0", "description": "Team tools", "commands": "./cmds/"}),
    )
    _write(plugins / "team-tools/README.md", HOSTILE_README)
    _write(
        plugins / "team-tools/skills/Odd Folder/SKILL.md",
        "\ufeff---\r\nname: Odd Name/With Slash\r\ndescription: Use when: things: happen\r\n---\r\n"
        "# Odd\r\n\r\n<script>alert(1)</script>Body text\r\n",
    )
    _write(plugins / "team-tools/skills/Odd Folder/reference/notes.md", "notes")
    _write(plugins / "team-tools/skills/group/nested/SKILL.md", "---\nname: nested\n---\nNested skill.\n")
    _write(plugins / "team-tools/cmds/deploy.md", "Deploy the thing with $ARGUMENTS.\n")
    _write(
        plugins / "team-tools/agents/reviewer.md",
        "---\nname: reviewer\ndescription: Reviews code\nmodel: sonnet\ntools: [Read, Grep]\n---\nYou review.\n",
    )
    _write(
        plugins / "team-tools/hooks/hooks.json",
        json.dumps(
            {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "echo hi"}]}]}}
        ),
    )
    _write(plugins / "team-tools/.mcp.json", json.dumps({"warehouse": {"type": "http", "url": "https://mcp.example"}}))
    _write(
        plugins / "org-baseline/.claude-plugin/plugin.json",
        json.dumps({"name": "org-baseline", "version": "1.0.0", "description": "Required for everyone"}),
    )
    _write(plugins / "org-baseline/skills/house-rules/SKILL.md", "---\nname: house-rules\n---\nBe kind.\n")
    entries = [
        {"name": "python-development", "source": "./plugins/python-development", "category": "languages"},
        {
            "name": "team-tools",
            "source": "./plugins/team-tools",
            "description": "Tools our team uses every day",
            "category": "productivity",
            "author": {"name": "Platform Team"},
        },
        {"name": "org-baseline", "source": "./plugins/org-baseline", "description": "Required for everyone"},
    ]
    _write(
        dest / ".claude-plugin/marketplace.json",
        json.dumps({"name": "team", "owner": {"name": "Team"}, "plugins": entries}, indent=2),
    )
    _git_repo(dest)
    return dest


@pytest.fixture(scope="session")
def synced_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with both marketplaces registered, synced and granted (built once)."""
    from agnes import create_app

    base = tmp_path_factory.mktemp("mp-pages")
    data = base / "data"
    app = create_app(
        {
            "TESTING": True,
            "AGNES_DATA_DIR": str(data),
            "AGNES_SEED_ADMIN_EMAIL": "admin@example.com",
            "REDIS_URL": "",
            "AGNES_LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():
        from agnes import people
        from agnes.jobs.marketplace import run_sync_marketplace
        from agnes.marketplace import curated

        for slug, name, repo in (
            ("wshobson", "Claude Code Workflows", _wshobson(base / "wshobson")),
            ("team", "Team Picks", _team(base / "team")),
        ):
            curated.create_marketplace(
                {
                    "slug": slug,
                    "name": name,
                    "url": str(repo),
                    "curator_name": "Cora Curator",
                    "curator_email": "cora@example.com",
                },
                actor_id=None,
            )
            result = run_sync_marketplace(slug)
            assert not result.get("unavailable"), result
        for resource_id in GRANTED:
            people.create_grant("everyone", "marketplace_plugin", resource_id, actor_id=None)
        curated.set_system("team", "org-baseline", True, actor_id=None)
    for name in ("wshobson", "team"):
        shutil.rmtree(data / "marketplaces" / name / "repo.git", ignore_errors=True)
    return data


@pytest.fixture
def app_config(app_config: dict[str, object], synced_template: Path, tmp_path: Path) -> dict[str, object]:
    """The shared ``app_config`` pointed at a fresh copy of the synced data dir."""
    data = tmp_path / "synced-data"
    shutil.copytree(synced_template, data, symlinks=True)
    return {**app_config, "AGNES_DATA_DIR": str(data)}
