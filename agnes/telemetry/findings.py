"""The failure scan's detectors: what went wrong in one Claude Code transcript.

Deterministic, line by line, over the transcript's JSONL (any Claude Code version):

* ``tool_error``: a tool result with ``is_error`` in a top-level user line (results quoted inside
  ``progress`` lines are a subagent's, shown in its own transcript, and do not count);
* ``permission_denied``: a tool result saying "permission denied" or "was denied";
* ``user_rejection``: Claude Code's "The user doesn't want to proceed with this tool use", and a
  short reply of the user (under :data:`SHORT_REPLY` characters) saying no, stop, wrong, not what,
  incorrect or broken;
* ``loop``: :data:`LOOP_CALLS` or more consecutive calls of one tool with the same input (one
  finding per run, at its third call);
* ``interrupted``: "[Request interrupted by user" in a user line;
* ``abrupt_end``: the last message is the user's and the file has not changed for
  :data:`ABRUPT_AFTER` (a live session, still being written, is not flagged).

Each finding carries the 1-based line (``turn_index``), a severity and an excerpt of at most
:data:`EXCERPT_CHARS` characters with secrets masked (:mod:`agnes.redaction`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from agnes.models import findings as model
from agnes.models import utcnow
from agnes.progress import Progress, no_progress
from agnes.redaction import redact_text, storable
from agnes.state import state_store
from agnes.telemetry.uploads import sessions_dir

# Bump when a detector changes: every transcript is scanned again.
SCANNER_VERSION = 1
EXCERPT_CHARS = 300
# A user reply shorter than this (characters) matching REJECTION_RE is a rejection.
SHORT_REPLY = 60
REJECTION_RE = re.compile(r"\b(no|stop|wrong|not what|incorrect|broken)\b", re.I)
REJECTED_TOOL = "The user doesn't want to proceed with this tool use"
DENIED_RE = re.compile(r"permission denied|was denied", re.I)
INTERRUPTED = "[Request interrupted by user"
LOOP_CALLS = 3
# A transcript ending on the user's message is abrupt once unchanged this long.
ABRUPT_AFTER = timedelta(hours=1)
# Files per write unit of a scan run.
BATCH_FILES = 200

TOOL_ERROR = "tool_error"
PERMISSION_DENIED = "permission_denied"
USER_REJECTION = "user_rejection"
LOOP = "loop"
INTERRUPTED_TYPE = "interrupted"
ABRUPT_END = "abrupt_end"
# Finding types in the order pages list them, with their severity.
SEVERITY = {
    TOOL_ERROR: "warning",
    PERMISSION_DENIED: "error",
    USER_REJECTION: "warning",
    LOOP: "warning",
    INTERRUPTED_TYPE: "info",
    ABRUPT_END: "warning",
}
FINDING_TYPES = tuple(SEVERITY)
# Line types that never hold a message: skipped before parsing when a line's first ``"type"`` names
# one (Claude Code writes the line's own type before any nested one in these lines).
_SKIPPED = frozenset({b"progress", b"file-history-snapshot", b"system", b"queue-operation", b"summary"})
_TYPE = b'"type":"'
# User lines Claude Code writes itself (command echoes, caveats), not replies of the user.
_META_PREFIXES = ("<command-", "<local-command-", "<system-reminder", "Caveat:", "<bash-")


@dataclass(frozen=True)
class Finding:
    finding_type: str
    turn_index: int
    severity: str
    excerpt: str


@dataclass(frozen=True)
class ScanResult:
    """The findings of one file, and whether it ended on the user's message while still young
    (``recheck_after``: when to judge it again for ``abrupt_end``)."""

    findings: list[Finding]
    lines: int
    recheck_after: datetime | None = None


def excerpt(text: str) -> str:
    """At most :data:`EXCERPT_CHARS` characters of ``text``, one line, secrets masked."""
    flat = " ".join(storable(redact_text(text[: EXCERPT_CHARS * 4])).split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(block.get("text", "")) for block in content if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def _found(findings: list[Finding], kind: str, line: int, text: str) -> None:
    findings.append(Finding(kind, line, SEVERITY[kind], excerpt(text)))


def scan(data: bytes, *, mtime: datetime, now: datetime) -> ScanResult:
    """Findings of one transcript's bytes (``mtime``: when the file last changed, naive UTC).
    Never raises for bad content: lines that are not JSON objects are skipped."""
    findings: list[Finding] = []
    loads = orjson.loads
    run_key: tuple[str, str] | None = None
    run_length = 0
    last_role: str | None = None
    last_line = 0
    line_no = 0
    for raw in data.split(b"\n"):
        line_no += 1
        at = raw.find(_TYPE)
        if at >= 0 and raw[at + 8 : raw.find(b'"', at + 8)] in _SKIPPED:
            continue
        if not raw.strip():
            continue
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        kind = obj.get("type")
        if kind not in ("user", "assistant"):
            continue
        message = obj.get("message")
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        last_role, last_line = kind, line_no
        if kind == "assistant":
            for block in content if isinstance(content, list) else ():
                if not isinstance(block, dict) or block.get("type") != "tool_use":
                    continue
                key = (
                    str(block.get("name", "")),
                    hashlib.sha1(orjson.dumps(block.get("input"), option=orjson.OPT_SORT_KEYS)).hexdigest(),
                )
                run_length = run_length + 1 if key == run_key else 1
                run_key = key
                if run_length == LOOP_CALLS:
                    _found(
                        findings,
                        LOOP,
                        line_no,
                        f"{key[0]} called {LOOP_CALLS} times in a row with the same input: "
                        + orjson.dumps(block.get("input")).decode(errors="replace"),
                    )
            continue
        if isinstance(content, str):
            _user_text(findings, content, line_no)
            continue
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_result":
                text = _result_text(block.get("content"))
                if block.get("is_error"):
                    _found(findings, TOOL_ERROR, line_no, text or "(a tool error without text)")
                if REJECTED_TOOL in text:
                    _found(findings, USER_REJECTION, line_no, text)
                elif DENIED_RE.search(text):
                    _found(findings, PERMISSION_DENIED, line_no, text)
            elif block.get("type") == "text":
                _user_text(findings, str(block.get("text", "")), line_no)
    recheck = None
    if last_role == "user":
        if now - mtime >= ABRUPT_AFTER:
            _found(findings, ABRUPT_END, last_line, "The session ended on the user's message; Claude never answered.")
        else:
            recheck = mtime + ABRUPT_AFTER
    return ScanResult(findings, line_no, recheck)


def _user_text(findings: list[Finding], text: str, line_no: int) -> None:
    stripped = text.strip()
    if stripped.startswith(INTERRUPTED):
        _found(findings, INTERRUPTED_TYPE, line_no, stripped)
        return
    if not stripped or stripped.startswith(_META_PREFIXES):
        return
    if len(stripped) < SHORT_REPLY and REJECTION_RE.search(stripped):
        _found(findings, USER_REJECTION, line_no, stripped)


def scan_sessions(progress: Progress = no_progress, *, now: datetime | None = None) -> dict[str, int]:
    """Scan every stored transcript whose bytes or scanner version changed since its checkpoint,
    or that is due a recheck; each file's findings are replaced in one write unit per batch.

    Files are read and scanned outside the state-store lease. A file missing on disk is skipped
    (its upload is being replaced or it was marked private). Returns ``files``, ``findings``,
    ``lines``, ``missing``.
    """
    now = now or utcnow()
    with state_store().read() as con:
        pending = model.files_to_scan(con, SCANNER_VERSION, now)
    totals = {"files": 0, "findings": 0, "lines": 0, "missing": 0}
    root = sessions_dir()
    for start in range(0, len(pending), BATCH_FILES):
        batch = []
        for candidate in pending[start : start + BATCH_FILES]:
            path = root / candidate.path
            try:
                data = path.read_bytes()
                mtime = datetime.fromtimestamp(os.stat(path).st_mtime, UTC).replace(tzinfo=None)
            except OSError:
                totals["missing"] += 1
                continue
            result = scan(data, mtime=mtime, now=now)
            batch.append((candidate, result))
            totals["lines"] += result.lines
        with state_store().write() as con:
            for candidate, result in batch:
                model.replace_findings(
                    con,
                    candidate,
                    [(f.finding_type, f.turn_index, f.severity, f.excerpt) for f in result.findings],
                    version=SCANNER_VERSION,
                    now=now,
                    recheck_after=result.recheck_after,
                )
                totals["files"] += 1
                totals["findings"] += len(result.findings)
        progress(min(start + BATCH_FILES, len(pending)), len(pending), "Scanning transcripts")
    return totals
