"""Helpers for marketplace tests: real git repositories made from fixtures or small synthetic trees."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import SHARED

FIXTURES = SHARED / "fixtures" / "marketplaces"
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
    """A git repository holding a copy of ``shared/fixtures/marketplaces/<name>``."""
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
