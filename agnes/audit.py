"""Audit trail: one ``audit_log`` row for every change, written in the change's own unit of work.

* A change to the state store writes its row with :func:`record` inside the same write unit
  (``with state_store().write() as con: ...; audit.record(con, "group.create", ...)``): the row
  and the change commit together, or neither does. If the row cannot be written the unit rolls
  back and the request fails with 500.
* Every other state-changing request (a refused one, or one whose effect is not in the state
  store, such as starting a job) is audited by an ``after_request`` hook, so no view can forget;
  a view may name the action and resource with :func:`describe` (otherwise the endpoint and path
  are used). A request whose change already wrote its row is not audited twice.
* Jobs are audited by the job backends (``job.<name>``, finished or failed).

Who acted comes from :func:`current_actor`: the signed-in caller of the request, the job being
run (:func:`acting_as`), or the system. Parameters pass through :func:`agnes.redaction.redact`
first: keys that look like secrets are replaced, values that look like tokens are masked, and text
the database cannot hold (lone UTF-16 surrogates) is replaced by U+FFFD.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from duckdb import DuckDBPyConnection
from flask import Flask, Response, g, has_request_context, make_response, request

from agnes.errors import AppError, error_response
from agnes.models import audit as audit_model
from agnes.redaction import (  # noqa: F401 - the audit module's public names, kept for its callers
    REDACTED,
    SECRET_KEY_RE,
    looks_like_credential,
    redact,
    redact_text,
    storable,
)
from agnes.state import state_store

log = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# -- who acts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who an audit row is about: the user (None for the system), where from, through what."""

    user_id: str | None
    client_ip: str | None = None
    client_kind: str = "system"
    correlation_id: str | None = None


_acting: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("agnes_actor", default=None)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Attribute the audit rows written inside the block to ``actor`` (a job, a CLI command)."""
    token = _acting.set(actor)
    try:
        yield
    finally:
        _acting.reset(token)


def current_actor() -> Actor:
    """The actor set by :func:`acting_as`, else the request's caller, else the system."""
    explicit = _acting.get()
    if explicit is not None:
        return explicit
    if has_request_context():
        principal = g.get("principal")
        return Actor(
            user_id=g.get("audit_user_id") or (principal.user.id if principal else None),
            client_ip=request.remote_addr,
            client_kind=principal.client_kind if principal else "web",
            correlation_id=g.get("correlation_id"),
        )
    return Actor(None)


# -- writing rows --------------------------------------------------------------------------------


def record(
    con: DuckDBPyConnection,
    action: str,
    resource: str | None = None,
    /,
    *,
    params_before: Mapping[str, Any] | None = None,
    **params: Any,
) -> None:
    """Write the audit row of a change inside the change's own write unit ``con``.

    ``action`` and ``resource`` are positional-only, so a client's body may be passed as
    ``**params`` even when it has keys named ``action`` or ``resource``. A failure raises (the
    unit then rolls back: no change without its row). In a request, the ``after_request`` hook
    writes no second row once the unit committed, unless the row was written under
    :func:`acting_as` (a side row, such as a token's first use from a new address).

    ``params_before`` makes the row a registry change shown on the Changes tab of
    ``/admin/activity``: the previous values of the fields the change sets, under the same names
    as in ``params`` (``{}``: the thing did not exist; for a removal, the removed thing's fields).
    It is redacted like ``params``: secrets are never stored, environment-variable names are.
    """
    actor = current_actor()
    started = g.get("request_started") if has_request_context() else None
    audit_model.insert_audit(
        con,
        action=action,
        user_id=actor.user_id,
        resource=storable(resource) if resource is not None else None,
        params=redact(params),
        params_before=redact(dict(params_before)) if params_before is not None else None,
        result="ok",
        duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else None,
        client_ip=actor.client_ip,
        client_kind=actor.client_kind,
        correlation_id=actor.correlation_id,
    )
    if has_request_context() and _acting.get() is None:  # the request's own change (not a side row)
        state_store().after_commit(_mark_audited)


def _mark_audited() -> None:
    if has_request_context():
        g.audit_written = True


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
    """Write one audit row in its own unit of work, for events that change no state-store row
    (a sign-in, a download, a job's outcome). Raises when the row cannot be written."""
    with state_store().write() as con:
        audit_model.insert_audit(
            con,
            action=action,
            user_id=user_id,
            resource=storable(resource) if resource is not None else None,
            params=redact(params) if params is not None else None,
            result=result,
            duration_ms=duration_ms,
            client_ip=client_ip,
            client_kind=client_kind,
            correlation_id=correlation_id,
        )


def skip_request_audit() -> None:
    """Leave the current request out of the per-request audit row.

    Only for high-frequency ingestion whose stored rows are themselves the record (an accepted or
    rate-limited OTLP export from Claude Code, every few seconds per session); never for a change
    an administrator or user makes.
    """
    g.audit_skipped = True


def describe(action: str, resource: str | None = None, /, **params: Any) -> None:
    """Name the audited action of the current request (e.g. ``marketplace.sync``, ``marketplace:<id>``),
    for requests whose effect is not a state-store change of their own (see :func:`record`).

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
        try:
            body = request.get_json(silent=True)
        except AppError:  # refused while parsing (too deep, too large): nothing to record of it
            return {"body": "(unreadable JSON)"}
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
    if g.get("audit_written") or g.get("audit_skipped"):  # wrote its row in its own unit, or exempt
        return response
    actor = current_actor()
    started = g.get("request_started")
    try:
        write_audit(
            g.get("audit_action") or f"http.{request.endpoint}",
            user_id=actor.user_id,
            resource=g.get("audit_resource") or _request_resource(),
            params=_request_params(),
            result=str(response.status_code),
            duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else None,
            client_ip=actor.client_ip,
            client_kind=actor.client_kind,
            correlation_id=actor.correlation_id,
        )
    except Exception:
        log.exception("audit write failed for %s %s", request.method, request.path)
        if response.status_code < 400:  # it did something: without its audit row, report failure
            failed = AppError(500, "audit_failed", "The change could not be recorded in the audit log.")
            return make_response(error_response(failed))
    return response


def init_app(app: Flask) -> None:
    app.after_request(_after_request)
