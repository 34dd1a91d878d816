"""``/api/admin``: groups, members, grants, resource types, the access page and "who can reach
it" (admins only). Users: :mod:`agnes.views.api.admin_users`."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes import audit, people
from agnes.access import RESOURCE_TYPES, admin_required
from agnes.jobs.google_groups import start_google_group_sync
from agnes.pages.admin_access import access_page, resource_page
from agnes.views.api.body import json_body

bp = Blueprint("access", __name__, url_prefix="/admin")


@bp.get("/resource-types")
@admin_required
def list_resource_types():  # type: ignore[no-untyped-def]
    return jsonify(
        resource_types=[
            {
                "key": key.value,
                "display_name": spec.display_name,
                "description": spec.description,
                "id_format": spec.id_format,
            }
            for key, spec in RESOURCE_TYPES.items()
        ]
    )


@bp.get("/groups")
@admin_required
def list_groups():  # type: ignore[no-untyped-def]
    return jsonify(groups=[grp.to_dict() for grp in people.list_groups()])


@bp.post("/groups")
@admin_required
def create_group():  # type: ignore[no-untyped-def]
    body = json_body()
    group = people.create_group(body.get("name"), body.get("description"), actor_id=g.principal.user.id)
    return jsonify(group.to_dict()), 201


@bp.get("/groups/<group_id>")
@admin_required
def get_group(group_id: str):  # type: ignore[no-untyped-def]
    """A group with its members and grants (the admin group page's data)."""
    return jsonify(people.group_detail(group_id).to_dict())


@bp.patch("/groups/<group_id>")
@admin_required
def update_group(group_id: str):  # type: ignore[no-untyped-def]
    body = json_body()
    group = people.update_group(group_id, name=body.get("name"), description=body.get("description"))
    return jsonify(group.to_dict())


@bp.delete("/groups/<group_id>")
@admin_required
def delete_group(group_id: str):  # type: ignore[no-untyped-def]
    people.delete_group(group_id)
    return "", 204


@bp.get("/groups/<group_id>/members")
@admin_required
def list_members(group_id: str):  # type: ignore[no-untyped-def]
    return jsonify(members=[m.to_dict() for m in people.list_members(group_id)])


@bp.post("/groups/<group_id>/members")
@admin_required
def add_member(group_id: str):  # type: ignore[no-untyped-def]
    body = json_body()
    user = people.add_member(group_id, str(body.get("email", "")), actor_id=g.principal.user.id)
    return jsonify(user_id=user.id, email=user.email, group_id=group_id), 201


@bp.delete("/groups/<group_id>/members/<user_id>")
@admin_required
def remove_member(group_id: str, user_id: str):  # type: ignore[no-untyped-def]
    people.remove_member(group_id, user_id)
    return "", 204


@bp.get("/grants")
@admin_required
def list_grants():  # type: ignore[no-untyped-def]
    found = people.list_grants(
        resource_type=request.args.get("resource_type") or None, group_id=request.args.get("group_id") or None
    )
    return jsonify(grants=[gr.to_dict() for gr in found])


@bp.post("/grants")
@admin_required
def create_grant():  # type: ignore[no-untyped-def]
    body = json_body()
    grant = people.create_grant(
        str(body.get("group_id") or body.get("group") or ""),
        str(body.get("resource_type", "")),
        str(body.get("resource_id", "")),
        actor_id=g.principal.user.id,
    )
    return jsonify(grant.to_dict()), 201


@bp.delete("/grants/<grant_id>")
@admin_required
def delete_grant(grant_id: str):  # type: ignore[no-untyped-def]
    people.delete_grant(grant_id)
    return "", 204


@bp.get("/access")
@admin_required
def get_access():  # type: ignore[no-untyped-def]
    """The /admin/access page's data: groups; with ``?group=`` every item with that group's grants."""
    return jsonify(access_page(request.args.get("group", ""), request.args.get("q", "")).to_dict())


@bp.get("/resources/<resource_type>/<path:resource_id>/access")
@admin_required
def resource_access(resource_type: str, resource_id: str):  # type: ignore[no-untyped-def]
    """Who reaches one resource: grants, users (``?page=``), subscribers and who is served it."""
    return jsonify(
        resource_page(g.principal, resource_type, resource_id, request.args.get("page", 1, type=int) or 1).to_dict()
    )


@bp.post("/access/google-sync")
@admin_required
def google_sync():  # type: ignore[no-untyped-def]
    """Start the Google Workspace group sync (one in flight); answers with the job."""
    job = start_google_group_sync(owner_id=g.principal.user.id)
    audit.describe("google_sync.start", "google:directory", job_id=job.id)
    return jsonify(job.to_dict()), 202
