"""Page data of ``/admin/usage`` (twin ``/api/admin/usage``) and of the Sessions section of
``/admin/users/<id>`` (in the user page's twin ``/api/admin/users/<id>``, and
``/admin/users/<id>/sessions?page=N`` for further pages).

The Sessions section registers itself with :func:`agnes.pages.admin_users.register_user_section`
when this module is imported (the views import it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from agnes import people
from agnes.jobs import JobStatus, lookup_job
from agnes.jobs.telemetry import PROCESS_JOB_ID, current_reprocess
from agnes.models import telemetry, utcnow
from agnes.models.users import User
from agnes.pages.admin_users import UserSection, register_user_section
from agnes.state import state_store
from agnes.telemetry.attribution import SOURCES
from agnes.units import page_count

# Sessions per page of the user page's Sessions section.
SESSIONS_PER_PAGE = 50
# Days the charts and "Downloads" cover.
DAYS = 30


def _days(today: date) -> list[date]:
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


# -- the user page's Sessions section -------------------------------------------------------------


@dataclass(frozen=True)
class UserSessions:
    """One user's uploaded sessions (a page of them), downloads and sessions per day.

    Attributes:
        sessions: this page's sessions, newest first, with their processed summary.
        per_day: ``(day ISO, sessions started)`` for the last 30 days, oldest first.
        downloads: ``{"action", "resource", "count", "last"}`` table and marketplace fetches, 30 days.
    """

    user: User
    sessions: list[telemetry.SessionRow]
    total: int
    page: int
    per_day: list[tuple[str, int]]
    downloads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def page_count(self) -> int:
        return page_count(self.total, SESSIONS_PER_PAGE)

    @property
    def total_bytes(self) -> int:
        return sum(s.size_bytes for s in self.sessions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessions": [s.to_dict() for s in self.sessions],
            "total": self.total,
            "page": self.page,
            "pages": self.page_count,
            "per_page": SESSIONS_PER_PAGE,
            "per_day": [{"day": d, "sessions": n} for d, n in self.per_day],
            "downloads": self.downloads,
        }


def user_sessions(user: User, page: int = 1) -> UserSessions:
    """The Sessions section's data for ``page`` (1-based; past the end gives an empty page)."""
    page = max(1, page)
    now = utcnow()
    with state_store().read() as con:
        rows, total = telemetry.list_user_sessions(
            con, user.id, limit=SESSIONS_PER_PAGE, offset=(page - 1) * SESSIONS_PER_PAGE
        )
        per_day = telemetry.sessions_per_day(con, now - timedelta(days=DAYS), user.id)
        downloads = telemetry.user_downloads(con, user.id, now - timedelta(days=DAYS))
    return UserSessions(
        user=user,
        sessions=rows,
        total=total,
        page=page,
        per_day=[(d.isoformat(), per_day.get(d, 0)) for d in _days(now.date())],
        downloads=[{"action": a, "resource": r, "count": int(c), "last": last} for a, r, c, last in downloads],
    )


def user_sessions_page(user_ref: str, page: int = 1) -> UserSessions:
    """:func:`user_sessions` of a user given by id or email. Raises NotFound (``user_not_found``)."""
    return user_sessions(people.resolve_user(user_ref), page)


register_user_section(UserSection("sessions", "Sessions", "admin/users/_sessions.html", user_sessions), before="audit")


# -- /admin/usage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsagePage:
    """Everything ``/admin/usage`` shows.

    Attributes:
        kpis: last-30-day figures (``events``, ``tool_calls``, ``errors``, ``error_rate`` 0-1,
            ``active_users``, ``sessions``, ``active_hours``, ``tokens``, ``files_processed``,
            ``files_parked``).
        days: the 30 day labels (ISO dates, oldest first) of ``events_by_source``.
        events_by_source: ``[(source, [calls per day])]``.
        top_items: skills, agents and commands by calls (30 days).
        tools: tools and MCP tools by calls with their error rate (30 days).
        parked: files the processor gave up on, with their error.
        job: the processing job's status when the queue still knows it.
        reprocess: the reprocess job's status (progress: files done/total) when known.
    """

    kpis: dict[str, Any]
    days: list[str]
    events_by_source: list[tuple[str, list[int]]]
    top_items: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    parked: list[telemetry.FileState]
    job: JobStatus | None = None
    reprocess: JobStatus | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kpis": self.kpis,
            "days": self.days,
            "events_by_source": [{"source": s, "calls": v} for s, v in self.events_by_source],
            "top_items": self.top_items,
            "tools": self.tools,
            "parked": [p.to_dict() for p in self.parked],
            "job": self.job.to_dict() if self.job else None,
            "reprocess": self.reprocess.to_dict() if self.reprocess else None,
        }


def _item(row: tuple[Any, ...]) -> dict[str, Any]:
    item_type, source, parent, name, calls, errors, users, last = row
    return {
        "item_type": item_type,
        "source": source,
        "parent": parent,
        "name": name,
        "calls": int(calls),
        "errors": int(errors),
        "error_rate": round(errors / calls, 4) if calls else 0.0,
        "users": int(users),
        "last_used_at": last,
    }


def usage_page() -> UsagePage:
    now = utcnow()
    days = _days(now.date())
    with state_store().read() as con:
        kpis = telemetry.usage_kpis(con, now - timedelta(days=DAYS))
        per_day = telemetry.events_per_day_by_source(con, days[0])
        top = telemetry.top_window_items(con, ("skill", "agent", "command"))
        tools = telemetry.top_window_items(con, ("tool", "mcp"), limit=30)
        parked = telemetry.list_parked(con)
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = {}
    for day, source, calls in per_day:
        if day in index:
            series.setdefault(source, [0] * DAYS)[index[day]] += int(calls)
    ordered = [(s, series[s]) for s in SOURCES if s in series] + [(s, v) for s, v in series.items() if s not in SOURCES]
    return UsagePage(
        kpis=kpis,
        days=[d.isoformat() for d in days],
        events_by_source=ordered,
        top_items=[_item(r) for r in top],
        tools=[_item(r) for r in tools],
        parked=parked,
        job=lookup_job(PROCESS_JOB_ID),
        reprocess=current_reprocess(),
    )
