"""``agnes report``: bundle a feedback report (message, the end of the current Claude Code
session, the environment) exactly as it will be sent.

The session is ``$CLAUDE_CODE_SESSION_ID`` (or ``--session``); its transcript is looked up under
``$CLAUDE_CONFIG_DIR`` (default ``~/.claude``) ``/projects/*/<id>.jsonl``. Without an id, the
newest transcript of the current directory's project folder is taken. A session marked private
(``agnes mark-private``, listed in the workspace's ``.claude/agnes-sessions-private.txt``) is never
bundled. Turns are redacted (:mod:`agnes.redaction`) before they are shown, so what the reporter
sees is what is sent.
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections import deque
from pathlib import Path
from typing import Any

from agnes.redaction import redact

# Turns of the session sent with a report (the newest ones).
TURNS = 50
# Characters kept of one turn's text.
TURN_CHARS = 2000
# Characters of a tool call's input shown in its turn.
INPUT_CHARS = 300
# Lines read from the end of a transcript (a turn is one line; tool results are lines too).
TAIL_LINES = 2000
SESSION_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def claude_dir() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude").expanduser()


def project_dir(cwd: Path) -> Path:
    """Claude Code's folder of a working directory's sessions (every non-alphanumeric character
    of the absolute path becomes ``-``)."""
    return claude_dir() / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(cwd.resolve()))


def find_transcript(session_id: str | None, cwd: Path) -> tuple[str | None, Path | None]:
    """``(session id, transcript path)`` of the current session, ``(id, None)`` when its
    transcript is not on this machine, ``(None, None)`` without an id or a project transcript."""
    if session_id:
        for candidate in sorted((claude_dir() / "projects").glob(f"*/{session_id}.jsonl")):
            return session_id, candidate
        return session_id, None
    folder = project_dir(cwd)
    newest = max(
        (p for p in folder.glob("*.jsonl") if SESSION_ID_RE.match(p.stem)),
        key=lambda p: p.stat().st_mtime,
        default=None,
    )
    return (newest.stem, newest) if newest else (None, None)


def is_private(workspace: Path, session_id: str) -> bool:
    path = workspace / ".claude" / "agnes-sessions-private.txt"
    try:
        return session_id.lower() in {line.strip().lower() for line in path.read_text().splitlines()}
    except OSError:
        return False


def _text(content: Any) -> tuple[str, str | None, bool, bool]:
    """A message's content as ``(text, tool name called, holds a tool result, is_error)``."""
    if isinstance(content, str):
        return content, None, False, False
    parts: list[str] = []
    tool = None
    result = False
    error = False
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            tool = str(block.get("name", ""))
            parts.append(f"{tool}({json.dumps(block.get('input', {}), ensure_ascii=False)[:INPUT_CHARS]})")
        elif kind == "tool_result":
            result = True
            error = error or bool(block.get("is_error"))
            inner = block.get("content")
            parts.append(_text(inner)[0] if not isinstance(inner, str) else inner)
    return "\n".join(p for p in parts if p), tool, result, error


def read_turns(path: Path, limit: int = TURNS) -> tuple[list[dict[str, Any]], str | None]:
    """The last ``limit`` user and assistant turns of a transcript (redacted) and the Claude Code
    version it was written by. Lines that are not JSON are skipped."""
    turns: deque[dict[str, Any]] = deque(maxlen=limit)
    version = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = deque(fh, maxlen=TAIL_LINES)
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or entry.get("type") not in ("user", "assistant"):
            continue
        version = entry.get("version") or version
        message = entry.get("message") if isinstance(entry.get("message"), dict) else {}
        text, tool, result, error = _text(message.get("content", ""))
        if not text:
            continue
        turn: dict[str, Any] = {"role": "tool" if result else entry["type"], "text": text[:TURN_CHARS]}
        if tool:
            turn["tool"] = tool
        if error:
            turn["is_error"] = True
        if entry.get("timestamp"):
            turn["at"] = str(entry["timestamp"])
        turns.append(redact(turn))
    return list(turns), version


def environment(agnes_version: str, claude_code: str | None) -> dict[str, str]:
    env = {"agnes": agnes_version, "os": platform.platform(terse=True), "python": platform.python_version()}
    if claude_code:
        env["claude_code"] = claude_code
    return env


def bundle(
    message: str, *, session_id: str | None, turns: list[dict[str, Any]] | None, env: dict[str, str]
) -> dict[str, Any]:
    """The request body of ``POST /api/feedback`` (without ``ack_preview``)."""
    body: dict[str, Any] = {"message": message, "environment": env}
    if session_id and turns is not None:
        body["session_id"] = session_id
        body["excerpt"] = turns
    return body


def preview(body: dict[str, Any]) -> str:
    """Exactly what is sent, as people read it: the JSON body."""
    return json.dumps(body, indent=2, ensure_ascii=False)
