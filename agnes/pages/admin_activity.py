"""Page data of the activity timeline on ``/admin/activity`` (fragment: its "Load more" pages;
JSON twin ``GET /api/admin/activity``; CLI ``agnes admin activity``).

The timeline reads ``audit_log`` newest first with keyset pagination on ``(timestamp, id)``: a
cursor names the last row of the previous page, so a page costs the same wherever it is and rows
written meanwhile never shift it. Without ``since`` the window is the last :data:`DEFAULT_WINDOW`
(from ``until`` when given). Every filter is in the URL.

Reading the timeline writes one ``activity.read`` audit row per actor and filter per
:data:`READ_DEDUP_SECONDS` (claimed in the shared cache, so every process agrees); "Load more"
with the same filter adds none.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import url_for
from werkzeug.routing import BuildError

from agnes.audit import current_actor, write_audit
from agnes.cache import shared_cache
from agnes.errors import Invalid
from agnes.masking import mask_value
from agnes.models import audit as audit_model
from agnes.models import utcnow
from agnes.models.audit import AuditEntry, AuditQuery
from agnes.state import state_store

# Window read when no ``since`` is given.
DEFAULT_WINDOW = timedelta(days=7)
# Rows per page: default and the bounds a caller may ask for.
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# One ``activity.read`` row per actor and filter in this many seconds.
READ_DEDUP_SECONDS = 60
# Relative times accepted by ``since``/``until``: ``30m``, ``24h``, ``7d``, ``2w``.
RELATIVE = re.compile(r"^\s*(\d{1,6})\s*(m|min|h|d|w)\s*$", re.I)
UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Client kinds the filter offers (a row may carry another; the filter takes any text).
CLIENT_KINDS = ("web", "cli", "api", "job", "system", "server-cli")
# Text filters and their query-argument names (the URL and the API use the same).
TEXT_FILTERS = ("user", "action", "resource", "result", "client_kind", "correlation_id", "q")
# Longest text filter value accepted (characters).
MAX_FILTER_LENGTH = 500

# Resource prefix -> the URL of the page that shows the rest of the resource (None when the rest
# is not an id that page takes). Areas with detail pages add theirs with register_detail_link.
DETAIL_LINKS: dict[str, Callable[[str], str | None]] = {}
# Job function -> (endpoint, URL argument) of the page of the thing its first argument names:
# a table sync's row links to the table as well as to the job.
JOB_SUBJECT_LINKS: dict[str, tuple[str, str]] = {
    "run_sync_table": ("admin_tables.show_table", "table_id"),
    "run_sync_marketplace": ("admin_marketplaces.show_marketplace", "marketplace_id"),
}


def register_detail_link(prefix: str, link: Callable[[str], str | None]) -> None:
    """Link timeline rows whose resource starts with ``prefix`` (``feedback:``) to the URL
    ``link(rest of the resource)`` (None: no link)."""
    DETAIL_LINKS[prefix] = link


def endpoint_link(endpoint: str, argument: str) -> Callable[[str], str | None]:
    """A link to ``endpoint`` with the rest of the resource as its URL ``argument``."""
    return lambda rest: _url(endpoint, argument, rest)


def _session_url(rest: str) -> str | None:
    """``<user_id>/<session_id>.jsonl`` (or its subagent file) -> the session's page."""
    user_id, _, name = rest.partition("/")
    session_id = name.split("/", 1)[0].removesuffix(".jsonl")
    return _url("admin_sessions.show_session", "user_id", user_id, session_id=session_id) if session_id else None


