"""Errors a view raises to answer a client: JSON under ``/api``, an HTML page elsewhere."""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template, request


class AppError(Exception):
    """A client-facing error with an HTTP status.

    Attributes:
        status: HTTP status code (400-499 for client errors).
        code: stable snake_case code for scripts (``group_not_found``).
        message: one sentence a person understands.
        field: the request field that is wrong, when one is.
    """

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class NotFound(AppError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(404, code, message)


class Conflict(AppError):
    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(409, code, message, field=field)


class Invalid(AppError):
    """400: the request is malformed or a field fails validation."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(400, code, message, field=field)


class Forbidden(AppError):
    def __init__(self, code: str = "forbidden", message: str = "You do not have access to this.") -> None:
        super().__init__(403, code, message)


def _wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes["text/html"]


def error_response(error: AppError) -> Any:
    """The response for ``error``: JSON under ``/api`` (or when asked for), else the error page."""
    if _wants_json():
        return jsonify(error.to_dict()), error.status
    return render_template("errors/error.html", error=error), error.status
