"""Admin pages for curated marketplaces: register, edit, token, sync (live status), plugins, delete.

Page data: :mod:`agnes.pages.admin_marketplaces` (shared with ``/api/marketplaces``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes import audit
from agnes.access import admin_required
from agnes.errors import AppError, field_errors
from agnes.htmx import fragment_or_redirect, hx_redirect, job_started, render, wants_fragment
from agnes.jobs.marketplace import register_marketplace, start_sync, start_sync_all
from agnes.marketplace import curated, system
from agnes.pages.admin_marketplaces import LIST_REFRESH_ON, marketplace_page, marketplaces_page

bp = Blueprint("admin_marketplaces", __name__, url_prefix="/admin/marketplaces")

FORM_FIELDS = ("slug", "name", "url", "branch", "description", "curator_name", "curator_email")


def _form(source: Any = None) -> dict[str, str]:
    return {k: str(getattr(source, k, "") or "") if source is not None else "" for k in FORM_FIELDS}


def _list_context(**extra: Any) -> dict[str, Any]:
    return {
        "marketplaces": marketplaces_page(),
        "refresh_on": LIST_REFRESH_ON,
        "form": _form(),
        "errors": {},
        "job": None,
        **extra,
    }


def _page_context(marketplace_id: str, **extra: Any) -> dict[str, Any]:
    page = marketplace_page(marketplace_id)  # includes the system plugins missing upstream
    return {"page": page, "form": _form(page.marketplace), "errors": {}, "token_errors": {}, **extra}


def _page_refused(marketplace_id: str, **extra: Any):  # type: ignore[no-untyped-def]
    """The marketplace page again (422) with the submitted values and the refusal at its field."""
    return render("admin/marketplaces/show.html", status=422, **_page_context(marketplace_id, **extra))


@bp.get("")
@admin_required
def list_marketplaces():  # type: ignore[no-untyped-def]
    """All registered marketplaces with their sync state."""
    return render("admin/marketplaces/index.html", "admin/marketplaces/_table.html", **_list_context())


@bp.post("")
@admin_required
def create_marketplace_post():  # type: ignore[no-untyped-def]
    """Register a marketplace from the form, then start its first sync."""
    form = {k: request.form.get(k, "") for k in FORM_FIELDS}
    user = g.principal.user
    try:
        mp, _ = register_marketplace(
            {**form, "token": request.form.get("token", "")},
            sync=True,
            actor_id=user.id,
            actor_email=user.email,
            actor_name=user.name,
        )
    except AppError as exc:
        if exc.status not in (400, 409, 422):
            raise
        return render(
            "admin/marketplaces/index.html",
            "admin/marketplaces/_form.html",
            status=422,
            **_list_context(form=form, errors=field_errors(exc, "slug")),
        )
    flash(f"Marketplace {mp.name} registered; the first sync has started.", "success")
    target = url_for("admin_marketplaces.show_marketplace", marketplace_id=mp.id)
    return hx_redirect(redirect(target, code=303), target)


@bp.post("/sync-all")
@admin_required
def sync_all_post():  # type: ignore[no-untyped-def]
    """Sync every marketplace now (the nightly job, on demand)."""
    job = start_sync_all(owner_id=g.principal.user.id)
    audit.describe("marketplace.sync_all", "marketplace:_all", job_id=job.id)
    return job_started(job, url_for("jobs.show_job", job_id=job.id))


@bp.get("/<marketplace_id>")
@admin_required
def show_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    """One marketplace: settings, token, sync, plugins and sync history. The fragment is what a
    sync changes (facts, plugins, history): the page fetches it again when a sync job ends."""
    return render("admin/marketplaces/show.html", "admin/marketplaces/_live.html", **_page_context(marketplace_id))


@bp.post("/<marketplace_id>")
@admin_required
def update_marketplace_post(marketplace_id: str):  # type: ignore[no-untyped-def]
    """Save the settings form."""
    form = {k: request.form.get(k, "") for k in FORM_FIELDS if k != "slug"}
    try:
        curated.update_marketplace(marketplace_id, form)
    except AppError as exc:
        if exc.status == 404:
            raise
        return _page_refused(marketplace_id, form={**form, "slug": marketplace_id}, errors=field_errors(exc, "name"))
    flash("Settings saved.", "success")
    return redirect(url_for("admin_marketplaces.show_marketplace", marketplace_id=marketplace_id), code=303)


@bp.post("/<marketplace_id>/token")
@admin_required
def token_post(marketplace_id: str):  # type: ignore[no-untyped-def]
    """Rotate (a new value) or clear (``action=clear``) the access token."""
    clear = request.form.get("action") == "clear"
    token = "" if clear else request.form.get("token", "")
    if not clear and not token.strip():
        return _page_refused(marketplace_id, token_errors={"token": "Enter the new token."})
    try:
        curated.update_marketplace(marketplace_id, {"token": token})
    except AppError as exc:
        if exc.status == 404:
            raise
        return _page_refused(marketplace_id, token_errors={"token": exc.message})
    flash("Access token cleared." if clear else "Access token saved.", "success")
    return redirect(url_for("admin_marketplaces.show_marketplace", marketplace_id=marketplace_id), code=303)


@bp.post("/<marketplace_id>/sync")
@admin_required
def sync_post(marketplace_id: str):  # type: ignore[no-untyped-def]
    """Start a sync and show its live status."""
    job = start_sync(marketplace_id, owner_id=g.principal.user.id)
    audit.describe("marketplace.sync", f"marketplace:{marketplace_id}", job_id=job.id)
    return job_started(job, url_for("admin_marketplaces.show_marketplace", marketplace_id=marketplace_id))


@bp.get("/<marketplace_id>/plugins/<name>/system")
@admin_required
def system_confirm(marketplace_id: str, name: str):  # type: ignore[no-untyped-def]
    """The confirmation of a mark or unmark, with how many groups and users it changes."""
    return render(
        "admin/marketplaces/system_confirm.html",
        "admin/marketplaces/_system_confirm.html",
        preview=system.preview(marketplace_id, name),
    )


@bp.post("/<marketplace_id>/plugins/<name>/system")
@admin_required
def system_post(marketplace_id: str, name: str):  # type: ignore[no-untyped-def]
    """Mark (``system=1``) or unmark a plugin; an unmark with ``revoke_fanout=1`` also deletes
    what the fan-out added."""
    mark = request.form.get("system") == "1"
    revoke = not mark and request.form.get("revoke_fanout") == "1"
    counts = system.set_system(marketplace_id, name, mark, actor_id=g.principal.user.id, revoke_fanout=revoke)
    if not wants_fragment():  # the fragment shows the new state itself
        if mark:
            flash(
                f"{name} is a system plugin: {counts['groups']} groups granted, {counts['users']} users subscribed.",
                "success",
            )
        elif revoke:
            flash(
                f"{name} unmarked: {counts['groups']} fan-out grants and {counts['users']} subscriptions revoked.",
                "success",
            )
        else:
            flash(f"{name} unmarked; its grants and subscriptions stay.", "success")
    return fragment_or_redirect(
        "admin/marketplaces/_plugins.html",
        url_for("admin_marketplaces.show_marketplace", marketplace_id=marketplace_id),
        **_page_context(marketplace_id),
    )


@bp.post("/<marketplace_id>/delete")
@admin_required
def delete_post(marketplace_id: str):  # type: ignore[no-untyped-def]
    """Unregister; with ``purge`` also delete the working copy."""
    purge = request.form.get("purge") == "1"
    mp = curated.get_marketplace(marketplace_id)
    curated.delete_marketplace(marketplace_id, purge=purge)
    flash(f"Marketplace {mp.name} deleted.", "success")
    target = url_for("admin_marketplaces.list_marketplaces")
    return hx_redirect(redirect(target, code=303), target)
