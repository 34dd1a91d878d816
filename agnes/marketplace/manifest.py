"""Parsing ``.claude-plugin/marketplace.json`` and a plugin's own ``plugin.json``.

Every ``source`` form seen in real marketplaces (shared/fixtures/marketplaces/README.md):

* ``"./plugins/x"`` — a directory of the marketplace repository (``path``); a bare ``"x"``
  is joined to ``metadata.pluginRoot`` as Claude Code does;
* ``"./"`` — the repository root is the plugin (``root``), usually with ``"strict": false``
  and component lists (``"skills": [...]``) in the entry itself;
* ``{"source": "url", "url", "ref"?, "sha"?, "path"?}`` — another git repository;
* ``{"source": "git-subdir", "url", "path", "ref"?, "sha"?}`` — a directory of another repository;
* ``{"source": "github", "repo": "owner/name", "path"?, "ref"?, "commit"?, "sha"?}`` — the
  older spelling of ``url`` for ``https://github.com/<repo>.git``.

Anything else (``npm``, ``pip``, unknown) is kept in the registry as *unavailable* with the
reason, so the admin sees it and the other plugins still sync.

Entries that cannot become a plugin at all are *skipped*, each with its reason (the sync records
them in its result and history, and the pages, API and CLI list them): not an object, a name
that is not a safe directory name (``../../etc/passwd``, markup), a name listed twice, no
``source``.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Plugin names become directory names and resource ids; anything else is refused.
PLUGIN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
GITHUB_REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# Largest marketplace.json / plugin.json read (bytes).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class ManifestError(ValueError):
    """The marketplace.json is missing or unusable (the sync fails, keeping the old state)."""


@dataclass(frozen=True)
class Source:
    """Where one plugin's files come from.

    Attributes:
        kind: ``path``, ``root``, ``url``, ``git-subdir``, ``github`` or ``unsupported``.
        path: directory inside the repository (posix, ``""`` for the root).
        url: the other repository (remote kinds only), always ``https://``.
        ref: branch or tag to fetch (remote kinds), None for the default branch.
        sha: exact commit to serve (remote kinds), when pinned.
        error: why the source cannot be served (``unsupported`` or invalid specs).
    """

    kind: str
    path: str = ""
    url: str | None = None
    ref: str | None = None
    sha: str | None = None
    error: str | None = None

    @property
    def remote(self) -> bool:
        return self.url is not None


@dataclass(frozen=True)
class Entry:
    name: str
    source: Source
    raw: dict[str, Any]
    strict: bool = True


@dataclass(frozen=True)
class Marketplace:
    name: str
    entries: list[Entry]
    # Entries that are not plugins at all: ``[{"name", "reason"}]`` (name ``#<index>`` when absent).
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PluginInfo:
    """What the sync reads from a plugin's files."""

    manifest_name: str
    description: str
    version: str | None
    author_name: str | None
    homepage: str | None
    category: str | None
    skills: int
    agents: int
    commands: int


def _clean_relpath(value: str) -> str | None:
    """Normalize a repository-relative path; None when it escapes the repository."""
    if value.startswith("/") or "\\" in value:
        return None
    norm = posixpath.normpath(value) if value else "."
    if norm == ".":
        return ""
    if norm == ".." or norm.startswith("../"):
        return None
    return norm


