"""``/admin/claude-code``: the managed settings Agnes writes for a group's Claude Code (preview,
diff against the previous download, where the file goes) and the download itself.

Page data: :mod:`agnes.pages.admin_claude_code` (shared with ``/api/admin/claude-code``).
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from agnes.access import admin_required
from agnes.claude_code import managed
from agnes.htmx import render
from agnes.jobs.health import register_health_check
from agnes.pages.admin_claude_code import USER_SECTION, claude_code_page, fleet_health_fields, parse_strict
from agnes.pages.admin_users import register_user_section

bp = Blueprint("admin_claude_code", __name__)


@bp.record_once
def _add_user_section_and_health(state) -> None:  # type: ignore[no-untyped-def]
    """The admin user page shows what the user's Claude Code loaded (a section of that page), and
    the health pulse on /admin/activity shows the fleet's stale plugins (a field of it)."""
    register_user_section(USER_SECTION)
    register_health_check(fleet_health_fields)


@bp.get("/admin/claude-code")
@admin_required
def show_claude_code():  # type: ignore[no-untyped-def]
    """The selected group's file (``?group=<id>``, Everyone by default; ``strict=1`` adds
    ``strictKnownMarketplaces``)."""
    page = claude_code_page(request.args.get("group", ""), parse_strict(request.args.get("strict")))
    return render("admin/claude_code/index.html", "admin/claude_code/_settings.html", page=page)


@bp.get("/admin/claude-code/managed-settings.json")
@admin_required
def download_settings():  # type: ignore[no-untyped-def]
    """The file as an attachment, recorded as the group's latest download."""
    current = managed.download(
        request.args.get("group", ""), strict=parse_strict(request.args.get("strict")), actor_id=g.principal.user.id
    )
    return Response(
        current.text,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="managed-settings.json"'},
    )
