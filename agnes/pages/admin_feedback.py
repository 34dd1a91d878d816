"""Page data of the feedback inbox ``/admin/feedback`` (twin ``/api/admin/feedback``) and of one
report ``/admin/feedback/<id>`` (twin ``/api/admin/feedback/<id>``), and of the reporter's own
list on ``/me`` (twin ``GET /api/feedback``).

Opening a report is audited as ``feedback.read`` once per admin and report per minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import url_for

from agnes import feedback
from agnes.audit import current_actor, write_audit
from agnes.cache import shared_cache
from agnes.masking import mask_value
from agnes.models import feedback as model
from agnes.models import groups as groups_model
from agnes.models import telemetry as telemetry_model
from agnes.models.feedback import STATUSES, FeedbackReport
from agnes.state import state_store
from agnes.units import page_count

# Reports per inbox page.
PER_PAGE = 50
# One ``feedback.read`` row per admin and report in this many seconds.
READ_DEDUP_SECONDS = 60


@dataclass(frozen=True)
class InboxFilters:
    status: str = ""
    tag: str = ""
    assignee: str = ""  # a user id, "me" or "none"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, Any], *, me: str) -> InboxFilters:
        """Unknown values fall back to "any" (a bookmark never fails)."""
        status = str(args.get("status", "") or "")
        assignee = str(args.get("assignee", "") or "")
        try:
            page = max(1, int(args.get("page", 1)))
        except (TypeError, ValueError):
            page = 1
        return cls(
            status=status if status in STATUSES else "",
            tag=str(args.get("tag", "") or "")[:40],
            assignee=me if assignee == "me" else assignee[:64],
            page=page,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {**self.__dict__, **changes}
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}


@dataclass(frozen=True)
class InboxPage:
    filters: InboxFilters
    counts: dict[str, int]
    reports: list[FeedbackReport]
    duplicates: dict[str, int]  # fingerprint -> reports sharing it
    total: int
    tags: list[str]
    admins: list[tuple[str, str]]  # (id, email) for the assignee filter

    @property
    def pages(self) -> int:
        return page_count(self.total, PER_PAGE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "total": self.total,
            "page": self.filters.page,
            "pages": self.pages,
            "filters": self.filters.__dict__,
            "tags": self.tags,
            "reports": [{**_summary(r), "duplicates": self.duplicates.get(r.fingerprint, 1)} for r in self.reports],
        }


def _summary(report: FeedbackReport) -> dict[str, Any]:
    """A report without its excerpt and preview (lists)."""
    data = report.to_dict()
    data.pop("excerpt")
    data.pop("ack_preview")
    data["has_excerpt"] = report.excerpt is not None
    return data


def inbox_page(filters: InboxFilters) -> InboxPage:
    with state_store().read() as con:
        counts = model.count_by_status(con)
        reports = model.list_reports(
            con,
            status=filters.status,
            tag=filters.tag,
            assignee=filters.assignee,
            limit=PER_PAGE,
            offset=(filters.page - 1) * PER_PAGE,
        )
        total = model.count_reports(con, status=filters.status, tag=filters.tag, assignee=filters.assignee)
        duplicates = model.count_duplicates(con, sorted({r.fingerprint for r in reports}))
        tags = model.list_tags(con)
        admins = [(m.user_id, m.email) for m in groups_model.list_members(con, "admin")]
    return InboxPage(filters, counts, reports, duplicates, total, tags, admins)


@dataclass(frozen=True)
class ReportPage:
    report: FeedbackReport
    excerpt: list[dict[str, Any]] | None  # masked at render
    duplicates: list[FeedbackReport]  # other reports with the same fingerprint, newest first
    transitions: list[str]  # statuses the report may move to
    transcript_url: str | None  # the uploaded session, when there is one

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.report.to_dict(),
            "excerpt": self.excerpt,
            "duplicates": [_summary(d) for d in self.duplicates],
            "transitions": self.transitions,
            "transcript_url": self.transcript_url,
        }


def report_page(report_id: str, *, actor_id: str | None) -> ReportPage:
    """Raises NotFound (``feedback_not_found``). Audited as ``feedback.read`` (deduplicated)."""
    report = feedback.get_report(report_id)
    with state_store().read() as con:
        duplicates = [r for r in model.list_reports(con, fingerprint=report.fingerprint, limit=20) if r.id != report.id]
        uploaded = bool(report.session_id) and any(
            f.kind == "main" for f in telemetry_model.list_session_files(con, report.reporter_id, report.session_id)
        )
    transcript = (
        url_for("admin_sessions.show_session", user_id=report.reporter_id, session_id=report.session_id)
        if uploaded
        else None
    )
    _record_read(report.id, actor_id)
    return ReportPage(
        report,
        mask_value(report.excerpt, limit=None) if report.excerpt is not None else None,
        duplicates,
        sorted(feedback.TRANSITIONS.get(report.status, ())),
        transcript,
    )


def _record_read(report_id: str, actor_id: str | None) -> None:
    if not shared_cache().claim(f"feedback-read:{actor_id}:{report_id}", READ_DEDUP_SECONDS):
        return
    actor = current_actor()
    write_audit(
        "feedback.read",
        user_id=actor_id,
        resource=f"feedback:{report_id}",
        client_ip=actor.client_ip,
        client_kind=actor.client_kind,
        correlation_id=actor.correlation_id,
    )


def my_reports(user_id: str) -> list[FeedbackReport]:
    """The reporter's own reports, newest first (status and resolution shown on ``/me``)."""
    with state_store().read() as con:
        return model.list_reports(con, reporter_id=user_id, limit=100)
