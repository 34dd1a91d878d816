"""Feedback reports: what an analyst sends with ``agnes report``, and the admins' triage.

A report holds the message, optionally the last turns of the Claude Code session it came from
(redacted by the CLI and again here), the environment (Agnes, Claude Code, OS versions) and the
preview the reporter confirmed (``ack_preview``). Its *fingerprint* (the message and the last
error of the excerpt, normalised: digits, hex ids and spacing do not count) groups duplicates.

Triage moves a report between ``open``, ``triaged``, ``resolved`` and ``wontfix``
(:data:`TRANSITIONS`); anything else is 422 ``transition_not_allowed`` and changes nothing. Every
change writes its audit row (``feedback.*``, resource ``feedback:<id>``) in its own unit.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from agnes import audit, notify
from agnes.errors import AppError, Invalid, NotFound
from agnes.models import feedback as model
from agnes.models import new_id, utcnow
from agnes.models import telemetry as telemetry_model
from agnes.models import users as users_model
from agnes.models.feedback import FeedbackReport
from agnes.state import state_store

# Longest message accepted (characters).
MAX_MESSAGE = 5000
# Largest excerpt accepted (bytes of its JSON encoding): 413 above.
MAX_EXCERPT_BYTES = 256 * 1024
# Turns kept from an excerpt (the CLI sends the last 50).
MAX_TURNS = 50
# Tags per report, and the form of one tag.
MAX_TAGS = 20
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,39}$")
# Longest resolution text (characters).
MAX_RESOLUTION = 5000
# A Claude Code session id.
SESSION_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Environment keys kept, each cut to 200 characters.
ENVIRONMENT_KEYS = ("agnes", "claude_code", "os", "python", "terminal")
# status -> the statuses triage may move it to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"triaged", "resolved", "wontfix"}),
    "triaged": frozenset({"open", "resolved", "wontfix"}),
    "resolved": frozenset({"open"}),
    "wontfix": frozenset({"open"}),
}
# Parts of an error text that differ between two reports of the same problem.
_VOLATILE = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+")


def normalise(text: str) -> str:
    """Lower-cased, numbers and hex ids replaced by ``#``, spacing collapsed, first 300 characters."""
    return " ".join(_VOLATILE.sub("#", text.lower()).split())[:300]


def last_error(excerpt: list[dict[str, Any]] | None) -> str:
    """The text of the excerpt's last turn flagged ``is_error`` ('' when none)."""
    for turn in reversed(excerpt or []):
        if turn.get("is_error"):
            return str(turn.get("text") or "")
    return ""


def fingerprint(message: str, excerpt: list[dict[str, Any]] | None) -> str:
    """16 hex characters naming "this message after this error" (duplicates share it)."""
    key = normalise(message) + "\n" + normalise(last_error(excerpt))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _clean_excerpt(excerpt: Any) -> list[dict[str, Any]] | None:
    """The excerpt as a list of turns (dicts of strings, numbers and booleans), redacted; raises
    :class:`Invalid` on another shape."""
    if excerpt is None:
        return None
    if not isinstance(excerpt, list) or not all(isinstance(t, dict) for t in excerpt):
        raise Invalid("invalid_excerpt", "excerpt must be a list of turns (objects).", field="excerpt")
    turns = []
    for turn in excerpt[-MAX_TURNS:]:
        kept = {str(k)[:40]: v for k, v in turn.items() if isinstance(v, str | int | float | bool) or v is None}
        turns.append(audit.redact(kept))
    return turns


def create_report(
    reporter_id: str,
    *,
    message: Any,
    session_id: Any = None,
    excerpt: Any = None,
    environment: Any = None,
    ack_preview: Any = None,
) -> FeedbackReport:
    """Validate and store a report with its ``feedback.create`` audit row.

    Raises:
        Invalid: 400 ``invalid_message`` (empty or over 5,000 characters), ``invalid_excerpt``,
            ``invalid_session_id``, ``invalid_environment``.
        AppError: 413 ``excerpt_too_large`` (over 256 KiB); 409 ``session_private``.
    """
    if not isinstance(message, str) or not message.strip():
        raise Invalid("invalid_message", "message must not be empty.", field="message")
    if len(message) > MAX_MESSAGE:
        raise Invalid("invalid_message", f"message is longer than {MAX_MESSAGE:,} characters.", field="message")
    raw_excerpt = json.dumps(excerpt).encode() if excerpt is not None else b""
    if len(raw_excerpt) > MAX_EXCERPT_BYTES:
        raise AppError(
            413,
            "excerpt_too_large",
            f"The session excerpt is {len(raw_excerpt):,} bytes; at most {MAX_EXCERPT_BYTES:,} are accepted.",
            field="excerpt",
        )
    turns = _clean_excerpt(excerpt)
    if session_id in ("", None):
        session_id = None
    elif not isinstance(session_id, str) or not SESSION_ID_RE.match(session_id):
        raise Invalid("invalid_session_id", "session_id must be a Claude Code session id (a UUID).", field="session_id")
    else:
        session_id = session_id.lower()
    if environment is None:
        environment = {}
    if not isinstance(environment, dict):
        raise Invalid("invalid_environment", "environment must be an object.", field="environment")
    env = {
        k: audit.storable(str(environment[k]))[:200] for k in ENVIRONMENT_KEYS if environment.get(k) not in (None, "")
    }
    preview = (
        audit.storable(audit.redact_text(ack_preview))[:MAX_EXCERPT_BYTES] if isinstance(ack_preview, str) else None
    )
    text = audit.storable(audit.redact_text(message))
    report_id = new_id()
    with state_store().write() as con:
        if session_id and telemetry_model.is_private(con, reporter_id, session_id):
            raise AppError(
                409,
                "session_private",
                "This session was marked private; send the report with --no-session.",
                field="session_id",
            )
        model.insert_report(
            con,
            report_id=report_id,
            reporter_id=reporter_id,
            message=text,
            session_id=session_id,
            excerpt=turns,
            excerpt_bytes=len(raw_excerpt),
            environment=env,
            ack_preview=preview,
            fingerprint=fingerprint(text, turns),
        )
        notify.record_event(
            con,
            "feedback",
            f"Feedback from {reporter_email(con, reporter_id)}: {text[:80]}",
            text,
            f"/admin/feedback/{report_id}",
        )
        audit.record(
            con,
            "feedback.create",
            f"feedback:{report_id}",
            session_id=session_id,
            turns=len(turns or []),
            excerpt_bytes=len(raw_excerpt),
            message_chars=len(text),
        )
        report = model.get_report(con, report_id)
    assert report is not None
    return report


