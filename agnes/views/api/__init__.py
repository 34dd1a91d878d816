"""JSON API used by the ``agnes`` CLI and scripts (``/api``). Bearer PAT or session cookie.

Errors are ``{"error": code, "message": text, "field"?: name}`` with the HTTP status.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from agnes.errors import Invalid

bp = Blueprint("api", __name__, url_prefix="/api")


def json_body() -> dict[str, Any]:
    """The request's JSON object. Raises Invalid (400) for a missing or non-object body."""
    body = request.get_json(silent=True)
    if body is None:
        if request.form:
            return dict(request.form)
        raise Invalid("invalid_json", "Send a JSON object body (Content-Type: application/json).")
    if not isinstance(body, dict):
        raise Invalid("invalid_json", "The JSON body must be an object.")
    return body


def _register_children() -> None:
    from agnes.views.api import access, data, jobs, marketplace_browse, marketplaces, me, tokens

    for child in (me.bp, tokens.bp, access.bp, jobs.bp, marketplaces.bp, data.bp, marketplace_browse.bp):
        bp.register_blueprint(child)


_register_children()
