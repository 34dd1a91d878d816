"""``/admin/access``: groups on the left, every grantable item of the selected group on the right,
a checkbox per item (a toggle swaps only its row), grant/revoke all per block with a count first,
Google Workspace sync; and ``/admin/access/resources/<type>/<id>``: who reaches one resource.

Page data: :mod:`agnes.pages.admin_access` (shared with ``/api/admin/access``). Every form works
without JavaScript (a plain POST answers with a 303 back to the row's deep link).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, request, url_for

from agnes import audit, people
from agnes.access import admin_required
from agnes.errors import AppError
from agnes.htmx import fragment_or_redirect, job_started, render, wants_fragment
from agnes.jobs.google_groups import start_google_group_sync
from agnes.pages.admin_access import access_page, access_row, bulk_preview, resource_page

bp = Blueprint("admin_access", __name__)


def _page_url(group_id: str, anchor: str = "", q: str = "") -> str:
    return url_for("admin_access.show_access", group=group_id, q=q or None) + (f"#{anchor}" if anchor else "")


@bp.get("/admin/access")
@admin_required
def show_access():  # type: ignore[no-untyped-def]
    """Groups and, for ``?group=<id>``, every item with a checkbox; ``q`` filters (the filter swaps
    the resources panel only)."""
    page = access_page(request.args.get("group", ""), request.args.get("q", ""))
    return render("admin/access/index.html", "admin/access/_resources.html", page=page)


@bp.get("/admin/grants")
@admin_required
def grants_redirect():  # type: ignore[no-untyped-def]
    """The old grants page: grants are managed on /admin/access."""
    return redirect(url_for("admin_access.show_access", group=request.args.get("group") or None), code=301)


def _row_response(
    group_id: str, resource_type: str, resource_id: str, *, status: int = 200, message: str = "", **known: Any
):  # type: ignore[no-untyped-def]
    anchor = f"{resource_type}:{resource_id}"
    if not wants_fragment():
        if status >= 400:
            return render("admin/access/index.html", status=status, page=access_page(group_id), notice=message)
        return redirect(_page_url(group_id, anchor), code=303)
    row = access_row(group_id, resource_type, resource_id, message=message, **known)
    if row is None:  # an orphaned grant was revoked: its row goes
        return render("admin/access/index.html", "admin/access/_empty.html", status=status)
    return render("admin/access/index.html", "admin/access/_row.html", status=status, row=row, group_id=group_id)


@bp.post("/admin/access/grants")
@admin_required
def grant_post():  # type: ignore[no-untyped-def]
    """Tick a box: grant ``resource_type``/``resource_id`` to ``group_id``; answers with the row."""
    group_id = request.form.get("group_id", "")
    rtype, rid = request.form.get("resource_type", ""), request.form.get("resource_id", "")
    try:
        grant = people.create_grant(group_id, rtype, rid, actor_id=g.principal.user.id)
    except AppError as exc:
        if exc.code != "grant_exists":  # a double click: the row shows the grant anyway
            raise
        return _row_response(group_id, rtype, rid)
    return _row_response(grant.group_id, grant.resource_type, grant.resource_id, grant=grant)


@bp.post("/admin/access/grants/<grant_id>/delete")
@admin_required
def revoke_post(grant_id: str):  # type: ignore[no-untyped-def]
    """Untick a box: revoke the grant (the grant id says which row). A system plugin's grant
    answers 409 with the row still checked and the reason; nothing is written."""
    try:
        grant = people.delete_grant(grant_id)
    except AppError as exc:
        if exc.code != "cannot_revoke_system_grant":
            raise
        kept = people.get_grant(grant_id)
        return _row_response(
            kept.group_id, kept.resource_type, kept.resource_id, status=409, message=exc.message, grant=kept
        )
    return _row_response(grant.group_id, grant.resource_type, grant.resource_id, grant=None)


def _bulk_args() -> tuple[str, str, str, str, str]:
    source = request.form if request.method == "POST" else request.args
    return (
        source.get("group", ""),
        source.get("resource_type", ""),
        source.get("block", ""),
        source.get("action", "grant"),
        source.get("q", ""),
    )


@bp.get("/admin/access/bulk")
@admin_required
def bulk_confirm():  # type: ignore[no-untyped-def]
    """The confirmation of "grant all" / "revoke all" of one block, with how many items change."""
    preview = bulk_preview(*_bulk_args())
    return render("admin/access/bulk_confirm.html", "admin/access/_bulk_confirm.html", preview=preview)


@bp.post("/admin/access/bulk")
@admin_required
def bulk_post():  # type: ignore[no-untyped-def]
    """Grant or revoke every item of one block (as filtered) in one unit."""
    group_id, rtype, block, action, q = _bulk_args()
    preview = bulk_preview(group_id, rtype, block, action, q)
    people.set_grants(group_id, rtype, preview.ids, granted=action == "grant", actor_id=g.principal.user.id)
    return fragment_or_redirect("admin/access/_resources.html", _page_url(group_id, q=q), page=access_page(group_id, q))


@bp.post("/admin/access/google-sync")
@admin_required
def google_sync_post():  # type: ignore[no-untyped-def]
    """ "Sync now": start the Google Workspace group sync and show its live status."""
    job = start_google_group_sync(owner_id=g.principal.user.id)
    audit.describe("google_sync.start", "google:directory", job_id=job.id)
    return job_started(job, url_for("admin_access.show_access"))


@bp.get("/admin/access/resources/<resource_type>/<path:resource_id>")
@admin_required
def show_resource(resource_type: str, resource_id: str):  # type: ignore[no-untyped-def]
    """Who reaches one resource: groups granted, users (paged), subscribers and who is served it."""
    reach = resource_page(g.principal, resource_type, resource_id, request.args.get("page", 1, type=int) or 1)
    return render("admin/access/resource.html", "admin/access/_reach_users.html", reach=reach)