def reporter_email(con: Any, user_id: str) -> str:
    user = users_model.get_user(con, user_id)
    return user.email if user else user_id


def get_report(report_id: str) -> FeedbackReport:
    """Raises NotFound (404 ``feedback_not_found``)."""
    with state_store().read() as con:
        report = model.get_report(con, report_id)
    if report is None:
        raise NotFound("feedback_not_found", "No such feedback report.")
    return report


def _change(report_id: str, action: str, check: Any, changes: Any, **params: Any) -> FeedbackReport:
    """One triage change in one write unit: ``check(report)`` raises to refuse (nothing changes),
    ``changes(report)`` gives the columns to set."""
    with state_store().write() as con:
        report = model.get_report(con, report_id)
        if report is None:
            raise NotFound("feedback_not_found", "No such feedback report.")
        check(report)
        values = changes(report)
        model.update_report(con, report_id, **values)
        audit.record(con, action, f"feedback:{report_id}", before=report.status, **params)
        updated = model.get_report(con, report_id)
    assert updated is not None
    return updated


def _move(to: str) -> Any:
    def check(report: FeedbackReport) -> None:
        if to not in TRANSITIONS.get(report.status, frozenset()):
            raise AppError(
                422,
                "transition_not_allowed",
                f"A report that is {report.status} cannot become {to}"
                f" (allowed: {', '.join(sorted(TRANSITIONS.get(report.status, ()))) or 'none'}).",
                field="status",
            )

    return check


def assign(report_id: str, assignee_id: str) -> FeedbackReport:
    """Assign the report (an open one becomes triaged)."""
    return _change(
        report_id,
        "feedback.assign",
        lambda r: None,
        lambda r: {"assignee": assignee_id, **({"status": "triaged"} if r.status == "open" else {})},
        assignee=assignee_id,
    )


def set_tags(report_id: str, tags: Any) -> FeedbackReport:
    """Replace the report's tags (a list, or comma-separated text). Raises Invalid (``tags``)."""
    if isinstance(tags, str):
        tags = [t for t in (part.strip().lower() for part in tags.split(",")) if t]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise Invalid("invalid_tags", "tags must be a list of words.", field="tags")
    cleaned = sorted({t.strip().lower() for t in tags if t.strip()})
    bad = [t for t in cleaned if not TAG_RE.match(t)]
    if bad or len(cleaned) > MAX_TAGS:
        raise Invalid(
            "invalid_tags",
            f"Tags are up to {MAX_TAGS} words of letters, digits, '.', '_' or '-' (at most 40 characters each)"
            + (f"; not: {', '.join(bad[:3])}" if bad else "."),
            field="tags",
        )
    return _change(report_id, "feedback.tag", lambda r: None, lambda r: {"tags": cleaned}, tags=cleaned)


def resolve(report_id: str, resolution: Any, actor_id: str) -> FeedbackReport:
    """Resolve with a text saying what was done. Raises Invalid (``resolution``), 422."""
    text = resolution.strip() if isinstance(resolution, str) else ""
    if not text or len(text) > MAX_RESOLUTION:
        raise Invalid(
            "invalid_resolution", f"Say what was done (1 to {MAX_RESOLUTION:,} characters).", field="resolution"
        )
    return _change(
        report_id,
        "feedback.resolve",
        _move("resolved"),
        lambda r: {"status": "resolved", "resolution": text, "resolved_at": utcnow(), "resolved_by": actor_id},
    )


def wontfix(report_id: str, resolution: Any, actor_id: str) -> FeedbackReport:
    """Close without a fix (an optional reason). Raises 422."""
    text = resolution.strip()[:MAX_RESOLUTION] if isinstance(resolution, str) else ""
    return _change(
        report_id,
        "feedback.wontfix",
        _move("wontfix"),
        lambda r: {"status": "wontfix", "resolution": text or None, "resolved_at": utcnow(), "resolved_by": actor_id},
    )


def reopen(report_id: str) -> FeedbackReport:
    """Back to open. Raises 422 for a report that is open already."""
    return _change(
        report_id,
        "feedback.reopen",
        _move("open"),
        lambda r: {"status": "open", "resolution": None, "resolved_at": None, "resolved_by": None},
    )


def purge_excerpt(report_id: str, actor_id: str) -> FeedbackReport:
    """Delete the session excerpt (and the preview holding it); the message stays."""
    return _change(
        report_id,
        "feedback.purge_excerpt",
        lambda r: None,
        lambda r: {"excerpt": None, "ack_preview": None, "excerpt_purged_at": utcnow(), "excerpt_purged_by": actor_id},
    )
