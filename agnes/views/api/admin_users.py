"""``/api/admin/users`` and ``/api/admin/access/explain``: the users list and one user's page as
JSON, with their changes (admins only). ``<user_ref>`` is an id or an email."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes import people
from agnes.access import admin_required
from agnes.auth.pat import list_pats, revoke_pat
from agnes.pages.admin_users import UsersFilters, explain_for, user_page, users_list_page
from agnes.views.api.body import json_body

bp = Blueprint("admin_users", __name__, url_prefix="/admin")


@bp.get("/users")
@admin_required
def list_users():  # type: ignore[no-untyped-def]
    """A page of users (``q``, ``status``, ``group``, ``method``, ``sort``, ``page``) with the total."""
    return jsonify(users_list_page(UsersFilters.from_args(request.args)).to_dict())


@bp.post("/users")
@admin_required
def create_user():  # type: ignore[no-untyped-def]
    body = json_body()
    user = people.create_user(str(body.get("email", "")), str(body.get("name", "")))
    return jsonify(user.to_dict()), 201


@bp.get("/users/<user_ref>")
@admin_required
def get_user(user_ref: str):  # type: ignore[no-untyped-def]
    """Everything the user page shows, section by section."""
    return jsonify(user_page(user_ref).to_dict())


@bp.patch("/users/<user_ref>")
@admin_required
def update_user(user_ref: str):  # type: ignore[no-untyped-def]
    """Change the display name (``{"name": ...}``)."""
    user = people.resolve_user(user_ref)
    return jsonify(people.update_user(user.id, name=json_body().get("name")).to_dict())


@bp.post("/users/<user_ref>/deactivate")
@admin_required
def deactivate_user(user_ref: str):  # type: ignore[no-untyped-def]
    """409 ``cannot_deactivate_self`` or ``last_admin``."""
    user = people.resolve_user(user_ref)
    return jsonify(people.set_user_active(user.id, False, actor_id=g.principal.user.id).to_dict())


@bp.post("/users/<user_ref>/activate")
@admin_required
def activate_user(user_ref: str):  # type: ignore[no-untyped-def]
    user = people.resolve_user(user_ref)
    return jsonify(people.set_user_active(user.id, True, actor_id=g.principal.user.id).to_dict())


@bp.get("/users/<user_ref>/memberships")
@admin_required
def list_memberships(user_ref: str):  # type: ignore[no-untyped-def]
    user = people.resolve_user(user_ref)
    return jsonify(memberships=[m.to_dict() for m in people.memberships(user.id)])


@bp.post("/users/<user_ref>/memberships")
@admin_required
def add_membership(user_ref: str):  # type: ignore[no-untyped-def]
    """Add the user to a group (``{"group_id": ...}``, an id or a name)."""
    user = people.resolve_user(user_ref)
    ref = json_body().get("group_id")
    group = people.resolve_group(ref if isinstance(ref, str) else "")
    people.add_membership(user.id, group.id, actor_id=g.principal.user.id)
    return jsonify(memberships=[m.to_dict() for m in people.memberships(user.id)]), 201


@bp.delete("/users/<user_ref>/memberships/<group_id>")
@admin_required
def remove_membership(user_ref: str, group_id: str):  # type: ignore[no-untyped-def]
    user = people.resolve_user(user_ref)
    people.remove_member(group_id, user.id)
    return "", 204


@bp.get("/users/<user_ref>/tokens")
@admin_required
def list_tokens(user_ref: str):  # type: ignore[no-untyped-def]
    user = people.resolve_user(user_ref)
    return jsonify(tokens=[t.to_dict() for t in list_pats(user.id)])


@bp.delete("/users/<user_ref>/tokens")
@admin_required
def revoke_all_tokens(user_ref: str):  # type: ignore[no-untyped-def]
    """Revoke every active token of the user."""
    user = people.resolve_user(user_ref)
    return jsonify(revoked=people.revoke_all_tokens(user.id))


@bp.delete("/users/<user_ref>/tokens/<token_id>")
@admin_required
def revoke_token(user_ref: str, token_id: str):  # type: ignore[no-untyped-def]
    user = people.resolve_user(user_ref)
    return jsonify(revoke_pat(token_id, owner_id=user.id, by_admin=True).to_dict())


@bp.get("/access/explain")
@admin_required
def explain():  # type: ignore[no-untyped-def]
    """``?user=&resource_type=&resource_id=`` → ``{allowed, served, reasons, notes, summary}``."""
    args = request.args
    found = explain_for(args.get("user", ""), args.get("resource_type", ""), args.get("resource_id", ""))
    return jsonify(found.to_dict())


@bp.get("/users/<user_ref>/effective-access")
@admin_required
def user_effective_access(user_ref: str):  # type: ignore[no-untyped-def]
    """Resources granted to any of the user's groups, with the groups (``via_groups``)."""
    user = people.resolve_user(user_ref)
    return jsonify(user_id=user.id, access=people.effective_access(user.id))
