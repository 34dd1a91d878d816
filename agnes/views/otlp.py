"""``POST /v1/logs`` and ``POST /v1/metrics``: the OpenTelemetry intake (OTLP over HTTP).

Claude Code's exporter appends these paths to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (this server's base
URL, as the managed settings set it) and authenticates with ``Authorization: Bearer <PAT>`` from
its ``otelHeadersHelper``. Only an access token is accepted (401 otherwise, never a session
cookie); errors are ``{error, message, field}`` JSON. Checks and storage:
:mod:`agnes.claude_code.intake`. Accepted and rate-limited exports write no audit row (the
events are the record); other refusals are audited as usual.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from agnes import audit
from agnes.claude_code import intake, otlp
from agnes.claude_code.intake import RateLimited
from agnes.errors import AppError

bp = Blueprint("otlp", __name__)

# What OTLP/HTTP answers on success: an empty Export*ServiceResponse in the request's encoding.
EMPTY = {otlp.PROTOBUF: b"", otlp.JSON: b"{}"}


def _ingest(signal: str) -> Response:
    principal = g.get("principal")
    if principal is None or principal.token_id is None:
        raise AppError(
            401,
            "authentication_required",
            g.get("auth_error") or "Send an Agnes access token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="agnes"'},
        )
    try:
        intake.ingest(
            signal,
            request.get_data(cache=False),
            content_type=request.headers.get("Content-Type", ""),
            content_encoding=request.headers.get("Content-Encoding", ""),
            principal=principal,
        )
    except RateLimited:
        audit.skip_request_audit()  # a runaway exporter must not flood the audit log instead
        raise
    # The stored events are the record: an audit row per export (every few seconds per session)
    # would outnumber everything else in the log. Refusals (401, 400, 413, 415) stay audited.
    audit.skip_request_audit()
    kind = request.mimetype if request.mimetype in EMPTY else otlp.PROTOBUF
    return Response(EMPTY[kind], status=200, mimetype=kind)


@bp.post("/v1/logs")
def ingest_logs():  # type: ignore[no-untyped-def]
    """OTLP log records (Claude Code's events)."""
    return _ingest(otlp.LOGS)


@bp.post("/v1/metrics")
def ingest_metrics():  # type: ignore[no-untyped-def]
    """OTLP metric points (cost, tokens, activity counters)."""
    return _ingest(otlp.METRICS)
