"""Marketplace fixtures: real git repositories made from fixtures or small synthetic trees, an admin
token, and (for tests marked ``synced_marketplaces``) a data dir with real marketplaces synced.

The synced data dir holds two marketplaces, synced once per session and copied into each marked test:

* ``wshobson``: the wshobson-agents fixture (its local ``./plugins/x`` entries; the one remote
  entry is left out so nothing tries the network);
* ``team``: a small marketplace with a plugin named like one of wshobson's
  (``python-development``), a plugin whose README and skill carry hostile markup
  (``team-tools``), and a plugin marked system (``org-baseline``).

Grants to Everyone: the plugins in :data:`GRANTED`; ``wshobson/ui-design`` exists but is not
granted (403 tests).

The helper functions below (``git``, ``small_marketplace``, ``register``, ...) take arguments, so
tests import them: ``from tests.marketplace.conftest import small_marketplace``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES_DIR, bearer

FIXTURES = FIXTURES_DIR / "marketplaces"
GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env or GIT_ENV, capture_output=True, text=True, check=check, timeout=timeout
    )


def commit_all(repo: Path, message: str = "update") -> str:
    """``git init`` (first time), ``add -A``, commit; returns the new HEAD."""
    if not (repo / ".git").exists():
        git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def fixture_repo(name: str, dest: Path) -> Path:
    """A git repository holding a copy of ``tests/fixtures/marketplaces/<name>``."""
    shutil.copytree(FIXTURES / name, dest)
    commit_all(dest, "import fixture")
    return dest


def write_plugin(
    root: Path,
    name: str,
    *,
    version: str = "1.0.0",
    skills: tuple[str, ...] = ("hello",),
    agents: tuple[str, ...] = (),
    commands: tuple[str, ...] = (),
    plugin_json: bool = True,
    manifest_name: str | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write one plugin directory (plugin.json, SKILL.md files, agents, commands)."""
    root.mkdir(parents=True, exist_ok=True)
    if plugin_json:
        (root / ".claude-plugin").mkdir(exist_ok=True)
        (root / ".claude-plugin" / "plugin.json").write_text(
            json.dumps({"name": manifest_name or name, "version": version, "description": f"{name} plugin"})
        )
    for skill in skills:
        d = root / "skills" / skill
        d.mkdir(parents=True, exist_ok=True)
        (d / "SKILL.md").write_text(f"---\nname: {skill}\ndescription: The {skill} skill\n---\nDo {skill}.\n")
    for agent in agents:
        (root / "agents").mkdir(exist_ok=True)
        (root / "agents" / f"{agent}.md").write_text(f"---\nname: {agent}\ndescription: agent\n---\nBe {agent}.\n")
    for command in commands:
        (root / "commands").mkdir(exist_ok=True)
        (root / "commands" / f"{command}.md").write_text(f"Run {command}.\n")
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def write_manifest(
    repo: Path, plugins: list[dict[str, Any]], name: str = "test-market", metadata: dict[str, Any] | None = None
) -> None:
    (repo / ".claude-plugin").mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"name": name, "owner": {"name": "Tests"}, "plugins": plugins}
    if metadata:
        doc["metadata"] = metadata
    (repo / ".claude-plugin" / "marketplace.json").write_text(json.dumps(doc, indent=2))


def small_marketplace(repo: Path, names: tuple[str, ...] = ("alpha", "beta"), version: str = "1.0.0") -> Path:
    """A marketplace repository with local ``./plugins/<name>`` plugins, committed."""
    entries = []
    for name in names:
        write_plugin(
            repo / "plugins" / name, name, version=version, skills=(f"{name}-skill",), commands=(f"{name}-cmd",)
        )
        entries.append(
            {"name": name, "source": f"./plugins/{name}", "description": f"The {name} plugin", "version": version}
        )
    write_manifest(repo, entries)
    commit_all(repo, f"plugins {version}")
    return repo


def register(client: Any, headers: dict[str, str], slug: str, url: str | Path, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/marketplaces", json={"slug": slug, "name": slug.title(), "url": str(url), **extra}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def sync_now(slug: str) -> Any:
    """Run a sync in-process (the job function itself), returning its result."""
    from agnes.jobs.marketplace import run_sync_marketplace

    return run_sync_marketplace(slug)


@pytest.fixture
def admin_headers(auth) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """``Authorization`` header with a PAT of the seed admin."""
    return bearer(auth.token("admin@example.com", admin=True))


# -- synced fixture marketplaces (tests marked ``synced_marketplaces``) --------------------------

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


def _wshobson(dest: Path) -> Path:
    shutil.copytree(FIXTURES / "wshobson-agents", dest)
    manifest_path = dest / ".claude-plugin" / "marketplace.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["plugins"] = [p for p in manifest["plugins"] if isinstance(p.get("source"), str)]
    manifest_path.write_text(json.dumps(manifest, indent=2))
    commit_all(dest, "import")
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
    commit_all(dest, "import")
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
        from agnes.marketplace import curated, system

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
        system.set_system("team", "org-baseline", True, actor_id=None)
    for name in ("wshobson", "team"):
        shutil.rmtree(data / "marketplaces" / name / "repo.git", ignore_errors=True)
    return data


@pytest.fixture
def app_config(app_config: dict[str, object], request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """The shared ``app_config``; for a test marked ``synced_marketplaces``, pointed at a fresh copy
    of the synced data dir (the session template is built only when a marked test runs)."""
    if request.node.get_closest_marker("synced_marketplaces") is None:
        return app_config
    data = tmp_path / "synced-data"
    shutil.copytree(request.getfixturevalue("synced_template"), data, symlinks=True)
    return {**app_config, "AGNES_DATA_DIR": str(data)}
