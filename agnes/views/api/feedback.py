"""``/api/feedback`` (send a report, list your own) and ``/api/admin/feedback`` (the inbox, one
report, triage)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes import feedback
from agnes.access import admin_required, login_required
from agnes.errors import NotFound
from agnes.jobs.notify import start_notify
from agnes.pages.admin_feedback import InboxFilters, inbox_page, my_reports, report_page
from agnes.views.api.body import json_body

bp = Blueprint("feedback", __name__)

# Triage actions: URL segment -> function of (report id, body, actor id).
ACTIONS = {
    "assign": lambda rid, body, me: feedback.assign(rid, body.get("assignee") or me),
    "tags": lambda rid, body, me: feedback.set_tags(rid, body.get("tags", [])),
    "resolve": lambda rid, body, me: feedback.resolve(rid, body.get("resolution"), me),
    "wontfix": lambda rid, body, me: feedback.wontfix(rid, body.get("resolution"), me),
    "reopen": lambda rid, body, me: feedback.reopen(rid),
    "purge-excerpt": lambda rid, body, me: feedback.purge_excerpt(rid, me),
}


@bp.post("/feedback")
@login_required
def create_feedback():  # type: ignore[no-untyped-def]
    """Send a report: ``{message, session_id?, excerpt?: [turn, ...], environment?: {...},
    ack_preview?}`` → 201 ``{id, status, fingerprint, created_at}``; admins are notified. Errors: 400 (message empty or
    over 5,000 characters, bad excerpt or session id), 413 (excerpt over 256 KiB), 409
    ``session_private``; nothing is written then."""
    body = json_body()
    report = feedback.create_report(
        g.principal.user.id,
        message=body.get("message"),
        session_id=body.get("session_id"),
        excerpt=body.get("excerpt"),
        environment=body.get("environment"),
        ack_preview=body.get("ack_preview"),
    )
    start_notify()
    created = report.created_at.isoformat()
    return jsonify(id=report.id, status=report.status, fingerprint=report.fingerprint, created_at=created), 201


@bp.get("/feedback")
@login_required
def list_my_feedback():  # type: ignore[no-untyped-def]
    """Your reports with their status and resolution, newest first."""
    reports = [
        {
            k: v
            for k, v in r.to_dict().items()
            if k in ("id", "created_at", "message", "status", "resolution", "resolved_at")
        }
        for r in my_reports(g.principal.user.id)
    ]
    return jsonify(reports=reports)


@bp.get("/admin/feedback")
@admin_required
def list_feedback():  # type: ignore[no-untyped-def]
    """The inbox: ``counts`` per status and a page of ``reports`` (``status``, ``tag``, ``assignee``, ``page``)."""
    return jsonify(inbox_page(InboxFilters.from_args(request.args, me=g.principal.user.id)).to_dict())


@bp.get("/admin/feedback/<report_id>")
@admin_required
def get_feedback(report_id: str):  # type: ignore[no-untyped-def]
    return jsonify(report_page(report_id, actor_id=g.principal.user.id).to_dict())


@bp.post("/admin/feedback/<report_id>/<action>")
@admin_required
def triage_feedback(report_id: str, action: str):  # type: ignore[no-untyped-def]
    """``assign`` (``{assignee?}``, default you), ``tags`` (``{tags: [...]}``), ``resolve``
    (``{resolution}``), ``wontfix`` (``{resolution?}``), ``reopen``, ``purge-excerpt``. A transition
    not allowed is 422 ``transition_not_allowed``, nothing changed."""
    change = ACTIONS.get(action)
    if change is None:
        raise NotFound("unknown_action", f"No triage action '{action}'.")
    body = json_body() if request.get_data() else {}
    change(report_id, body, g.principal.user.id)
    return jsonify(report_page(report_id, actor_id=g.principal.user.id).to_dict())
