"""A transcript as admins replay it on ``/admin/sessions/<user>/<session>``: one entry per message
line (user text, assistant text, tool calls and their results), in file order, with the line
number the failure scan's findings point at. Text is cut and masked at render, never changed on
disk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from agnes.masking import mask_value

# Characters of one text or tool result shown (the rest is cut with a count).
TEXT_CHARS = 4000
# Characters of a tool call's input shown.
INPUT_CHARS = 1000
# Lines replayed at most (a transcript is read whole; its first lines past this are summarised).
MAX_ENTRIES = 3000


@dataclass
class ReplayEntry:
    """``kind``: ``user``, ``assistant``, ``tool_use``, ``tool_result`` or ``thinking``."""

    line: int
    kind: str
    text: str
    tool: str | None = None
    is_error: bool = False
    sidechain: bool = False
    at: str | None = None
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _content_entries(line: int, role: str, content: Any, sidechain: bool, at: str | None) -> list[ReplayEntry]:
    if isinstance(content, str):
        return [ReplayEntry(line, role, content, sidechain=sidechain, at=at)] if content.strip() else []
    entries = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and str(block.get("text", "")).strip():
            entries.append(ReplayEntry(line, role, str(block["text"]), sidechain=sidechain, at=at))
        elif kind == "tool_use":
            raw = orjson.dumps(block.get("input"), option=orjson.OPT_INDENT_2).decode(errors="replace")
            entries.append(
                ReplayEntry(line, "tool_use", raw, tool=str(block.get("name", "")), sidechain=sidechain, at=at)
            )
        elif kind == "tool_result":
            inner = block.get("content")
            text = (
                inner
                if isinstance(inner, str)
                else "\n".join(
                    str(b.get("text", "")) for b in inner or [] if isinstance(b, dict) and b.get("type") == "text"
                )
                if isinstance(inner, list)
                else ""
            )
            entries.append(
                ReplayEntry(line, "tool_result", text, is_error=bool(block.get("is_error")), sidechain=sidechain, at=at)
            )
    return entries


def replay(data: bytes, findings: dict[int, list[str]] | None = None) -> tuple[list[ReplayEntry], int]:
    """The entries of a transcript (at most :data:`MAX_ENTRIES`, masked and cut) with the
    finding types of their line, and how many entries were left out."""
    entries: list[ReplayEntry] = []
    left_out = 0
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or obj.get("type") not in ("user", "assistant"):
            continue
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        found = _content_entries(
            number, obj["type"], message.get("content"), bool(obj.get("isSidechain")), obj.get("timestamp")
        )
        for index, entry in enumerate(found):
            if len(entries) >= MAX_ENTRIES:
                left_out += 1
                continue
            limit = INPUT_CHARS if entry.kind == "tool_use" else TEXT_CHARS
            entry.text = mask_value(entry.text, limit=limit)
            if index == 0:  # a line's findings are marked once, on its first entry
                entry.findings = (findings or {}).get(number, [])
            entries.append(entry)
    return entries, left_out
