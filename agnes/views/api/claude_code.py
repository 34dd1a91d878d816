"""``/api/admin/claude-code``: the data of ``/admin/claude-code`` and a group's
``managed-settings.json`` (admins only)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from agnes.access import admin_required
from agnes.claude_code import managed
from agnes.errors import Invalid
from agnes.pages.admin_claude_code import claude_code_page, parse_strict

bp = Blueprint("claude_code", __name__, url_prefix="/admin/claude-code")


@bp.get("")
@admin_required
def get_claude_code():  # type: ignore[no-untyped-def]
    return jsonify(claude_code_page(request.args.get("group", ""), parse_strict(request.args.get("strict"))).to_dict())


@bp.get("/managed-settings")
@admin_required
def get_managed_settings():  # type: ignore[no-untyped-def]
    """The file itself (``?group=<id>`` required, ``strict=1`` optional), recorded as a download."""
    group_id = request.args.get("group", "").strip()
    if not group_id:
        raise Invalid("group_required", "Name the group: ?group=<id>.", field="group")
    current = managed.download(group_id, strict=parse_strict(request.args.get("strict")), actor_id=g.principal.user.id)
    return Response(current.text, mimetype="application/json")
