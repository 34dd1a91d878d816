"""``/api/tokens`` (your own) and ``/api/admin/tokens`` (everyone's)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from agnes.access import admin_required, login_required, session_required
from agnes.auth.pat import create_pat, list_pats, parse_expires_days, revoke_pat
from agnes.views.api.body import json_body

bp = Blueprint("tokens", __name__)


@bp.get("/tokens")
@login_required
def list_tokens():  # type: ignore[no-untyped-def]
    return jsonify(tokens=[t.to_dict() for t in list_pats(g.principal.user.id)])


@bp.post("/tokens")
@session_required
def create_token():  # type: ignore[no-untyped-def]
    """Create a token for the signed-in user; ``token`` appears in this response only."""
    body = json_body()
    days = parse_expires_days(body.get("expires_days", 90))
    record, raw = create_pat(g.principal.user.id, str(body.get("name", "")), days)
    return jsonify(token=raw, **record.to_dict()), 201


@bp.delete("/tokens/<token_id>")
@login_required
def revoke_token(token_id: str):  # type: ignore[no-untyped-def]
    token = revoke_pat(token_id, owner_id=g.principal.user.id)
    return jsonify(token.to_dict())


@bp.get("/admin/tokens")
@admin_required
def admin_list_tokens():  # type: ignore[no-untyped-def]
    return jsonify(tokens=[t.to_dict() for t in list_pats(None)])


@bp.delete("/admin/tokens/<token_id>")
@admin_required
def admin_revoke_token(token_id: str):  # type: ignore[no-untyped-def]
    token = revoke_pat(token_id, owner_id=None)
    return jsonify(token.to_dict())
