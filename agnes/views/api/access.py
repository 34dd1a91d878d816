"""``/api/admin``: groups, members, grants, resource types and users (admins only)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes import audit, people
from agnes.access import RESOURCE_TYPES, admin_required
from agnes.models import grants, groups, users
from agnes.models.grants import Grant
from agnes.models.groups import Group
from agnes.state import state_store
from agnes.views.api import json_body
from agnes.views.api.me import user_json

bp = Blueprint("access", __name__, url_prefix="/admin")


def group_json(group: Group) -> dict[str, object]:
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "is_system": group.is_system,
        "member_count": group.member_count,
        "grant_count": group.grant_count,
        "created_at": group.created_at.isoformat(),
    }


def grant_json(grant: Grant) -> dict[str, object]:
    return {
        "id": grant.id,
        "group_id": grant.group_id,
        "group_name": grant.group_name,
        "resource_type": grant.resource_type,
        "resource_id": grant.resource_id,
        "assigned_at": grant.assigned_at.isoformat(),
        "assigned_by": grant.assigned_by,
    }


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
    with state_store().read() as con:
        return jsonify(groups=[group_json(grp) for grp in groups.list_groups(con)])


@bp.post("/groups")
@admin_required
def create_group():  # type: ignore[no-untyped-def]
    body = json_body()
    group = people.create_group(body.get("name"), body.get("description"), actor_id=g.principal.user.id)
    audit.describe("group.create", f"group:{group.id}", name=group.name)
    return jsonify(group_json(group)), 201


@bp.get("/groups/<group_id>")
@admin_required
def get_group(group_id: str):  # type: ignore[no-untyped-def]
    return jsonify(group_json(people.get_group(group_id)))


@bp.patch("/groups/<group_id>")
@admin_required
def update_group(group_id: str):  # type: ignore[no-untyped-def]
    body = json_body()
    group = people.update_group(group_id, name=body.get("name"), description=body.get("description"))
    audit.describe("group.update", f"group:{group_id}", **body)
    return jsonify(group_json(group))


@bp.delete("/groups/<group_id>")
@admin_required
def delete_group(group_id: str):  # type: ignore[no-untyped-def]
    group = people.delete_group(group_id)
    audit.describe("group.delete", f"group:{group_id}", name=group.name)
    return "", 204


@bp.get("/groups/<group_id>/members")
@admin_required
def list_members(group_id: str):  # type: ignore[no-untyped-def]
    return jsonify(
        members=[
            {
                "user_id": m.user_id,
                "email": m.email,
                "name": m.name,
                "active": m.active,
                "sources": list(m.sources),
                "added_at": m.added_at.isoformat() if m.added_at else None,
            }
            for m in people.list_members(group_id)
        ]
    )


@bp.post("/groups/<group_id>/members")
@admin_required
def add_member(group_id: str):  # type: ignore[no-untyped-def]
    body = json_body()
    user = people.add_member(group_id, str(body.get("email", "")), actor_id=g.principal.user.id)
    audit.describe("group.member_add", f"group:{group_id}", user_id=user.id, email=user.email)
    return jsonify(user_id=user.id, email=user.email, group_id=group_id), 201


@bp.delete("/groups/<group_id>/members/<user_id>")
@admin_required
def remove_member(group_id: str, user_id: str):  # type: ignore[no-untyped-def]
    people.remove_member(group_id, user_id)
    audit.describe("group.member_remove", f"group:{group_id}", user_id=user_id)
    return "", 204


@bp.get("/grants")
@admin_required
def list_grants():  # type: ignore[no-untyped-def]
    found = people.list_grants(
        resource_type=request.args.get("resource_type") or None, group_id=request.args.get("group_id") or None
    )
    return jsonify(grants=[grant_json(gr) for gr in found])


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
    audit.describe(
        "grant.create",
        f"grant:{grant.id}",
        group_id=grant.group_id,
        resource_type=grant.resource_type,
        resource_id=grant.resource_id,
    )
    return jsonify(grant_json(grant)), 201


@bp.delete("/grants/<grant_id>")
@admin_required
def delete_grant(grant_id: str):  # type: ignore[no-untyped-def]
    grant = people.delete_grant(grant_id)
    audit.describe(
        "grant.delete",
        f"grant:{grant_id}",
        group_id=grant.group_id,
        resource_type=grant.resource_type,
        resource_id=grant.resource_id,
    )
    return "", 204


@bp.get("/users")
@admin_required
def list_users():  # type: ignore[no-untyped-def]
    with state_store().read() as con:
        found = users.list_users(con, query=request.args.get("q", ""))
    return jsonify(users=[user_json(u) for u in found])


@bp.post("/users")
@admin_required
def create_user():  # type: ignore[no-untyped-def]
    body = json_body()
    user = people.create_user(str(body.get("email", "")), str(body.get("name", "")))
    audit.describe("user.create", f"user:{user.id}", email=user.email)
    return jsonify(user_json(user)), 201


@bp.get("/users/<user_id>/effective-access")
@admin_required
def user_effective_access(user_id: str):  # type: ignore[no-untyped-def]
    user = people.resolve_user(user_id)
    with state_store().read() as con:
        access = grants.effective_access(con, groups.list_user_group_ids(con, user.id))
    return jsonify(user_id=user.id, access=access)