def parse_time(text: str, field: str, now: datetime) -> datetime:
    """``24h``/``7d``/``30m``/``2w`` before ``now``, or an ISO 8601 date or time (UTC unless it
    has an offset), as naive UTC. Raises :class:`Invalid` (400 ``invalid_filter``) naming ``field``."""
    match = RELATIVE.match(text)
    if match:
        return now - timedelta(seconds=int(match.group(1)) * UNITS[match.group(2).lower()])
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise Invalid(
            "invalid_filter",
            f"{field} must be a date (2026-05-01), a time (2026-05-01T12:00) or a span before now (30m, 24h, 7d).",
            field=field,
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def encode_cursor(entry: AuditEntry) -> str:
    return keyset_cursor(entry.timestamp, entry.id)


def keyset_cursor(timestamp: datetime, row_id: str) -> str:
    """The opaque cursor naming a page's last row ``(timestamp, id)`` (see :func:`decode_cursor`)."""
    raw = f"{timestamp.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises :class:`Invalid` (400 ``invalid_cursor``, field ``cursor``)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, entry_id = raw.split("|", 1)
        if not entry_id or len(entry_id) > 64:
            raise ValueError(entry_id)
        return datetime.fromisoformat(stamp), entry_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise Invalid(
            "invalid_cursor", "cursor is not a cursor this server handed out (start again without it).", field="cursor"
        ) from None


@dataclass(frozen=True)
class ActivityFilters:
    """The timeline's filters as the URL holds them (``since``/``until`` as typed) plus their
    resolved window. Build with :meth:`from_args`."""

    since: str = ""
    until: str = ""
    user: str = ""
    action: str = ""
    resource: str = ""
    result: str = ""
    client_kind: str = ""
    correlation_id: str = ""
    q: str = ""
    limit: int = DEFAULT_LIMIT
    cursor: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, Any], *, now: datetime | None = None) -> ActivityFilters:
        """From query arguments. Raises :class:`Invalid` (400) naming the bad field: a date that
        does not parse, ``since`` after ``until``, ``limit`` outside 1–200, a bad ``cursor``."""
        now = now or utcnow()
        values = {name: str(args.get(name, "") or "").strip() for name in (*TEXT_FILTERS, "since", "until", "cursor")}
        for name, value in values.items():
            if len(value) > MAX_FILTER_LENGTH:
                raise Invalid("invalid_filter", f"{name} is longer than {MAX_FILTER_LENGTH} characters.", field=name)
        raw_limit = str(args.get("limit", "") or "").strip()
        try:
            limit = int(raw_limit) if raw_limit else DEFAULT_LIMIT
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid("invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.", field="limit")
        end = parse_time(values["until"], "until", now) if values["until"] else None
        start = parse_time(values["since"], "since", now) if values["since"] else (end or now) - DEFAULT_WINDOW
        if end is not None and start >= end:
            raise Invalid("invalid_filter", "since must be before until.", field="since")
        if values["cursor"]:
            decode_cursor(values["cursor"])
        return cls(**values, limit=limit, window_start=start, window_end=end)

    @property
    def query(self) -> AuditQuery:
        return AuditQuery(
            since=self.window_start,
            until=self.window_end,
            user=self.user,
            action_prefix=self.action,
            resource_prefix=self.resource,
            result=self.result,
            client_kind=self.client_kind,
            correlation_id=self.correlation_id,
            q=self.q,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments for a link (empty values and the default limit left out)."""
        values = {name: getattr(self, name) for name in (*TEXT_FILTERS, "since", "until", "limit", "cursor")}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "limit" and v == DEFAULT_LIMIT)}

    @property
    def active(self) -> bool:
        """True when any filter besides the window and page size is set."""
        return any(getattr(self, name) for name in TEXT_FILTERS)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in (*TEXT_FILTERS, "since", "until")},
            "limit": self.limit,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
        }

    def dedup_key(self, actor_id: str | None) -> str:
        """The key of "this actor read this filter" (the page size and cursor do not count)."""
        shown = {name: getattr(self, name) for name in (*TEXT_FILTERS, "since", "until")}
        digest = hashlib.sha256(json.dumps([actor_id, shown], sort_keys=True).encode()).hexdigest()[:32]
        return f"activity-read:{digest}"


def _url(endpoint: str, argument: str, value: str, **more: str) -> str | None:
    try:
        return url_for(endpoint, **{argument: value}, **more)
    except BuildError:  # a value the route cannot hold (a slash in an id)
        return None


for _prefix, _endpoint, _argument in (
    ("job:", "jobs.show_job", "job_id"),
    ("table:", "admin_tables.show_table", "table_id"),
    ("marketplace:", "admin_marketplaces.show_marketplace", "marketplace_id"),
    ("user:", "admin_users.show_user", "user_id"),
    ("group:", "admin_groups.show_group", "group_id"),
    ("feedback:", "admin_feedback.show_feedback", "report_id"),
):
    register_detail_link(_prefix, endpoint_link(_endpoint, _argument))
register_detail_link("session:", _session_url)


@dataclass(frozen=True)
class TimelineRow:
    """One audit row as the timeline shows it: params masked, and links to what it is about."""

    entry: AuditEntry
    params: Any  # masked, full length (the API)
    drawer: Any  # masked and cut at 128 characters (the page)
    links: list[tuple[str, str]]  # (label, URL) of detail pages
    operation_url: str | None  # the whole operation (same correlation id)
    drawer_before: Any = None  # a registry change's previous values, masked and cut (the page)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.entry.to_dict(),
            "params": self.params,
            "params_before": mask_value(self.entry.params_before, limit=None),
            "links": [{"label": label, "url": url} for label, url in self.links],
            "operation_url": self.operation_url,
        }


def timeline_row(entry: AuditEntry) -> TimelineRow:
    links: list[tuple[str, str]] = []
    resource = entry.resource or ""
    for prefix, link in DETAIL_LINKS.items():
        if resource.startswith(prefix) and len(resource) > len(prefix):
            url = link(resource[len(prefix) :])
            if url:
                links.append((resource, url))
            break
    function = entry.action.removeprefix("job.") if entry.action.startswith("job.") else ""
    subject = JOB_SUBJECT_LINKS.get(function)
    args = (entry.params or {}).get("args") if isinstance(entry.params, dict) else None
    if subject and isinstance(args, list) and args and isinstance(args[0], str):
        url = _url(*subject, args[0])
        if url:
            links.append((f"{subject[1].removesuffix('_id')} {args[0]}", url))
    operation = None
    if entry.correlation_id:
        operation = url_for("admin_activity.show_activity", correlation_id=entry.correlation_id, since="90d")
    return TimelineRow(
        entry,
        mask_value(entry.params, limit=None),
        mask_value(entry.params),
        links,
        operation,
        mask_value(entry.params_before),
    )


@dataclass(frozen=True)
class TimelinePage:
    """One page of the timeline and the cursor of the next (None on the last page)."""

    filters: ActivityFilters
    rows: list[TimelineRow]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [row.to_dict() for row in self.rows],
            "next_cursor": self.next_cursor,
            "filter": self.filters.to_dict(),
        }


def record_read(filters: ActivityFilters | Any, actor_id: str | None, *, tab: str = "timeline") -> bool:
    """Write ``activity.read`` unless this actor read this filter (of this ``tab``: ``timeline``,
    ``changes``) in the last 60 s; True if written. ``filters`` has ``dedup_key``, ``args`` and
    ``window_start`` (:class:`ActivityFilters`, or the Changes tab's filters)."""
    if not shared_cache().claim(filters.dedup_key(actor_id), READ_DEDUP_SECONDS):
        return False
    actor = current_actor()
    params = {"filter": filters.args(limit=DEFAULT_LIMIT, cursor=""), "window_start": filters.window_start}
    write_audit(
        "activity.read",
        user_id=actor_id,
        resource="audit_log",
        params=params if tab == "timeline" else {**params, "tab": tab},
        client_ip=actor.client_ip,
        client_kind=actor.client_kind,
        correlation_id=actor.correlation_id,
    )
    return True


def timeline_page(filters: ActivityFilters, *, actor_id: str | None) -> TimelinePage:
    """The page of rows ``filters`` asks for (after its cursor), audited as ``activity.read``."""
    before = decode_cursor(filters.cursor) if filters.cursor else None
    with state_store().read() as con:
        entries = audit_model.query_audit(con, filters.query, before=before, limit=filters.limit + 1)
    more = len(entries) > filters.limit
    entries = entries[: filters.limit]
    record_read(filters, actor_id)
    return TimelinePage(
        filters, [timeline_row(e) for e in entries], encode_cursor(entries[-1]) if more and entries else None
    )
