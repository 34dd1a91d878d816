"""Audit trail: one ``audit_log`` row per state-changing request and per job.

Requests are audited by an ``after_request`` hook, so no view can forget; a view may name
the action and resource with :func:`describe` (otherwise the endpoint and path are used).
Parameters pass through :func:`redact` first: keys that look like secrets are replaced, and
values that look like tokens are masked. A failure to write audit is logged, never raised.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from flask import Flask, Response, g, request

from agnes.models import audit as audit_model
from agnes.state import state_store

log = logging.getLogger(__name__)

# Parameter names whose values are never recorded.
SECRET_KEY_RE = re.compile(r"(token|secret|password|passwd|credential|authorization|api[_-]?key|dsn|csrf)", re.I)
# Values that look like secrets even under an innocent key (our PATs, bearer strings, URLs with
# userinfo: ``user:password@`` and also a bare ``token@``, the form git hosts accept for tokens).
SECRET_VALUE_RE = re.compile(r"(agnes_pat_[A-Za-z0-9_-]+|Bearer\s+\S+|://[^/\s@]+@)")
REDACTED = "[redacted]"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def redact(value: Any, *, key: str = "") -> Any:
    """Copy of ``value`` with secret-looking keys and values replaced by ``[redacted]``."""
    if key and SECRET_KEY_RE.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE_RE.sub(_mask, value)[:2000]
    return value


def redact_text(text: str) -> str:
    """Mask secret-looking substrings in free text (error messages, log lines)."""
    return SECRET_VALUE_RE.sub(_mask, text)


def _mask(match: re.Match[str]) -> str:
    """``[redacted]``; URL userinfo keeps the URL's shape (``https://[redacted]@host``)."""
    return f"://{REDACTED}@" if match.group().startswith("://") else REDACTED


def write_audit(
    action: str,
    *,
    user_id: str | None = None,
    resource: str | None = None,
    params: dict[str, Any] | None = None,
    result: str | None = "ok",
    duration_ms: float | None = None,
    client_ip: str | None = None,
    client_kind: str | None = None,
    correlation_id: str | None = None,
) -> None:
    """Write one audit row in its own unit of work; errors are logged and swallowed."""
    try:
        with state_store().write() as con:
            audit_model.insert_audit(
                con,
                action=action,
                user_id=user_id,
                resource=resource,
                params=redact(params) if params is not None else None,
                result=result,
                duration_ms=duration_ms,
                client_ip=client_ip,
                client_kind=client_kind,
                correlation_id=correlation_id,
            )
    except Exception:
        log.exception("audit write failed for action %s", action)


def describe(action: str, resource: str | None = None, /, **params: Any) -> None:
    """Name the audited action of the current request (e.g. ``group.create``, ``group:<id>``).

    ``action`` and ``resource`` are positional-only, so views may pass a client's body as
    ``**params`` even when it has keys named ``action`` or ``resource``.
    """
    g.audit_action = action
    if resource is not None:
        g.audit_resource = resource
    if params:
        g.audit_params = {**g.get("audit_params", {}), **params}


def _request_params() -> dict[str, Any]:
    if g.get("audit_params") is not None:
        return g.audit_params
    if request.is_json:
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else {"body": body}
    return {k: v for k, v in request.form.items()}


def _request_resource() -> str:
    """The request path, with URL segments that carry secrets masked (``/auth/link/<token>``:
    a request refused before its view ran, e.g. by CSRF, leaves the sign-in link unused)."""
    path = request.path
    for name, value in (request.view_args or {}).items():
        if SECRET_KEY_RE.search(name) and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    return path


def _after_request(response: Response) -> Response:
    if request.method not in UNSAFE_METHODS or request.endpoint in (None, "static"):
        return response
    principal = g.get("principal")
    user_id = g.get("audit_user_id") or (principal.user.id if principal else None)
    started = g.get("request_started")
    write_audit(
        g.get("audit_action") or f"http.{request.endpoint}",
        user_id=user_id,
        resource=g.get("audit_resource") or _request_resource(),
        params=_request_params(),
        result=str(response.status_code),
        duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else None,
        client_ip=request.remote_addr,
        client_kind=principal.client_kind if principal else "web",
        correlation_id=g.get("correlation_id"),
    )
    return response


def init_app(app: Flask) -> None:
    app.after_request(_after_request)
