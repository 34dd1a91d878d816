"""Documentation stays true: every setting and every CLI command is documented, and the README's
commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from agnes.config import SETTINGS
from cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


def _docs_text() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))) + (ROOT / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_documented_with_its_default(setting) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert f"`{setting.name}`" in text, f"add {setting.name} to docs/configuration.md"
    row = re.search(rf"^\| `{setting.name}` \| `([^`]*)` \|", text, re.M)
    assert row, f"docs/configuration.md: the row of {setting.name} should start | `NAME` | `default` |"
    default = setting.default
    expected = (
        "(unset)" if default in (None, "", []) else str(default).lower() if isinstance(default, bool) else str(default)
    )
    assert row.group(1) == expected, f"docs/configuration.md says {setting.name} defaults to {row.group(1)}"


def _command_paths(group: click.Group, prefix: str, ctx: click.Context) -> list[str]:
    paths = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += _command_paths(command, path, click.Context(command, parent=ctx, info_name=name))
        else:
            paths.append(path)
    return paths


def test_every_cli_command_is_documented() -> None:
    text = _docs_text()
    ctx = click.Context(cli, info_name="agnes")
    missing = [path for path in _command_paths(cli, "agnes", ctx) if f"`{path}" not in text]
    assert not missing, f"document these commands in docs/*.md: {missing}"


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, re.M))
    for target in re.findall(r"^make ([a-z-]+)$", readme, re.M):
        assert target in targets, f"README mentions 'make {target}' but the Makefile has no such target"
    assert "make run" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci, ".ci/run must run the README's test command"


def test_compose_has_the_documented_services() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    assert {"redis", "web", "worker", "cron"} <= set(compose["services"])
    for name in ("web", "worker", "cron"):
        volumes = compose["services"][name].get("volumes", [])
        assert any(str(v).startswith("agnes-data:") for v in volumes), f"{name} must mount the shared data volume"
