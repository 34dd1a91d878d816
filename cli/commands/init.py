"""``agnes init``: Claude Code hooks that keep a workspace's tables fresh."""

from __future__ import annotations

import click

from cli.commands.data import WORKSPACE_HELP, _echo

HOOKS = {
    "SessionStart": "agnes pull --quiet || true",
    "SessionEnd": "agnes push --quiet || true",
}


@click.command()
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def init(workspace: str | None) -> None:
    """Add Claude Code hooks (pull at session start, push at session end) to .claude/settings.json."""
    import json
    import os

    from cli.workspace import Workspace

    ws = Workspace(workspace)
    path = ws.root / ".claude" / "settings.json"
    try:
        settings = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        raise click.ClickException(f"{path} is not valid JSON; fix it first (nothing was changed)") from None
    if not isinstance(settings, dict):
        raise click.ClickException(f"{path} does not hold a JSON object; nothing was changed")
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict) or not all(isinstance(hooks.get(event, []), list) for event in HOOKS):
        raise click.ClickException(
            f'{path}: "hooks" is not in Claude Code\'s format (an object of lists); fix it first (nothing was changed)'
        )
    added = []
    for event, command in HOOKS.items():
        entries = hooks.setdefault(event, [])
        present = any(
            isinstance(entry, dict)
            and any(isinstance(h, dict) and h.get("command") == command for h in entry.get("hooks") or [])
            for entry in entries
        )
        if not present:
            entries.append({"hooks": [{"type": "command", "command": command}]})
            added.append(event)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".settings.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n")
    os.replace(tmp, path)
    if added:
        _echo(f"Added {', '.join(added)} hooks to {path}.")
    else:
        _echo(f"Hooks already present in {path}; nothing changed.")
    _echo("Run 'agnes pull' now to fetch your tables.")
