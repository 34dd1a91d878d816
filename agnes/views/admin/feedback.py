"""``/admin/feedback``: the feedback inbox (counts per status, filters) and one report with its
triage (assign to me, tags, resolve, won't fix, reopen, purge the excerpt; HTMX in place)."""

from __future__ import annotations

from flask import Blueprint, g, request, url_for

from agnes import feedback
from agnes.access import admin_required
from agnes.errors import AppError, NotFound
from agnes.htmx import fragment_or_redirect, render
from agnes.pages.admin_feedback import InboxFilters, inbox_page, report_page

bp = Blueprint("admin_feedback", __name__, url_prefix="/admin/feedback")

# Triage actions: URL segment -> (function of (report id, form, actor id)).
ACTIONS = {
    "assign": lambda rid, form, me: feedback.assign(rid, me),
    "tags": lambda rid, form, me: feedback.set_tags(rid, form.get("tags", "")),
    "resolve": lambda rid, form, me: feedback.resolve(rid, form.get("resolution", ""), me),
    "wontfix": lambda rid, form, me: feedback.wontfix(rid, form.get("resolution", ""), me),
    "reopen": lambda rid, form, me: feedback.reopen(rid),
    "purge-excerpt": lambda rid, form, me: feedback.purge_excerpt(rid, me),
}


@bp.get("")
@admin_required
def list_feedback():  # type: ignore[no-untyped-def]
    """Counts per status and the reports (filters ``status``, ``tag``, ``assignee``: me, none, an id)."""
    page = inbox_page(InboxFilters.from_args(request.args, me=g.principal.user.id))
    return render("admin/feedback/inbox.html", "admin/feedback/_reports.html", page=page)


@bp.get("/<report_id>")
@admin_required
def show_feedback(report_id: str):  # type: ignore[no-untyped-def]
    """One report: message, environment, excerpt replay, duplicates and triage."""
    page = report_page(report_id, actor_id=g.principal.user.id)
    return render("admin/feedback/report.html", "admin/feedback/_triage.html", page=page, errors={})


@bp.post("/<report_id>/<action>")
@admin_required
def triage_post(report_id: str, action: str):  # type: ignore[no-untyped-def]
    """Apply a triage action; a refused one (422: a transition not allowed, an empty resolution)
    answers the triage panel with the message at its field, nothing changed."""
    change = ACTIONS.get(action)
    if change is None:
        raise NotFound("unknown_action", f"No triage action '{action}'.")
    try:
        change(report_id, request.form, g.principal.user.id)
    except AppError as error:
        if error.status == 404:
            raise
        page = report_page(report_id, actor_id=g.principal.user.id)
        errors = {error.field or "status": error.message}
        return render("admin/feedback/report.html", "admin/feedback/_triage.html", status=422, page=page, errors=errors)
    page = report_page(report_id, actor_id=g.principal.user.id)
    return fragment_or_redirect(
        "admin/feedback/_triage.html",
        url_for("admin_feedback.show_feedback", report_id=report_id),
        page=page,
        errors={},
    )
