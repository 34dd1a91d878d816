"""``/api/me``: who the caller is."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from agnes import people
from agnes.access import login_required

bp = Blueprint("me", __name__)


@bp.get("/me")
@login_required
def whoami():  # type: ignore[no-untyped-def]
    """The caller, their groups and whether they are an admin."""
    principal = g.principal
    return jsonify(
        user=principal.user.to_dict(),
        groups=[{"id": grp.id, "name": grp.name} for grp in people.user_groups(principal.user.id)],
        is_admin=principal.is_admin,
        auth=principal.method.value,
    )


@bp.get("/me/effective-access")
@login_required
def my_effective_access():  # type: ignore[no-untyped-def]
    """Resources granted to any of the caller's groups, with the groups that grant them."""
    return jsonify(access=people.effective_access(g.principal.user.id))
