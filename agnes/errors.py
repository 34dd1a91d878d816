"""Errors a view raises to answer a client (JSON under ``/api``, an HTML page elsewhere), and the
words for people of any error (:func:`human_message`): pages and the CLI never show class names."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify, render_template, request


class AppError(Exception):
    """A client-facing error with an HTTP status.

    Attributes:
        status: HTTP status code (400-499 for client errors).
        code: stable snake_case code for scripts (``group_not_found``).
        message: one sentence a person understands.
        field: the request field that is wrong, when one is.
        headers: extra response headers (``Retry-After`` on a 503).
    """

    def __init__(
        self, status: int, code: str, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class NotFound(AppError):
    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(404, code, message, field=field)


class Conflict(AppError):
    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(409, code, message, field=field)


class Invalid(AppError):
    """400: the request is malformed or a field fails validation."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(400, code, message, field=field)


class Unprocessable(AppError):
    """422: the request is well formed but cannot work (a repository path that does not exist)."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(422, code, message, field=field)


class FieldErrors(AppError):
    """Several fields refused at once, so a form shows every error together, not the first.

    The body is the first refusal's ``{error, message, field}`` plus ``errors``: every refusal as
    ``{field, error, message}``. The status is 422 when any refusal is 422, else the first one's.
    :attr:`by_field` maps each field to its message (what a form shows at the field).
    """

    def __init__(self, refusals: list[AppError]) -> None:
        first = refusals[0]
        status = 422 if any(r.status == 422 for r in refusals) else first.status
        super().__init__(status, first.code, first.message, field=first.field)
        self.refusals = list(refusals)

    @property
    def by_field(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for r in self.refusals:
            out.setdefault(r.field or "form", r.message)
        return out

    def to_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {
            **super().to_dict(),
            "errors": [{"field": r.field, "error": r.code, "message": r.message} for r in self.refusals],
        }


def field_errors(error: AppError, default_field: str = "form") -> dict[str, str]:
    """``{field: message}`` of an error for a form: every field of :class:`FieldErrors`, else the one."""
    if isinstance(error, FieldErrors):
        return error.by_field
    return {error.field or default_field: error.message}


def validate_fields(data: dict[str, Any], checks: dict[str, Any]) -> dict[str, Any]:
    """Run ``checks[field](data.get(field))`` for every field and return the cleaned values.

    Raises the single :class:`AppError` when one field fails, :class:`FieldErrors` when several do.
    """
    values: dict[str, Any] = {}
    refusals: list[AppError] = []
    for name, check in checks.items():
        try:
            values[name] = check(data.get(name))
        except AppError as exc:
            refusals.append(exc)
    if len(refusals) == 1:
        raise refusals[0]
    if refusals:
        raise FieldErrors(refusals)
    return values


class Forbidden(AppError):
    def __init__(self, code: str = "forbidden", message: str = "You do not have access to this.") -> None:
        super().__init__(403, code, message)


# Paths answered in JSON whatever the Accept header: the API and the OTLP intake (``/v1/logs``).
JSON_PREFIXES = ("/api/", "/v1/")


def _wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes["text/html"]


def error_response(error: AppError) -> Any:
    """The response for ``error``: JSON under ``/api`` (or when asked for), else the error page."""
    if _wants_json():
        return jsonify(error.to_dict()), error.status, error.headers
    return render_template("errors/error.html", error=error), error.status, error.headers


# Plain words for exceptions that carry no text of their own (checked in order: subclasses first).
_PLAIN_WORDS: tuple[tuple[type[BaseException], str], ...] = (
    (TimeoutError, "timed out"),
    (ConnectionRefusedError, "the connection was refused"),
    (ConnectionResetError, "the connection was reset"),
    (ConnectionError, "the connection failed"),
    (PermissionError, "permission denied"),
    (FileNotFoundError, "file not found"),
    (MemoryError, "out of memory"),
)
# ``package.module.ClassName: `` at the start of a traceback's exception line.
_CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*: ")
_CLASS_ONLY = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*$")
_HORSE_DIED = re.compile(r"^Work-horse terminated unexpectedly; waitpid returned (-?\d+)(?: \(signal (\d+)\))?")
UNEXPECTED = "unexpected error (details are in the server log)"


def human_message(exc: BaseException) -> str:
    """What went wrong, in words for people: the exception's own text, never its class name.

    Returns:
        One line: ``AppError.message``; for OS errors their ``strerror`` (and file name); else
        ``str(exc)``; for an exception without text a plain phrase (``"timed out"``) or
        :data:`UNEXPECTED`. Secrets are not masked here (callers redact).
    """
    if isinstance(exc, AppError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror[:1].lower() + exc.strerror[1:]
        return f"{text}: {exc.filename}" if exc.filename else text
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        return f"missing key {exc.args[0]!r}"
    text = str(exc).strip()
    if text:
        return text.splitlines()[0].strip()
    for kind, words in _PLAIN_WORDS:
        if isinstance(exc, kind):
            return words
    return UNEXPECTED


def message_from_traceback(text: str | None) -> str:
    """The exception message of a formatted traceback (RQ's ``exc_string``), without the class name.

    ``agnes.marketplace.sync.SyncError: the host name does not resolve`` (last line of a traceback)
    becomes ``the host name does not resolve``; RQ's note about a killed work-horse becomes a
    sentence. Returns ``""`` for an empty text.
    """
    lines = [ln.rstrip() for ln in (text or "").strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    # The exception block follows the last indented frame line ("  File ...", "    code").
    start = max((i + 1 for i, ln in enumerate(lines) if ln.startswith(" ")), default=0)
    block = lines[start:] or lines[-1:]
    first = block[0].strip()
    died = _HORSE_DIED.match(first)
    if died:
        signal = f" (signal {died.group(2)})" if died.group(2) else ""
        return f"the worker process running this job stopped unexpectedly{signal}"
    if _CLASS_ONLY.match(first) and ("." in first or first[:1].isupper()):
        return UNEXPECTED
    return _CLASS_PREFIX.sub("", first, count=1).strip() or UNEXPECTED
