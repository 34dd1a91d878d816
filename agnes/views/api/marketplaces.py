"""``/api/marketplaces`` (admins: the curated registry) and ``/api/my-stack`` + install (analysts)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes import audit
from agnes.access import admin_required, login_required
from agnes.jobs.marketplace import register_marketplace, start_sync, start_sync_all
from agnes.marketplace import curated, stack, system
from agnes.pages import flea as flea_pages
from agnes.pages.admin_marketplaces import MarketplaceRow, marketplace_page, marketplaces_page
from agnes.views.api.body import json_body

bp = Blueprint("marketplaces", __name__)


# -- admin: curated marketplaces -----------------------------------------------------------------------


@bp.get("/marketplaces")
@admin_required
def list_marketplaces():  # type: ignore[no-untyped-def]
    return jsonify(marketplaces=[row.to_dict() for row in marketplaces_page()])


@bp.post("/marketplaces")
@admin_required
def create_marketplace():  # type: ignore[no-untyped-def]
    body = json_body()
    user = g.principal.user
    mp, job = register_marketplace(
        body, sync=bool(body.get("sync")), actor_id=user.id, actor_email=user.email, actor_name=user.name
    )
    payload = MarketplaceRow(mp, curated.has_token(mp)).to_dict()
    if job is not None:
        payload["job"] = job.to_dict()
    return jsonify(payload), 201


@bp.get("/marketplaces/<marketplace_id>")
@admin_required
def get_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    """One marketplace with its plugins, sync history and sync job (the admin page's data)."""
    return jsonify(marketplace_page(marketplace_id).to_dict())


@bp.patch("/marketplaces/<marketplace_id>")
@admin_required
def update_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    body = json_body()
    mp = curated.update_marketplace(marketplace_id, body)
    return jsonify(MarketplaceRow(mp, curated.has_token(mp)).to_dict())


@bp.delete("/marketplaces/<marketplace_id>")
@admin_required
def delete_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    purge = request.args.get("purge", "").lower() in ("1", "true", "yes")
    curated.delete_marketplace(marketplace_id, purge=purge)
    return "", 204


@bp.post("/marketplaces/<marketplace_id>/sync")
@admin_required
def sync_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    job = start_sync(marketplace_id, owner_id=g.principal.user.id)
    audit.describe("marketplace.sync", f"marketplace:{marketplace_id}", job_id=job.id)
    return jsonify(job=job.to_dict()), 202


@bp.post("/marketplaces/sync-all")
@admin_required
def sync_all_marketplaces():  # type: ignore[no-untyped-def]
    job = start_sync_all(owner_id=g.principal.user.id)
    audit.describe("marketplace.sync_all", "marketplace:_all", job_id=job.id)
    return jsonify(job=job.to_dict()), 202


@bp.get("/marketplaces/<marketplace_id>/plugins")
@admin_required
def list_plugins(marketplace_id: str):  # type: ignore[no-untyped-def]
    return jsonify(plugins=[p.to_dict() for p in curated.list_plugins(marketplace_id)])


@bp.get("/marketplaces/<marketplace_id>/history")
@admin_required
def sync_history(marketplace_id: str):  # type: ignore[no-untyped-def]
    curated.get_marketplace(marketplace_id)
    return jsonify(history=[h.to_dict() for h in curated.sync_history(marketplace_id)])


@bp.get("/marketplaces/<marketplace_id>/plugins/<name>/system")
@admin_required
def system_preview(marketplace_id: str, name: str):  # type: ignore[no-untyped-def]
    """What a mark or an unmark would change (the confirmation's counts)."""
    return jsonify(system.preview(marketplace_id, name).to_dict())


@bp.post("/marketplaces/<marketplace_id>/plugins/<name>/system")
@admin_required
def mark_system(marketplace_id: str, name: str):  # type: ignore[no-untyped-def]
    counts = system.set_system(marketplace_id, name, True, actor_id=g.principal.user.id)
    return jsonify(is_system=True, affected_groups=counts["groups"], affected_users=counts["users"])


@bp.delete("/marketplaces/<marketplace_id>/plugins/<name>/system")
@admin_required
def unmark_system(marketplace_id: str, name: str):  # type: ignore[no-untyped-def]
    """Unmark; ``?revoke_fanout=1`` also deletes the grants and subscriptions the fan-out added."""
    revoke = request.args.get("revoke_fanout", "") in ("1", "true", "yes")
    counts = system.set_system(marketplace_id, name, False, actor_id=g.principal.user.id, revoke_fanout=revoke)
    return jsonify(is_system=False, revoked_grants=counts["groups"], revoked_subscriptions=counts["users"])


# -- analysts: my stack ------------------------------------------------------------------------


@bp.get("/my-stack")
@login_required
def my_stack():  # type: ignore[no-untyped-def]
    """Curated plugins granted to the caller, with ``subscribed`` and ``served``, and ``flea``: the
    caller's flea-market installs (cards, each its own plugin ``<name>-by-<handle>``)."""
    return jsonify(
        plugins=[entry.to_dict() for entry in stack.my_stack(g.principal)], flea=flea_pages.my_installs(g.principal)
    )


@bp.post("/marketplace/curated/<slug>/<plugin>/install")
@login_required
def install_plugin(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    """Subscribe; ``claude_commands`` are what to run in Claude Code next (the exact names)."""
    entry = stack.install(g.principal, slug, plugin)
    name = stack.served_name(g.principal, slug, plugin) or entry.plugin.manifest_name
    return jsonify({**entry.to_dict(), "claude_commands": stack.claude_commands("added", name)})


@bp.delete("/marketplace/curated/<slug>/<plugin>/install")
@login_required
def uninstall_plugin(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    """Unsubscribe; ``claude_commands`` remove the installed copy from Claude Code."""
    name = stack.served_name(g.principal, slug, plugin)  # before: the name Claude Code installed it as
    removed = stack.uninstall(g.principal, slug, plugin)
    commands = stack.claude_commands("removed", name) if removed and name else [stack.REFRESH_COMMAND]
    return jsonify(id=f"{slug}/{plugin}", subscribed=False, removed=removed, claude_commands=commands)
