"""``/admin/sessions``: processed sessions with their failure findings, and one transcript replayed."""

from __future__ import annotations

from flask import Blueprint, g, request

from agnes.access import admin_required
from agnes.errors import Invalid
from agnes.htmx import render
from agnes.pages.admin_sessions import SessionsFilters, session_page, sessions_page
from agnes.telemetry.findings import FINDING_TYPES

bp = Blueprint("admin_sessions", __name__, url_prefix="/admin/sessions")


@bp.get("")
@admin_required
def list_sessions():  # type: ignore[no-untyped-def]
    """Sessions (user, dates, finding type, model; sort by recency or findings) and the heatmap.
    A filter that does not parse is shown at its field (422)."""
    try:
        filters = SessionsFilters.from_args(request.args)
    except Invalid as error:
        raw = {k: request.args.get(k, "") for k in ("user", "since", "until", "model")}
        return render(
            "admin/sessions/sessions.html",
            status=422,
            filters=SessionsFilters(**raw),
            page=None,
            errors={error.field: error.message},
            finding_types=FINDING_TYPES,
        )
    return render(
        "admin/sessions/sessions.html",
        "admin/sessions/_sessions_table.html",
        filters=filters,
        page=sessions_page(filters),
        errors={},
        finding_types=FINDING_TYPES,
    )


@bp.get("/<user_id>/<session_id>")
@admin_required
def show_session(user_id: str, session_id: str):  # type: ignore[no-untyped-def]
    """The main transcript replayed with its findings marked."""
    page = session_page(user_id, session_id, actor_id=g.principal.user.id)
    return render("admin/sessions/session.html", page=page)


@bp.get("/<user_id>/<session_id>/subagents/<name>")
@admin_required
def show_subagent(user_id: str, session_id: str, name: str):  # type: ignore[no-untyped-def]
    """A subagent's transcript of the session."""
    page = session_page(user_id, session_id, name, actor_id=g.principal.user.id)
    return render("admin/sessions/session.html", page=page)
