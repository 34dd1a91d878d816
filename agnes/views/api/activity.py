"""``/api/admin/activity``: the audit timeline and the health pulse as JSON (admins only)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request, url_for

from agnes.access import admin_required
from agnes.jobs.health import health_pulse
from agnes.pages.activity_changes import ChangesFilters, changes_page
from agnes.pages.activity_syncs import syncs_page
from agnes.pages.admin_activity import ActivityFilters, timeline_page

bp = Blueprint("activity", __name__, url_prefix="/admin/activity")


@bp.get("")
@admin_required
def list_activity():  # type: ignore[no-untyped-def]
    """``{rows, next_cursor, filter}``, newest first. Filters: ``since``, ``until`` (ISO 8601 or
    ``24h``/``7d``; 7 days without ``since``), ``user`` (id or email), ``action`` (prefix),
    ``resource`` (prefix), ``result``, ``client_kind``, ``correlation_id``, ``q`` (text in params),
    ``cursor``, ``limit`` (1-200, default 50). A bad value answers 400 naming the field."""
    filters = ActivityFilters.from_args(request.args)
    return jsonify(timeline_page(filters, actor_id=g.principal.user.id).to_dict())


@bp.get("/health")
@admin_required
def health():  # type: ignore[no-untyped-def]
    """The health pulse (computed at most every 30 s for all processes; not audited). Each field's
    ``timeline`` is the page of its rows."""
    pulse = health_pulse().to_dict()
    for field in pulse["fields"]:
        field["timeline"] = url_for("admin_activity.show_activity", **field["link"])
    return jsonify(pulse)


@bp.get("/sync")
@admin_required
def syncs():  # type: ignore[no-untyped-def]
    """``{tables: [...], marketplaces: [...]}``: last sync, status, rows, duration, next due and last
    error of each table; last sync, plugins and last change of each marketplace; running jobs."""
    return jsonify(syncs_page().to_dict())


@bp.get("/changes")
@admin_required
def list_changes():  # type: ignore[no-untyped-def]
    """``{rows, next_cursor, filter}``: registry changes (fields before and after), marketplace syncs
    that changed plugins and table syncs that changed a row count, newest first. Filters: ``since``,
    ``until`` (as the timeline), ``user`` (id or email), ``type`` (group, member, grant, system,
    marketplace, table, token), ``cursor``, ``limit`` (1-200, default 50). A bad value answers 400
    naming the field."""
    filters = ChangesFilters.from_args(request.args)
    return jsonify(changes_page(filters, actor_id=g.principal.user.id).to_dict())
