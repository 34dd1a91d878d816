"""Claude Code session transcripts (JSONL) turned into usage events and a per-file summary.

A transcript is one JSON object per line with a ``type``: ``user``, ``assistant``, ``system``,
``summary``, ``progress``, ``file-history-snapshot``, ``queue-operation`` and whatever later
Claude Code versions add (unknown types are counted, never an error). What is read
(formats of 1.0.x to 2.1.x, as published transcripts show them):

* **tool calls**: ``tool_use`` blocks of ``assistant`` lines (each line usually carries one
  block; several lines share a ``message.id``). ``Skill`` → a skill event named by
  ``input.skill`` (or ``input.name``, older); ``Task``/``Agent`` → a subagent event named by
  ``input.subagent_type``; ``mcp__<server>__<tool>`` → an MCP call; anything else → a tool call.
  A repeated block (same tool-use id) counts once.
* **errors**: ``tool_result`` blocks of ``user`` lines with ``is_error: true`` mark the call
  with the same ``tool_use_id`` as failed (a result whose call is not in the file still counts
  in the summary's ``tool_errors``).
* **slash commands**: ``<command-name>/x</command-name>`` in a ``user`` line's own text (a string
  or ``text`` blocks) that starts with its command tags; never in a ``tool_result`` or an
  ``isMeta`` line (transcripts quote command tags in tool output and in expanded prompts).
  1.0.x wrote the name without the leading slash; it is added.
* **tokens**: ``message.usage`` of assistant lines, once per ``message.id`` (every line of a
  message repeats it; the largest figure of each field wins, as streaming lines grow).
* **prompts**: ``promptId`` of ``user`` lines; a tool use belongs to the prompt of the last user
  line before it (assistant lines carry none), a slash command to its own line's.
* **time**: ``timestamp`` of every line; active seconds add up gaps of at most
  :data:`ACTIVE_GAP_SECONDS` between consecutive timestamps.

Lines that are not JSON objects (a truncated last line, garbage, bad UTF-8) are counted in
``bad_lines`` and skipped; nothing here raises for bad content. Pure functions: no state access.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

# Bump when what is extracted changes: every file is processed again (agnes/telemetry/processor.py).
PROCESSOR_VERSION = 2
# A pause longer than this (seconds) between two lines ends an active block (DESIGN.md, "Telemetry").
ACTIVE_GAP_SECONDS = 600
# Tools that start a subagent (``Task`` until 2.1.x, ``Agent`` after).
SUBAGENT_TOOLS = frozenset({"Task", "Agent"})
SKILL_TOOL = "Skill"
MCP_PREFIX = "mcp__"
COMMAND_RE = re.compile(r"<command-name>\s*([^<]{1,200}?)\s*</command-name>")
# Longest item name kept (characters); longer ones are cut.
MAX_NAME = 200

# event_type values, and the item type each one rolls up as.
TOOL_USE = "tool_use"
SKILL = "skill"
SUBAGENT = "subagent"
MCP_CALL = "mcp_call"
SLASH_COMMAND = "slash_command"
ITEM_TYPES = {TOOL_USE: "tool", SKILL: "skill", SUBAGENT: "agent", MCP_CALL: "mcp", SLASH_COMMAND: "command"}


@dataclass
class Event:
    """One use of something: a tool call, a skill, a subagent, an MCP call or a slash command.

    Attributes:
        line_no: 1-based line of the file it was read from.
        event_type: one of ``tool_use``, ``skill``, ``subagent``, ``mcp_call``, ``slash_command``.
        tool_name: the tool called (``Bash``, ``Skill``, ``Task``, ``mcp__x__y``); '' for commands.
        name: what was used: the tool name, ``plugin:skill``, the subagent type, ``/command``.
        tool_use_id: the call's id ('' for commands), joined with its result for ``is_error``.
        occurred_at: the line's timestamp (naive UTC), None when the line has none.
        prompt_id: the ``promptId`` of the user prompt the use belongs to ('' when the transcript
            has none: before Claude Code 2.1); OpenTelemetry events carry the same id (``prompt.id``).
    """

    line_no: int
    event_type: str
    tool_name: str
    name: str
    tool_use_id: str
    occurred_at: datetime | None
    uuid: str
    is_sidechain: bool
    model: str
    is_error: bool = False
    prompt_id: str = ""

    @property
    def item_type(self) -> str:
        return ITEM_TYPES[self.event_type]


@dataclass
class Summary:
    """What one transcript file adds up to (one ``usage_session_summary`` row)."""

    lines: int = 0
    bad_lines: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    active_seconds: float = 0.0
    user_messages: int = 0
    assistant_messages: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    skill_calls: int = 0
    subagent_calls: int = 0
    mcp_calls: int = 0
    slash_commands: int = 0
    primary_model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    session_ids: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)

    @property
    def wall_seconds(self) -> float:
        if self.started_at is None or self.ended_at is None:
            return 0.0
        return (self.ended_at - self.started_at).total_seconds()


@dataclass
class Parsed:
    events: list[Event]
    summary: Summary

    @property
    def is_transcript(self) -> bool:
        """True when at least one line was a JSON object with a ``type``."""
        return bool(self.summary.types)


_TOKEN_FIELDS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
    ("cache_creation_input_tokens", "cache_creation_tokens"),
)


def parse_timestamp(value: Any, _fromiso: Any = datetime.fromisoformat) -> datetime | None:
    """An ISO 8601 timestamp (``2026-02-10T21:16:12.381Z``) as naive UTC; None when unreadable."""
    if value.__class__ is not str or len(value) < 19:
        return None
    try:
        if value[-1] == "Z":  # what Claude Code writes: parse as naive UTC directly
            return _fromiso(value[:-1])
        parsed = _fromiso(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _name(value: Any) -> str:
    return value.strip()[:MAX_NAME] if isinstance(value, str) else ""


def command_name(raw: str) -> str:
    """``/name`` for a command tag's text (1.0.x wrote ``name`` without the slash)."""
    raw = raw.strip()
    return raw if raw.startswith("/") else f"/{raw}"


