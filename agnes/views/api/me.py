"""``/api/me``: who the caller is."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from agnes.access import login_required
from agnes.models import grants, groups
from agnes.state import state_store

bp = Blueprint("me", __name__)


def user_json(user) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "active": user.active,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


@bp.get("/me")
@login_required
def whoami():  # type: ignore[no-untyped-def]
    """The caller, their groups and whether they are an admin."""
    principal = g.principal
    with state_store().read() as con:
        my_groups = groups.list_user_groups(con, principal.user.id)
    return jsonify(
        user=user_json(principal.user),
        groups=[{"id": grp.id, "name": grp.name} for grp in my_groups],
        is_admin=principal.is_admin,
        auth=principal.method.value,
    )


@bp.get("/me/effective-access")
@login_required
def my_effective_access():  # type: ignore[no-untyped-def]
    """Resources granted to any of the caller's groups, with the groups that grant them."""
    with state_store().read() as con:
        access = grants.effective_access(con, list(g.principal.group_ids))
    return jsonify(access=access)
