"""Hooks and MCP servers a plugin installs, summarized for its page.

Read from ``hooks/hooks.json`` and ``.mcp.json`` (with or without an ``mcpServers`` wrapper),
or from ``plugin.json``'s ``hooks`` / ``mcpServers`` (a path or an inline object). Only what a
reader needs is kept: never an MCP server's ``env`` or ``headers``, which may name secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agnes.plugin.frontmatter import display_value
from agnes.plugin.paths import load_json, safe_join


@dataclass(frozen=True)
class Hook:
    """One hook handler as Claude Code runs it.

    Attributes:
        event: ``PreToolUse``, ``SessionStart``, ...; matcher: the group's tool pattern ('' = all).
        condition: the handler's ``if`` (permission-rule syntax, ``Bash(git commit:*)``), '' when none.
        timeout: seconds before Claude Code cancels it, None for its default.
        is_async: ``"async": true`` (runs in the background, cannot block the tool call).
    """

    event: str
    matcher: str
    type: str
    command: str
    condition: str = ""
    timeout: float | None = None
    is_async: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "matcher": self.matcher,
            "type": self.type,
            "command": self.command,
            "condition": self.condition or None,
            "timeout": self.timeout,
            "async": self.is_async,
        }


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return value


@dataclass(frozen=True)
class McpServer:
    name: str
    type: str
    target: str  # url or command line; env and headers are never shown


def read_hooks(root: Path, manifest: dict[str, Any]) -> list[Hook]:
    sources: list[Any] = []
    default = load_json(safe_join(root, "hooks/hooks.json"))
    if default is not None:
        sources.append(default)
    declared = manifest.get("hooks")
    for value in declared if isinstance(declared, list) else [declared]:
        if isinstance(value, dict):
            sources.append(value)
        elif isinstance(value, str):
            relpath = value.strip().removeprefix("./")
            if relpath != "hooks/hooks.json":
                loaded = load_json(safe_join(root, relpath))
                if loaded is not None:
                    sources.append(loaded)
    hooks: list[Hook] = []
    for source in sources:
        events = source.get("hooks", source) if isinstance(source, dict) else None
        if not isinstance(events, dict):
            continue
        for event, groups in events.items():
            for group in groups if isinstance(groups, list) else []:
                if not isinstance(group, dict):
                    continue
                matcher = display_value(group.get("matcher"))
                for hook in group.get("hooks") or []:
                    if isinstance(hook, dict):
                        hooks.append(
                            Hook(
                                event=str(event),
                                matcher=matcher,
                                type=display_value(hook.get("type")),
                                command=display_value(hook.get("command") or hook.get("prompt") or ""),
                                condition=display_value(hook.get("if")),
                                timeout=_seconds(hook.get("timeout")),
                                is_async=hook.get("async") is True,
                            )
                        )
    return hooks


def read_mcp_servers(root: Path, manifest: dict[str, Any]) -> list[McpServer]:
    sources: list[Any] = [load_json(safe_join(root, ".mcp.json"))]
    declared = manifest.get("mcpServers")
    if isinstance(declared, dict):
        sources.append(declared)
    elif isinstance(declared, str):
        sources.append(load_json(safe_join(root, declared.strip().removeprefix("./"))))
    servers: dict[str, McpServer] = {}
    for source in sources:
        if not isinstance(source, dict):
            continue
        entries = source.get("mcpServers", source)
        if not isinstance(entries, dict):
            continue
        for name, spec in entries.items():
            if not isinstance(spec, dict):
                continue
            if spec.get("url"):
                kind, target = display_value(spec.get("type")) or "http", display_value(spec["url"])
            else:
                args = spec.get("args") if isinstance(spec.get("args"), list) else []
                kind = display_value(spec.get("type")) or "stdio"
                target = " ".join([display_value(spec.get("command")), *map(display_value, args)]).strip()
            servers.setdefault(str(name), McpServer(name=str(name), type=kind, target=target))
    return sorted(servers.values(), key=lambda s: s.name.lower())