def _user_text(content: Any) -> str:
    """The user's own text of a ``user`` line (never tool results)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text" and b.get("text")
        )
    return ""


def parse_lines(data: bytes) -> Parsed:
    """Parse a whole transcript file's bytes. Never raises for bad content.

    The loop is the processor's hot path (about 200,000 lines a run in bench/usage.py), so it
    keeps per-line work small: one ``orjson.loads``, and for lines other than ``user`` and
    ``assistant`` only their type and timestamp are read.
    """
    summary = Summary()
    events: list[Event] = []
    calls: dict[str, Event] = {}
    errored: set[str] = set()
    usage_by_message: dict[str, dict[str, int]] = {}
    models: Counter[str] = Counter()
    messages_seen: set[str] = set()
    types: Counter[str] = Counter()
    session_ids: dict[str, None] = {}
    versions: dict[str, None] = {}
    stamps: list[datetime] = []
    add_stamp = stamps.append
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    lines = 0
    bad = 0
    line_no = 0
    prompt = ""  # promptId of the last user line (an assistant's tool uses answer that prompt)
    for raw in data.split(b"\n"):
        line_no += 1
        if not raw or (raw[0] in b" \t\r" and not raw.strip()):
            continue
        lines += 1
        try:
            obj = loads(raw)
        except decode_error:  # not JSON, truncated, or not UTF-8
            bad += 1
            continue
        if obj.__class__ is not dict:
            bad += 1
            continue
        kind = obj.get("type")
        if kind.__class__ is not str:  # JSON, but not a transcript line (a hook payload, say)
            continue
        types[kind] += 1
        when = parse_timestamp(obj.get("timestamp"))
        if when is not None:
            add_stamp(when)
        if kind != "assistant" and kind != "user":
            continue
        message = obj.get("message")
        if message.__class__ is not dict:
            continue
        sid = obj.get("sessionId")
        if sid.__class__ is str and sid not in session_ids:
            session_ids[sid] = None
        version = obj.get("version")
        if version.__class__ is str and version not in versions:
            versions[version] = None
        content = message.get("content")
        uuid = obj.get("uuid")
        if uuid.__class__ is not str:
            uuid = ""
        sidechain = obj.get("isSidechain") is True
        if kind == "assistant":
            model = message.get("model")
            if model.__class__ is not str:
                model = ""
            msg_id = message.get("id")
            if msg_id.__class__ is not str:
                msg_id = f"line:{line_no}"
            if msg_id not in messages_seen:
                messages_seen.add(msg_id)
                summary.assistant_messages += 1
                if model and model[0] != "<":
                    models[model] += 1
            usage = message.get("usage")
            if usage.__class__ is dict:
                seen = usage_by_message.get(msg_id)
                if seen is None:
                    seen = usage_by_message[msg_id] = {}
                for key, _ in _TOKEN_FIELDS:
                    value = usage.get(key)
                    if value.__class__ is int and value > seen.get(key, -1):
                        seen[key] = value
            if content.__class__ is not list:
                continue
            for block in content:
                if block.__class__ is not dict or block.get("type") != "tool_use":
                    continue
                tool = _name(block.get("name"))
                if not tool:
                    continue
                use_id = block.get("id")
                if use_id.__class__ is not str:
                    use_id = ""
                elif use_id in calls:
                    continue
                tool_input = block.get("input")
                if tool_input.__class__ is not dict:
                    tool_input = {}
                if tool == SKILL_TOOL:
                    event_type, name = SKILL, _name(tool_input.get("skill")) or _name(tool_input.get("name"))
                elif tool in SUBAGENT_TOOLS:
                    event_type, name = SUBAGENT, _name(tool_input.get("subagent_type")) or "general-purpose"
                elif tool.startswith(MCP_PREFIX):
                    event_type, name = MCP_CALL, tool
                else:
                    event_type, name = TOOL_USE, tool
                if not name:
                    event_type, name = TOOL_USE, tool
                event = Event(line_no, event_type, tool, name, use_id, when, uuid, sidechain, model, False, prompt)
                events.append(event)
                if use_id:
                    calls[use_id] = event
            continue
        # a user line: tool results (errors), or the user's own text (slash commands)
        prompt_id = obj.get("promptId")
        if prompt_id.__class__ is str and prompt_id:
            prompt = prompt_id
        if content.__class__ is list:
            has_result = False
            for block in content:
                if block.__class__ is dict and block.get("type") == "tool_result":
                    has_result = True
                    if block.get("is_error") is True:
                        use_id = block.get("tool_use_id")
                        errored.add(use_id if use_id.__class__ is str and use_id else f"line:{line_no}")
            if has_result:
                continue
        text = _user_text(content)
        if obj.get("isMeta"):  # an expanded command prompt, a caveat: not typed by the user
            continue
        summary.user_messages += 1
        if not text.lstrip().startswith("<command-"):  # a command line starts with its tags
            continue
        for match in COMMAND_RE.finditer(text):
            name = command_name(match.group(1))[:MAX_NAME]
            if len(name) > 1:
                events.append(Event(line_no, SLASH_COMMAND, "", name, "", when, uuid, sidechain, "", False, prompt))
    summary.lines = lines
    summary.bad_lines = bad
    for use_id in errored:
        call = calls.get(use_id)
        if call is not None:
            call.is_error = True
    summary.tool_errors = len(errored)
    for event in events:
        kind = event.event_type
        if kind == SLASH_COMMAND:
            summary.slash_commands += 1
            continue
        summary.tool_calls += 1
        if kind == SKILL:
            summary.skill_calls += 1
        elif kind == SUBAGENT:
            summary.subagent_calls += 1
        elif kind == MCP_CALL:
            summary.mcp_calls += 1
    for seen in usage_by_message.values():
        for key, attr in _TOKEN_FIELDS:
            setattr(summary, attr, getattr(summary, attr) + max(seen.get(key, 0), 0))
    if stamps:
        stamps.sort()
        summary.started_at, summary.ended_at = stamps[0], stamps[-1]
        active = 0.0
        for before, after in zip(stamps, stamps[1:], strict=False):
            gap = (after - before).total_seconds()
            if gap <= ACTIVE_GAP_SECONDS:
                active += gap
        summary.active_seconds = active
    summary.primary_model = models.most_common(1)[0][0] if models else ""
    summary.session_ids = list(session_ids)
    summary.versions = list(versions)
    summary.types = dict(types)
    return Parsed(events, summary)
