"""``/api/marketplaces`` (admins: the curated registry) and ``/api/my-stack`` + install (analysts)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from agnes import audit
from agnes.access import admin_required, login_required
from agnes.marketplace import registry, stack
from agnes.models.marketplace_history import SyncRecord
from agnes.models.marketplaces import Marketplace, Plugin
from agnes.views.api import json_body

bp = Blueprint("marketplaces", __name__)


def marketplace_json(mp: Marketplace) -> dict[str, Any]:
    return {
        "id": mp.id,
        "slug": mp.slug,
        "name": mp.name,
        "url": mp.url,
        "branch": mp.branch,
        "description": mp.description,
        "curator_name": mp.curator_name,
        "curator_email": mp.curator_email,
        "has_token": registry.has_token(mp),
        "registered_at": mp.registered_at.isoformat(),
        "last_synced_at": mp.last_synced_at.isoformat() if mp.last_synced_at else None,
        "last_commit_sha": mp.last_commit_sha,
        "last_error": mp.last_error,
        "plugin_count": mp.plugin_count,
    }


def plugin_json(p: Plugin) -> dict[str, Any]:
    return {
        "id": p.resource_id,
        "marketplace": p.marketplace_id,
        "name": p.name,
        "manifest_name": p.manifest_name,
        "description": p.description,
        "version": p.version,
        "author": p.author_name,
        "homepage": p.homepage,
        "category": p.category,
        "source_kind": p.source_kind,
        "source": p.source_spec,
        "skills": p.skill_count,
        "agents": p.agent_count,
        "commands": p.command_count,
        "available": p.available,
        "unavailable_reason": p.unavailable_reason,
        "files": p.file_count,
        "size_bytes": p.size_bytes,
        "is_system": p.is_system,
        "updated_at": p.updated_at.isoformat(),
    }


def history_json(h: SyncRecord) -> dict[str, Any]:
    return {
        "id": h.id,
        "status": h.status,
        "started_at": h.started_at.isoformat(),
        "finished_at": h.finished_at.isoformat(),
        "commit": h.commit_sha,
        "plugin_count": h.plugin_count,
        "added": h.added,
        "removed": h.removed,
        "changed": h.changed,
        "unavailable": h.unavailable,
        "error": h.error,
    }


# -- admin: the registry -----------------------------------------------------------------------


@bp.get("/marketplaces")
@admin_required
def list_marketplaces():  # type: ignore[no-untyped-def]
    return jsonify(marketplaces=[marketplace_json(m) for m in registry.list_marketplaces()])


@bp.post("/marketplaces")
@admin_required
def create_marketplace():  # type: ignore[no-untyped-def]
    body = json_body()
    user = g.principal.user
    mp = registry.create_marketplace(body, actor_id=user.id, actor_email=user.email, actor_name=user.name)
    audit.describe("marketplace.create", f"marketplace:{mp.id}", **{k: v for k, v in body.items() if k != "token"})
    payload = marketplace_json(mp)
    if body.get("sync"):
        payload["job"] = registry.start_sync(mp.id, owner_id=user.id).to_dict()
    return jsonify(payload), 201


@bp.get("/marketplaces/<marketplace_id>")
@admin_required
def get_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    payload = marketplace_json(registry.get_marketplace(marketplace_id))
    payload["history"] = [history_json(h) for h in registry.sync_history(marketplace_id, limit=10)]
    return jsonify(payload)


@bp.patch("/marketplaces/<marketplace_id>")
@admin_required
def update_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    body = json_body()
    mp = registry.update_marketplace(marketplace_id, body)
    audit.describe(
        "marketplace.update",
        f"marketplace:{marketplace_id}",
        **{k: v for k, v in body.items() if k != "token"},
        token=("cleared" if body.get("token") == "" else "rotated") if "token" in body else None,
    )
    return jsonify(marketplace_json(mp))


@bp.delete("/marketplaces/<marketplace_id>")
@admin_required
def delete_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    purge = request.args.get("purge", "").lower() in ("1", "true", "yes")
    counts = registry.delete_marketplace(marketplace_id, purge=purge)
    audit.describe("marketplace.delete", f"marketplace:{marketplace_id}", purge=purge, **counts)
    return "", 204


@bp.post("/marketplaces/<marketplace_id>/sync")
@admin_required
def sync_marketplace(marketplace_id: str):  # type: ignore[no-untyped-def]
    job = registry.start_sync(marketplace_id, owner_id=g.principal.user.id)
    audit.describe("marketplace.sync", f"marketplace:{marketplace_id}", job_id=job.id)
    return jsonify(job=job.to_dict()), 202


@bp.post("/marketplaces/sync-all")
@admin_required
def sync_all_marketplaces():  # type: ignore[no-untyped-def]
    job = registry.start_sync_all(owner_id=g.principal.user.id)
    audit.describe("marketplace.sync_all", "marketplace:_all", job_id=job.id)
    return jsonify(job=job.to_dict()), 202


@bp.get("/marketplaces/<marketplace_id>/plugins")
@admin_required
def list_plugins(marketplace_id: str):  # type: ignore[no-untyped-def]
    return jsonify(plugins=[plugin_json(p) for p in registry.list_plugins(marketplace_id)])


@bp.get("/marketplaces/<marketplace_id>/history")
@admin_required
def sync_history(marketplace_id: str):  # type: ignore[no-untyped-def]
    registry.get_marketplace(marketplace_id)
    return jsonify(history=[history_json(h) for h in registry.sync_history(marketplace_id)])


@bp.post("/marketplaces/<marketplace_id>/plugins/<name>/system")
@admin_required
def mark_system(marketplace_id: str, name: str):  # type: ignore[no-untyped-def]
    counts = registry.set_system(marketplace_id, name, True, actor_id=g.principal.user.id)
    audit.describe("marketplace.plugin.mark_system", f"plugin:{marketplace_id}/{name}", **counts)
    return jsonify(is_system=True, affected_groups=counts["groups"], affected_users=counts["users"])


@bp.delete("/marketplaces/<marketplace_id>/plugins/<name>/system")
@admin_required
def unmark_system(marketplace_id: str, name: str):  # type: ignore[no-untyped-def]
    registry.set_system(marketplace_id, name, False, actor_id=g.principal.user.id)
    audit.describe("marketplace.plugin.unmark_system", f"plugin:{marketplace_id}/{name}")
    return jsonify(is_system=False)


# -- analysts: my stack ------------------------------------------------------------------------


@bp.get("/my-stack")
@login_required
def my_stack():  # type: ignore[no-untyped-def]
    """Curated plugins granted to the caller, with ``subscribed`` and ``served``."""
    return jsonify(plugins=[entry.to_dict() for entry in stack.my_stack(g.principal)])


@bp.post("/marketplace/curated/<slug>/<plugin>/install")
@login_required
def install_plugin(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    entry = stack.install(g.principal, slug, plugin)
    audit.describe("marketplace.subscribe", f"plugin:{slug}/{plugin}")
    return jsonify(entry.to_dict())


@bp.delete("/marketplace/curated/<slug>/<plugin>/install")
@login_required
def uninstall_plugin(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    removed = stack.uninstall(g.principal, slug, plugin)
    audit.describe("marketplace.unsubscribe", f"plugin:{slug}/{plugin}", removed=removed)
    return jsonify(id=f"{slug}/{plugin}", subscribed=False, removed=removed)
