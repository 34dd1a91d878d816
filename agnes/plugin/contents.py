"""What a synced plugin ships: skills, agents, commands, hooks, MCP servers and its README.

Read from the plugin's working copy (``<data dir>/<marketplace_plugins.content_dir>``, written by
the sync) following Claude Code's plugin layout:

* ``skills/<name>/SKILL.md`` (nested folders too), ``agents/*.md``, ``commands/**/*.md``,
  ``hooks/hooks.json``, ``.mcp.json``;
* ``plugin.json`` (or, for ``strict: false`` entries, the marketplace entry) may name extra
  component paths (``"skills": ["./x"]``, ``"commands": "./cmds/"``), an inline ``hooks``
  object or inline ``mcpServers``. Custom paths add to the default folders, as in Claude Code.

Everything here is file IO and parsing, so it runs outside any state-store unit. Results are
cached per plugin content hash (:func:`plugin_contents`), which the sync changes whenever a
file changes, so pages never re-walk an unchanged plugin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from agnes.lru import LRU
from agnes.markdown import render_markdown
from agnes.plugin.frontmatter import Frontmatter, display_value, parse_frontmatter
from agnes.plugin.integrations import Hook, McpServer, read_hooks, read_mcp_servers
from agnes.plugin.paths import is_inside, load_json, read_text, safe_join

# Item kinds with their own page.
KINDS = ("skill", "agent", "command")
# Most files listed for one skill, and most entries walked in one plugin.
MAX_SKILL_FILES = 200
MAX_WALK = 20_000
# Plugins whose parsed contents stay in memory per process.
CACHE_SIZE = 256
# Frontmatter keys shown as the summary line of an item.
_DESCRIPTION_KEYS = ("description", "summary")


@dataclass(frozen=True)
class Item:
    """A skill, agent or command of a plugin.

    Attributes:
        kind: ``skill``, ``agent`` or ``command``.
        id: URL name: the path under the component folder, without ``.md`` (``meeting-sdk/web``).
        name: display name (frontmatter ``name``, else the last path segment).
        description: one line from the frontmatter ('' when none).
        relpath: the item's file relative to the plugin root (``skills/x/SKILL.md``).
    """

    kind: str
    id: str
    name: str
    description: str
    relpath: str


@dataclass(frozen=True)
class PluginContents:
    skills: tuple[Item, ...] = ()
    agents: tuple[Item, ...] = ()
    commands: tuple[Item, ...] = ()
    hooks: tuple[Hook, ...] = ()
    mcp_servers: tuple[McpServer, ...] = ()
    readme: str | None = None  # raw markdown
    readme_html: Markup = field(default_factory=Markup)
    warnings: tuple[str, ...] = ()

    def items(self, kind: str) -> tuple[Item, ...]:
        return {"skill": self.skills, "agent": self.agents, "command": self.commands}.get(kind, ())

    def find(self, kind: str, item_id: str) -> Item | None:
        for item in self.items(kind):
            if item.id == item_id:
                return item
        return None


@dataclass(frozen=True)
class ItemFile:
    relpath: str  # relative to the item's folder
    size: int


@dataclass(frozen=True)
class ItemDocument:
    """One item's file, parsed: frontmatter, body and (for skills) the files it ships."""

    item: Item
    frontmatter: Frontmatter
    body_html: Markup
    files: tuple[ItemFile, ...]
    truncated: bool


# -- reading --------------------------------------------------------------------------------


