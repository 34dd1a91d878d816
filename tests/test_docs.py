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


def _code_in(markdown: str) -> str:
    """The fenced blocks and inline code spans of a markdown text, one per line."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S))
    return "\n".join(blocks + spans)


def _make_targets_used(code: str) -> set[str]:
    """Targets of the ``make`` commands in shell text (``PORT=1 make run && make test``)."""
    used = set()
    code = re.sub(r"(^|\s)#.*$", "", code, flags=re.M)  # shell comments
    for command in re.split(r"\n|;|&&|\|\||\||\(", code):
        words = [w for w in command.split() if not re.match(r"^\w+=", w)]  # drop VAR=value prefixes
        if words and words[0] == "sudo":
            words = words[1:]
        if len(words) > 1 and words[0] == "make":
            used.update(w for w in words[1:] if re.match(r"^[a-z][a-z-]*$", w))
    return used


def _missing_make_targets(markdown: str, makefile: str) -> list[str]:
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    return sorted(t for t in _make_targets_used(_code_in(markdown)) if t not in targets)


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    missing = _missing_make_targets(readme, makefile)
    assert not missing, f"README mentions 'make {missing[0]}' but the Makefile has no such target"
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


def test_a_missing_make_target_is_caught() -> None:
    makefile = "run: install\n\ttrue\ntest:\n\ttrue\n"
    readme = "Run `make run`, or:\n\n```sh\nPORT=5077 make run\nmake deploy   # no such target\n```\n"
    assert _missing_make_targets(readme, makefile) == ["deploy"]
    assert _missing_make_targets("`make test` and `cd x && make run`", makefile) == []
    assert _missing_make_targets("`apt-get install python3 make git`", makefile) == []
    assert _missing_make_targets("`PYTEST_ARGS=-x make tset`", makefile) == ["tset"]


# The sibling folder our own checkouts sit next to. Spelled in two pieces so this file does not
# name it itself; tests/fixtures/README.md explains where the copied inputs came from instead.
_SIBLING = "sh" + "ared"
_SIBLING_PATH = re.compile(r"\.\./" + _SIBLING + r"\b|/work/" + _SIBLING + r"\b|/\s*[\"']" + _SIBLING + r"[\"']")


def _tracked_files() -> list[Path]:
    import subprocess

    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def _names_sibling_folder(text: str) -> bool:
    return bool(_SIBLING_PATH.search(text))


def test_no_tracked_file_reads_the_sibling_folder() -> None:
    """A fresh clone has no sibling folder: tests carry their inputs in tests/fixtures."""
    offenders = []
    for path in _tracked_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        if _names_sibling_folder(path.read_bytes().decode("utf-8", errors="ignore")):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"these files name the {_SIBLING} folder next to the checkout: {offenders}"


def test_the_sibling_folder_check_catches_each_spelling() -> None:
    for text in (
        f"open('../{_SIBLING}/fixtures/x.csv')",
        f'Path(__file__).parents[2] / "{_SIBLING}"',
        f"/work/{_SIBLING}/DESIGN.md",
    ):
        assert _names_sibling_folder(text), text
    assert not _names_sibling_folder("all services share one data volume; shared by threads")
