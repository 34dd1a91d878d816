"""``/api/admin/sessions``: processed sessions with their findings, and one transcript (admins)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes.access import admin_required
from agnes.pages.admin_sessions import SessionsFilters, session_page, sessions_page

bp = Blueprint("sessions_admin", __name__, url_prefix="/admin/sessions")


@bp.get("")
@admin_required
def list_sessions():  # type: ignore[no-untyped-def]
    """``user`` (id or email), ``since``, ``until``, ``type`` (a finding type), ``model``,
    ``sort`` (recent, findings), ``page``. A bad value is 400 naming the field."""
    return jsonify(sessions_page(SessionsFilters.from_args(request.args)).to_dict())


@bp.get("/<user_id>/<session_id>")
@admin_required
def get_session(user_id: str, session_id: str):  # type: ignore[no-untyped-def]
    """The main transcript's entries, findings and the session's files (``?subagent=agent-x.jsonl``
    for a subagent's)."""
    subagent = request.args.get("subagent") or None
    return jsonify(session_page(user_id, session_id, subagent, actor_id=g.principal.user.id).to_dict())
