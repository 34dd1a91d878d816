"""Page data of ``/admin/sessions`` (twin ``/api/admin/sessions``, CLI ``agnes admin sessions
list``): processed sessions with their failure findings by type, filters, a type × week heatmap;
and of one session ``/admin/sessions/<user_id>/<session_id>`` (twin
``/api/admin/sessions/<user_id>/<session_id>``, CLI ``agnes admin sessions show``): the transcript
replayed with finding markers, its subagent transcripts linked.

Reading a session's transcript is audited as ``sessions.read`` once per admin and file per minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from agnes.audit import current_actor, write_audit
from agnes.cache import shared_cache
from agnes.errors import Invalid, NotFound
from agnes.models import findings as model
from agnes.models import telemetry as telemetry_model
from agnes.models import users as users_model
from agnes.models import utcnow
from agnes.models.findings import SessionFinding, SessionListRow
from agnes.pages.admin_activity import parse_time
from agnes.state import state_store
from agnes.telemetry.findings import FINDING_TYPES
from agnes.telemetry.replay import ReplayEntry, replay
from agnes.telemetry.uploads import sessions_dir
from agnes.units import page_count

PER_PAGE = 50
# Weeks the heatmap shows (the newest last).
HEATMAP_WEEKS = 12
READ_DEDUP_SECONDS = 60


@dataclass(frozen=True)
class SessionsFilters:
    user: str = ""  # an id or an email
    since: str = ""
    until: str = ""
    type: str = ""
    model: str = ""
    sort: str = "recent"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> SessionsFilters:
        """Raises :class:`Invalid` (400) for a date that does not parse or an unknown type or sort."""
        kind = str(args.get("type", "") or "")
        if kind and kind not in FINDING_TYPES:
            raise Invalid("invalid_filter", f"type must be one of {', '.join(FINDING_TYPES)}.", field="type")
        sort = str(args.get("sort", "") or "recent")
        if sort not in model.SORTS:
            raise Invalid("invalid_filter", "sort must be recent or findings.", field="sort")
        try:
            page = max(1, int(args.get("page", 1)))
        except (TypeError, ValueError):
            raise Invalid("invalid_filter", "page must be a whole number.", field="page") from None
        filters = cls(
            user=str(args.get("user", "") or "").strip(),
            since=str(args.get("since", "") or "").strip(),
            until=str(args.get("until", "") or "").strip(),
            type=kind,
            model=str(args.get("model", "") or "").strip(),
            sort=sort,
            page=page,
        )
        filters.window()  # validates the dates
        return filters

    def window(self) -> tuple[datetime | None, datetime | None]:
        now = utcnow()
        return (
            parse_time(self.since, "since", now) if self.since else None,
            parse_time(self.until, "until", now) if self.until else None,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {**self.__dict__, **changes}
        defaults = {"sort": "recent", "page": 1}
        return {k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}


@dataclass(frozen=True)
class SessionsPage:
    filters: SessionsFilters
    rows: list[SessionListRow]
    total: int
    models: list[str]
    weeks: list[date]
    heatmap: dict[str, list[int]]  # finding type -> count per week in ``weeks``

    @property
    def pages(self) -> int:
        return page_count(self.total, PER_PAGE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": [r.to_dict() for r in self.rows],
            "total": self.total,
            "page": self.filters.page,
            "pages": self.pages,
            "filters": self.filters.__dict__,
            "finding_types": list(FINDING_TYPES),
            "heatmap": {"weeks": [w.isoformat() for w in self.weeks], "counts": self.heatmap},
        }


def _user_id(con: Any, ref: str) -> str:
    if "@" in ref:
        user = users_model.get_user_by_email(con, ref)
        return user.id if user else ref
    return ref


def sessions_page(filters: SessionsFilters) -> SessionsPage:
    since, until = filters.window()
    today = utcnow().date()
    first_week = today - timedelta(days=today.weekday()) - timedelta(weeks=HEATMAP_WEEKS - 1)
    weeks = [first_week + timedelta(weeks=n) for n in range(HEATMAP_WEEKS)]
    with state_store().read() as con:
        rows, total = model.list_sessions(
            con,
            user_id=_user_id(con, filters.user) if filters.user else "",
            since=since,
            until=until,
            finding_type=filters.type,
            model=filters.model,
            sort=filters.sort,
            limit=PER_PAGE,
            offset=(filters.page - 1) * PER_PAGE,
        )
        models = model.list_models(con)
        counts = model.weekly_counts(con, first_week)
    heatmap = {kind: [0] * HEATMAP_WEEKS for kind in FINDING_TYPES}
    for week, kind, count in counts:
        if kind in heatmap and week >= first_week:
            heatmap[kind][(week - first_week).days // 7] += count
    return SessionsPage(filters, rows, total, models, weeks, heatmap)


@dataclass(frozen=True)
class SessionPage:
    """One transcript file of a session (the main one, or a subagent's) replayed."""

    user_id: str
    user_email: str | None
    session_id: str
    path: str
    summary: Any  # the processor's summary row, None before processing
    files: list[Any]  # the session's stored files (main and subagents)
    entries: list[ReplayEntry]
    left_out: int
    findings: list[SessionFinding]

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "user_email": self.user_email,
            "session_id": self.session_id,
            "path": self.path,
            "summary": self.summary.to_dict() if self.summary is not None else None,
            "files": [f.to_dict() for f in self.files],
            "findings": [f.to_dict() for f in self.findings],
            "entries": [e.to_dict() for e in self.entries],
            "left_out": self.left_out,
        }


def session_page(user_id: str, session_id: str, subagent: str | None = None, *, actor_id: str | None) -> SessionPage:
    """Raises NotFound (``session_not_found``) when the file is not stored."""
    with state_store().read() as con:
        files = telemetry_model.list_session_files(con, user_id, session_id.lower())
        user = users_model.get_user(con, user_id)
        wanted = next(
            (
                f
                for f in files
                if (f.kind == "main" and subagent is None) or (subagent and f.path.endswith(f"/subagents/{subagent}"))
            ),
            None,
        )
        if wanted is None:
            raise NotFound("session_not_found", "No such stored session transcript.")
        summary = model.get_session_summary(con, wanted.path)
        findings = model.list_file_findings(con, wanted.path)
    try:
        data = (sessions_dir() / wanted.path).read_bytes()
    except OSError:
        raise NotFound("session_not_found", "The transcript file is missing on disk.") from None
    marks: dict[int, list[str]] = {}
    for finding in findings:
        marks.setdefault(finding.turn_index, []).append(finding.finding_type)
    entries, left_out = replay(data, marks)
    _record_read(wanted.path, actor_id)
    return SessionPage(
        user_id,
        user.email if user else None,
        wanted.session_id,
        wanted.path,
        summary,
        files,
        entries,
        left_out,
        findings,
    )


def _record_read(path: str, actor_id: str | None) -> None:
    if not shared_cache().claim(f"sessions-read:{actor_id}:{path}", READ_DEDUP_SECONDS):
        return
    actor = current_actor()
    write_audit(
        "sessions.read",
        user_id=actor_id,
        resource=f"session:{path}",
        client_ip=actor.client_ip,
        client_kind=actor.client_kind,
        correlation_id=actor.correlation_id,
    )