def _https(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return None
    return url.strip()


def parse_source(spec: Any, plugin_root: str = "") -> Source:
    """Classify one entry's ``source`` value (never raises)."""
    if isinstance(spec, str):
        raw = spec.strip()
        if raw not in ("", ".", "./") and not raw.startswith(("./", "../")) and plugin_root:
            raw = posixpath.join(plugin_root, raw)
        path = _clean_relpath(raw)
        if path is None:
            return Source("unsupported", error=f"source path '{spec}' leaves the repository")
        return Source("root" if path == "" else "path", path=path)
    if not isinstance(spec, dict):
        return Source("unsupported", error="the source is neither a path nor an object")
    kind = spec.get("source")
    ref = spec.get("ref") if isinstance(spec.get("ref"), str) else None
    sha = spec.get("sha") or spec.get("commit")
    sha = sha.lower() if isinstance(sha, str) and SHA_RE.match(sha.lower()) else None
    sub = spec.get("path") if isinstance(spec.get("path"), str) else ""
    path = _clean_relpath(sub)
    if path is None:
        return Source("unsupported", error=f"source path '{sub}' leaves the repository")
    if kind in ("url", "git-subdir"):
        url = _https(spec.get("url"))
        if url is None:
            return Source(str(kind), error="only https:// git URLs without credentials are fetched")
        if kind == "git-subdir" and not path:
            return Source("git-subdir", url=url, error="a git-subdir source needs a path")
        return Source(str(kind), path=path, url=url, ref=ref, sha=sha)
    if kind == "github":
        repo = spec.get("repo")
        if not isinstance(repo, str) or not GITHUB_REPO_RE.match(repo.strip()):
            return Source("github", error="a github source needs repo: owner/name")
        return Source("github", path=path, url=f"https://github.com/{repo.strip()}.git", ref=ref, sha=sha)
    return Source("unsupported", error=f"'{kind}' sources are not supported (only git repositories)")


def parse_marketplace(data: bytes | None) -> Marketplace:
    """Parse marketplace.json bytes. Raises ManifestError for a missing or malformed file."""
    if data is None:
        raise ManifestError("the repository has no .claude-plugin/marketplace.json")
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError("marketplace.json is larger than 4 MiB")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"marketplace.json is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("plugins"), list):
        raise ManifestError('marketplace.json has no "plugins" list')
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    root = metadata.get("pluginRoot") if isinstance(metadata.get("pluginRoot"), str) else ""
    plugin_root = _clean_relpath(root) or ""
    entries: list[Entry] = []
    skipped: list[dict[str, str]] = []
    seen: set[str] = set()
    for index, item in enumerate(doc["plugins"]):
        if not isinstance(item, dict):
            skipped.append({"name": f"#{index}", "reason": "the entry is not an object"})
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            skipped.append({"name": f"#{index}", "reason": "the entry has no name"})
            continue
        if not PLUGIN_NAME_RE.match(name):
            skipped.append(
                {
                    "name": name[:80],
                    "reason": "invalid plugin name (letters, digits, '.', '_' or '-', at most 128, no paths or markup)",
                }
            )
            continue
        if name in seen:
            skipped.append({"name": name, "reason": "listed twice; the first entry is used"})
            continue
        if item.get("source") is None:
            skipped.append({"name": name, "reason": "the entry has no source"})
            continue
        seen.add(name)
        strict = item.get("strict", True) is not False
        entries.append(Entry(name, parse_source(item.get("source"), plugin_root), item, strict))
    return Marketplace(str(doc.get("name") or ""), entries, skipped)


# -- a plugin's files --------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _paths(*values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return out


def _inside(root: Path, rel: str) -> Path | None:
    clean = _clean_relpath(rel.strip())
    return None if clean is None else root / clean


def count_components(root: Path, skills: list[str], agents: list[str], commands: list[str]) -> tuple[int, int, int]:
    """Count skills (``SKILL.md`` files, nested ones too), agents and commands (``*.md``).

    The default ``skills/``, ``agents/`` and ``commands/`` directories are always looked at;
    paths from plugin.json or a ``strict: false`` entry add to them, as in Claude Code.
    """

    def collect(defaults: str, extra: list[str], match: str) -> int:
        found: set[Path] = set()
        for rel in [defaults, *extra]:
            base = _inside(root, rel)
            if base is None:
                continue
            if base.is_file():
                if base.name.endswith(".md"):
                    found.add(base)
            elif base.is_dir():
                found.update(p for p in base.rglob(match) if p.is_file())
        return len(found)

    return (
        collect("skills", skills, "SKILL.md"),
        collect("agents", agents, "*.md"),
        collect("commands", commands, "*.md"),
    )


def served_paths(entry: Entry) -> list[str] | None:
    """What a root (``"./"``) source serves when its entry lists components (the ``strict: false``
    form): those paths plus the plugin's own manifest folder ``.claude-plugin``, not the whole
    repository. None (serve the source directory) for every other entry."""
    if entry.source.kind != "root":
        return None
    raw = entry.raw
    listed = [_clean_relpath(p.strip()) for p in _paths(raw.get("skills"), raw.get("agents"), raw.get("commands"))]
    kept = sorted({p for p in listed if p})
    return [*kept, ".claude-plugin"] if kept else None


def _author(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return value["name"]
    return value if isinstance(value, str) else None


def _text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def read_plugin(root: Path, entry: Entry) -> PluginInfo:
    """Read ``.claude-plugin/plugin.json`` (when present) and count the plugin's components.

    With ``strict: false`` (or no plugin.json) the marketplace entry describes the plugin. The
    name Claude Code links by is plugin.json's ``name``, falling back to the entry's name; the
    version is plugin.json's (what Claude Code installs), falling back to the entry's.
    """
    manifest = _read_json(root / ".claude-plugin" / "plugin.json") or {}
    raw = entry.raw
    own_name = manifest.get("name")
    manifest_name = own_name if isinstance(own_name, str) and PLUGIN_NAME_RE.match(own_name) else entry.name
    skills, agents, commands = count_components(
        root,
        _paths(manifest.get("skills"), raw.get("skills")),
        _paths(manifest.get("agents"), raw.get("agents")),
        _paths(manifest.get("commands"), raw.get("commands")),
    )
    return PluginInfo(
        manifest_name=manifest_name,
        description=_text(raw.get("description"), manifest.get("description")) or "",
        # The version Claude Code installs: the plugin's own plugin.json wins over the entry.
        version=_text(manifest.get("version"), raw.get("version")),
        author_name=_author(raw.get("author")) or _author(manifest.get("author")),
        homepage=_text(raw.get("homepage"), manifest.get("homepage")),
        category=_text(raw.get("category"), manifest.get("category")),
        skills=skills,
        agents=agents,
        commands=commands,
    )
