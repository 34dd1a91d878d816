"""Error responses: JSON ``{"error", "message", "field"?}`` under /api, an HTML page elsewhere."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from agnes.errors import AppError, error_response

log = logging.getLogger(__name__)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(error: AppError):  # type: ignore[no-untyped-def]
        return error_response(error)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):  # type: ignore[no-untyped-def]
        return error_response(
            AppError(400, "csrf_failed", "The form expired or came from another site. Reload the page and try again.")
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}
        messages = {
            404: "There is nothing at this address.",
            405: "This address does not accept that method.",
            413: "The upload is larger than this server accepts.",
        }
        status = error.code or 500
        response = error_response(
            AppError(status, codes.get(status, "http_error"), messages.get(status, error.description or ""))
        )
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            AppError(500, "internal_error", "Something went wrong on our side; the error was logged.")
        )
