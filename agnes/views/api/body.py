"""Reading a JSON API request body."""

from __future__ import annotations

from typing import Any

from flask import request

from agnes.errors import Invalid


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
