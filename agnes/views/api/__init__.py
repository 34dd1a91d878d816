"""JSON API used by the ``agnes`` CLI and scripts (``/api``). Bearer PAT or session cookie.

Errors are ``{"error": code, "message": text, "field"?: name}`` with the HTTP status. A new API
area adds its blueprint to :data:`CHILDREN`.
"""

from __future__ import annotations

from flask import Blueprint

from agnes.views.api import (
    access,
    activity,
    admin_users,
    claude_code,
    data,
    feedback,
    flea,
    jobs,
    marketplace_browse,
    marketplaces,
    me,
    remote,
    sessions,
    sessions_admin,
    tokens,
    usage,
)

bp = Blueprint("api", __name__, url_prefix="/api")

CHILDREN = (
    me.bp,
    tokens.bp,
    access.bp,
    admin_users.bp,
    jobs.bp,
    marketplaces.bp,
    data.bp,
    remote.bp,
    marketplace_browse.bp,
    activity.bp,
    feedback.bp,
    sessions.bp,
    sessions_admin.bp,
    usage.bp,
    claude_code.bp,
    flea.bp,
)
for _child in CHILDREN:
    bp.register_blueprint(_child)
