"""YAML frontmatter of SKILL.md, agent and command files, parsed the way real repositories write it.

Real marketplaces (see ``shared/fixtures/README.md``) have files without frontmatter, a byte-order
mark, Windows line endings, a ``name`` that differs from the folder, values YAML cannot parse
(an unquoted ``description: Use when: ...``), and frontmatter that is not a mapping. None of that
may break a page: the parser never raises, keeps what it can, and reports what it could not.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

# Frontmatter longer than this (characters) is treated as body text: nobody writes 64 KB of YAML.
MAX_FRONTMATTER = 65_536
# A bare "key: value" line, for the fallback when YAML refuses the block.
_KEY_LINE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*:\s?(.*)$")


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without aliases: ``*name`` references let a few hundred bytes of YAML stand for
    a structure of billions of items ("billion laughs"), which displaying it would expand."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


@dataclass(frozen=True)
class Frontmatter:
    """A parsed document.

    Attributes:
        fields: the frontmatter mapping (keys as strings, values as YAML gave them); empty
            when there is none.
        body: the text after the frontmatter (the whole text when there is none).
        error: why the block could not be read as YAML (the fallback parser was used), else None.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    error: str | None = None

    def text(self, key: str) -> str:
        """A field as one line of display text ('' when absent)."""
        return display_value(self.fields.get(key))


def parse_frontmatter(text: str) -> Frontmatter:
    """Split ``text`` into frontmatter fields and body. Never raises.

    The block must start on the first line with ``---`` and end at the next line that is
    exactly ``---`` (or ``...``), trailing spaces allowed. Without one, the whole text is the body.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return Frontmatter(body=text)
    end = None
    consumed = len(lines[0]) + 1
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            end = index
            break
        consumed += len(lines[index]) + 1
        if consumed > MAX_FRONTMATTER:
            break
    if end is None:
        return Frontmatter(body=text)
    block = "\n".join(lines[1:end])
    body = "\n".join(lines[end + 1 :]).lstrip("\n")
    try:
        loaded = yaml.load(block, Loader=_NoAliasLoader) if block.strip() else {}  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid YAML"
        return Frontmatter(fields=_fallback_fields(block), body=body, error=f"frontmatter is not valid YAML: {problem}")
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        return Frontmatter(body=body, error="frontmatter is not a mapping of keys to values")
    return Frontmatter(fields={str(k): v for k, v in loaded.items()}, body=body)


def _fallback_fields(block: str) -> dict[str, Any]:
    """``key: value`` lines taken literally (continuation lines are appended to the last key)."""
    fields: dict[str, Any] = {}
    last: str | None = None
    for line in block.split("\n"):
        match = _KEY_LINE.match(line)
        if match and not line.startswith((" ", "\t")):
            last = match.group(1)
            fields[last] = _unquote(match.group(2).strip())
        elif last is not None and line.strip():
            fields[last] = f"{fields[last]} {line.strip()}".strip()
    return fields


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def display_value(value: Any) -> str:
    """One line of text for a frontmatter value: lists joined by commas, dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(display_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {display_value(v)}" for k, v in value.items())
    return " ".join(str(value).split())
