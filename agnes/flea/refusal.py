"""The one error an upload check raises: :class:`UploadRefused` (re-exported by ``agnes.flea.checks``)."""

from __future__ import annotations

from typing import Any

from agnes.errors import AppError


class UploadRefused(AppError):
    """A refusal: status (400/409/413/422/429), error code, message a person understands, field.

    An :class:`~agnes.errors.AppError`, so a view that lets it propagate answers
    ``{"error", "message", "field"}`` with the status; ``findings`` (a list of
    :meth:`agnes.flea.scan.Finding.to_dict` shapes) is added for ``security_blocked``.

    Attributes:
        status: HTTP status.
        error: the stable code (``zip_unsafe_path``); also available as ``code``.
        message: one sentence naming the file or field, never a secret.
        field: the form field at fault (``file``, ``name``, ``type``, ``category``).
        findings: the scan findings that blocked the upload, else None.
    """

    def __init__(self, status: int, error: str, message: str, field: str, findings: list | None = None) -> None:
        super().__init__(status, error, message, field=field)
        self.findings = findings

    @property
    def error(self) -> str:
        return self.code

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message, "field": self.field}
        if self.findings is not None:
            body["findings"] = [f.to_dict() if hasattr(f, "to_dict") else f for f in self.findings]
        return body