def _manifest(root: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """plugin.json with the marketplace entry's component fields merged in.

    Component paths from both add up (as the sync counts them); an inline ``hooks`` or
    ``mcpServers`` of the entry is used when plugin.json has none.
    """
    manifest = load_json(safe_join(root, ".claude-plugin/plugin.json"))
    manifest = dict(manifest) if isinstance(manifest, dict) else {}
    for key in ("skills", "agents", "commands"):
        manifest[key] = _paths(manifest.get(key)) + _paths(entry.get(key))
    for key in ("hooks", "mcpServers"):
        if key not in manifest and key in entry:
            manifest[key] = entry[key]
    return manifest


def _paths(value: Any) -> list[str]:
    """A component path field (string or list of strings) as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _walk_files(root: Path, start: Path, suffix: str, budget: list[int]) -> list[Path]:
    """Files under ``start`` ending in ``suffix`` (no symlinked dirs followed, none escaping root)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
        dirnames[:] = sorted(dirnames)
        for name in sorted(filenames):
            budget[0] -= 1
            if budget[0] < 0:
                return found
            if name.endswith(suffix):
                path = Path(dirpath) / name
                if is_inside(root, path) and path.is_file():
                    found.append(path)
    return found


def _summary(doc: Frontmatter) -> str:
    for key in _DESCRIPTION_KEYS:
        if doc.fields.get(key):
            return display_value(doc.fields[key])
    return ""


def _item(root: Path, kind: str, item_id: str, path: Path, fallback_name: str) -> Item:
    try:
        text, _ = read_text(path)
    except OSError:
        text = ""
    doc = parse_frontmatter(text)
    name = doc.text("name") or fallback_name
    return Item(kind=kind, id=item_id, name=name, description=_summary(doc), relpath=_rel(root, path))


def _component_roots(root: Path, default: str, custom: list[str]) -> list[Path]:
    roots = []
    for relpath in [default, *custom]:
        relpath = relpath.strip().removeprefix("./").rstrip("/") or "."
        target = root if relpath == "." else safe_join(root, relpath)
        if target is not None and target not in roots:
            roots.append(target)
    return roots


def _item_id(start: Path, path: Path) -> str:
    """The URL name: the path relative to the component folder it was found in (``meeting-sdk/web``).

    A component path that names the item itself (``"skills": ["./my-skill"]``) gives its own name.
    """
    return path.name if path == start else path.relative_to(start).as_posix()


def _skills(root: Path, manifest: dict[str, Any], budget: list[int]) -> list[Item]:
    items: dict[str, Item] = {}
    seen: set[Path] = set()
    for start in _component_roots(root, "skills", _paths(manifest.get("skills"))):
        if not start.is_dir():
            continue
        for skill_md in _walk_files(root, start, "SKILL.md", budget):
            folder = skill_md.parent
            if skill_md.name != "SKILL.md" or folder in seen or folder == root:
                continue
            seen.add(folder)
            item_id = _item_id(start, folder)
            items.setdefault(item_id, _item(root, "skill", item_id, skill_md, folder.name))
    return sorted(items.values(), key=lambda i: (i.name.lower(), i.id))


def _markdown_items(root: Path, kind: str, folder: str, custom: list[str], budget: list[int]) -> list[Item]:
    items: dict[str, Item] = {}
    seen: set[Path] = set()
    for start in _component_roots(root, folder, custom):
        if start.is_file() and start.suffix == ".md":
            files = [start]
        elif start.is_dir() and start != root:
            files = _walk_files(root, start, ".md", budget)
        else:
            files = []
        for path in files:
            if path in seen:
                continue
            seen.add(path)
            item_id = _item_id(start, path).removesuffix(".md")
            items.setdefault(item_id, _item(root, kind, item_id, path, path.stem))
    return sorted(items.values(), key=lambda i: (i.name.lower(), i.id))


def _readme(root: Path) -> str | None:
    try:
        names = {p.name.lower(): p for p in root.iterdir() if p.is_file()}
    except OSError:
        return None
    for candidate in ("readme.md", "readme.markdown", "readme.txt", "readme"):
        path = names.get(candidate)
        if path is not None and is_inside(root, path):
            return read_text(path)[0]
    return None


def read_plugin_contents(plugin_dir: str | os.PathLike[str], entry: dict[str, Any] | None = None) -> PluginContents:
    """Walk a plugin directory (uncached). A missing directory gives empty contents.

    Args:
        plugin_dir: the plugin's working copy.
        entry: the plugin's marketplace.json entry (``marketplace_plugins.raw``), consulted for
            component paths when ``plugin.json`` does not declare them.
    """

    try:
        root = Path(plugin_dir).resolve(strict=True)
    except OSError:
        return PluginContents(warnings=("The plugin's files are not on this server yet (not synced).",))
    if not root.is_dir():
        return PluginContents(warnings=("The plugin's files are not on this server yet (not synced).",))
    manifest = _manifest(root, entry or {})
    budget = [MAX_WALK]
    readme = _readme(root)
    return PluginContents(
        skills=tuple(_skills(root, manifest, budget)),
        agents=tuple(_markdown_items(root, "agent", "agents", _paths(manifest.get("agents")), budget)),
        commands=tuple(_markdown_items(root, "command", "commands", _paths(manifest.get("commands")), budget)),
        hooks=tuple(read_hooks(root, manifest)),
        mcp_servers=tuple(read_mcp_servers(root, manifest)),
        readme=readme,
        readme_html=render_markdown(readme),
        warnings=("Only part of this plugin was read: it has too many files.",) if budget[0] < 0 else (),
    )


def read_item(plugin_dir: str | os.PathLike[str], item: Item) -> ItemDocument | None:
    """Parse one item's file; None when it vanished or resolves outside the plugin."""

    path = safe_join(plugin_dir, item.relpath)
    if path is None or not path.is_file():
        return None
    text, truncated = read_text(path)
    doc = parse_frontmatter(text)
    files: list[ItemFile] = []
    if item.kind == "skill":
        root = Path(plugin_dir).resolve()
        folder = path.parent
        for file in _walk_files(root, folder, "", [MAX_SKILL_FILES * 20])[:MAX_SKILL_FILES]:
            try:
                files.append(ItemFile(relpath=file.relative_to(folder).as_posix(), size=file.stat().st_size))
            except (OSError, ValueError):
                continue
    return ItemDocument(
        item=item, frontmatter=doc, body_html=render_markdown(doc.body), files=tuple(files), truncated=truncated
    )


# -- cache ------------------------------------------------------------------------------------


_CONTENTS = LRU(CACHE_SIZE)
_ITEMS = LRU(CACHE_SIZE * 4)


def plugin_contents(
    plugin_dir: str | os.PathLike[str], content_hash: str | None, entry: dict[str, Any] | None = None
) -> PluginContents:
    """:func:`read_plugin_contents`, cached per (directory, content hash) when a hash is known."""
    if not content_hash:
        return read_plugin_contents(plugin_dir, entry)
    key = (str(plugin_dir), content_hash)
    cached = _CONTENTS.get(key)
    if cached is None:
        cached = read_plugin_contents(plugin_dir, entry)
        _CONTENTS.put(key, cached)
    return cached


def item_document(plugin_dir: str | os.PathLike[str], content_hash: str | None, item: Item) -> ItemDocument | None:
    """:func:`read_item`, cached per (directory, content hash, item) when a hash is known."""
    if not content_hash:
        return read_item(plugin_dir, item)
    key = (str(plugin_dir), content_hash, item.kind, item.id)
    cached = _ITEMS.get(key)
    if cached is None:
        cached = read_item(plugin_dir, item)
        if cached is not None:
            _ITEMS.put(key, cached)
    return cached
