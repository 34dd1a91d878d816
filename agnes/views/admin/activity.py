"""``/admin/activity``: the health pulse and the audit timeline (filters in the URL, "Load more")."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from agnes.access import admin_required
from agnes.errors import Invalid
from agnes.htmx import render
from agnes.jobs.health import health_pulse
from agnes.pages.activity_changes import ChangesFilters, ChangeType, changes_page
from agnes.pages.activity_syncs import syncs_page
from agnes.pages.admin_activity import CLIENT_KINDS, TEXT_FILTERS, ActivityFilters, timeline_page

bp = Blueprint("admin_activity", __name__, url_prefix="/admin/activity")


def _context(**extra: Any) -> dict[str, Any]:
    return {"health": health_pulse(), "client_kinds": CLIENT_KINDS, "errors": {}, **extra}


@bp.get("")
@admin_required
def show_activity():  # type: ignore[no-untyped-def]
    """Health pulse and timeline; htmx's "Load more" gets the next page of rows only. A filter
    that does not parse re-renders the form with the error at its field (422)."""
    try:
        filters = ActivityFilters.from_args(request.args)
    except Invalid as error:
        typed = {name: request.args.get(name, "") for name in (*TEXT_FILTERS, "since", "until")}
        context = _context(filters=ActivityFilters(**typed), page=None, errors={error.field: error.message})
        return render("admin/activity/activity.html", status=422, **context)
    page = timeline_page(filters, actor_id=g.principal.user.id)
    return render(
        "admin/activity/activity.html", "admin/activity/_timeline_page.html", **_context(filters=filters, page=page)
    )


@bp.get("/health")
@admin_required
def health_fragment():  # type: ignore[no-untyped-def]
    """The health pulse alone (the page polls it every 30 s; not audited)."""
    return render("admin/activity/health.html", "admin/activity/_health.html", health=health_pulse())


@bp.get("/syncs")
@admin_required
def show_syncs():  # type: ignore[no-untyped-def]
    """The Syncs tab: tables and marketplaces with their last sync, next due and Sync now."""
    return render("admin/activity/syncs.html", "admin/activity/_syncs.html", health=health_pulse(), page=syncs_page())


@bp.get("/changes")
@admin_required
def show_changes():  # type: ignore[no-untyped-def]
    """The Changes tab: registry changes with their fields before and after, the plugins each
    marketplace sync changed and each table sync's row-count change; htmx's "Load more" gets the
    next page of rows only. A filter that does not parse re-renders the form with the error (422)."""
    context: dict[str, Any] = {"health": health_pulse(), "types": list(ChangeType), "errors": {}}
    try:
        filters = ChangesFilters.from_args(request.args)
    except Invalid as error:
        typed = {name: request.args.get(name, "") for name in ("since", "until", "user", "type")}
        context.update(filters=ChangesFilters(**typed), page=None, errors={error.field: error.message})
        return render("admin/activity/changes.html", status=422, **context)
    page = changes_page(filters, actor_id=g.principal.user.id)
    return render(
        "admin/activity/changes.html", "admin/activity/_changes_page.html", **context, filters=filters, page=page
    )
