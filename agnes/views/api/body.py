"""Reading a JSON API request body (parsed by :mod:`agnes.jsonio` with its limits)."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from agnes.errors import Invalid
from agnes.jsonio import BodyRefused, check_text


def json_value(*, required: bool = True) -> Any:
    """The request's JSON value, any type; None for an empty body when not ``required``.

    Raises:
        Invalid: 400 ``invalid_json`` (not JSON, too large, too deep, or missing when required),
            or ``invalid_text`` naming the field that holds a NUL or a lone surrogate.
    """
    data = request.get_data(cache=True)
    if not data.strip():
        if required:
            raise Invalid("invalid_json", "Send a JSON object body (Content-Type: application/json).")
        return None
    try:
        value = current_app.json.loads(data)
    except BodyRefused as exc:
        raise Invalid("invalid_json", f"The body is not accepted: {exc}.") from None
    except ValueError:  # malformed JSON, or bytes that are not UTF-8
        raise Invalid("invalid_json", "The body is not valid JSON.") from None
    check_text(value)
    return value


def json_body() -> dict[str, Any]:
    """The request's JSON object (a form post's fields, for HTML clients). Raises Invalid (400)."""
    if request.form and not request.is_json:
        body: Any = dict(request.form)
        check_text(body)
        return body
    body = json_value()
    if not isinstance(body, dict):
        raise Invalid("invalid_json", "The JSON body must be an object.")
    return body
