"""Who is calling ``/marketplace.*`` and what they are served, and the record of each download.

Claude Code, the ``agnes`` CLI and scripts fetch the served marketplace in three forms:
``/marketplace.zip`` (``Authorization: Bearer <PAT>``), ``/marketplace.git`` over smart HTTP
(HTTP Basic with the PAT as password) and ``/marketplace.git/``, a ``marketplace.json`` (Claude
Code 2.1's URL form). All three, and ``/marketplace/info``, answer through :func:`served_caller`
and record the download with :func:`record_download`, so they serve and audit the same way.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app, g

from agnes import markers
from agnes.access import Principal
from agnes.audit import write_audit
from agnes.auth import resolve_token
from agnes.auth.cache import principal_cache, token_key
from agnes.marketplace import resolver
from agnes.marketplace.resolver import ServedSet

log = logging.getLogger(__name__)

# A user's download of one ETag in one form is audited at most once per this many seconds:
# Claude Code and hooks poll, and nearly every poll is a repeat.
AUDIT_WINDOW = 600.0
# (user, ETag, form) download records kept per process before the table is emptied.
MAX_AUDITED = 4096
# How each form is named in the audit row's ``form`` parameter, and the caller kind it records.
FORMS = {"zip": "cli", "git": "git", "json": "cli"}


class Unauthenticated(Exception):
    """No usable credentials; the message says why (unknown, revoked, expired token, ...)."""


@dataclass(frozen=True)
class ServedCaller:
    """A caller of the served marketplace and what they are served right now."""

    principal: Principal
    served: ServedSet

    @property
    def user_id(self) -> str:
        return self.principal.user.id


def credentials_token(environ: dict[str, Any]) -> str | None:
    """The PAT from ``Authorization: Basic`` (password) or ``Bearer``; None when absent."""
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        _, _, password = decoded.partition(":")
        return password or None
    return None


def served_caller(
    token: str | None, ip: str | None, *, principal: Principal | None = None, cached_only: bool = False
) -> ServedCaller | None:
    """Resolve the caller and their served set.

    Args:
        token: the raw PAT (Bearer, or the Basic password) when ``principal`` is None.
        ip: the client address (a token's first use from a new address is audited).
        principal: the caller Flask already resolved (session cookie or Bearer), if any.
        cached_only: answer from the process caches only (the WSGI fast path); None when the
            caller or their served set is not cached, so the request falls through to Flask.

    Returns:
        The caller, or None (only with ``cached_only``).

    Raises:
        Unauthenticated: no token, or one that is unknown, revoked, expired or a deactivated user's.
    """
    marker = markers.MARKETPLACE.current()  # read before resolving: a later change bumps it again
    if principal is None:
        if not token:
            raise Unauthenticated("Send your Agnes access token (Bearer, or as the password of HTTP Basic).")
        principal = principal_cache().get(token_key(token, ip), markers.ACCESS.current())
        if principal is None:
            if cached_only:
                return None
            principal = resolve_token(token, ip, marker=markers.ACCESS.current())
            if principal is None:
                raise Unauthenticated(g.get("auth_error") or "Access token unknown.")
    if cached_only:
        served = resolver.cached(principal.user.id, principal.group_ids, marker)
        if served is None:
            return None
    else:
        served = resolver.resolve(principal.user.id, principal.group_ids, marker=marker)
    return ServedCaller(principal, served)


class DownloadAuditWindow:
    """When each (user, ETag, form) download was last audited, so repeats are audited once per window."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.audited: dict[tuple[str, str, str], float] = {}

    def claim(self, key: tuple[str, str, str]) -> bool:
        """True (and remember now) when ``key`` was not audited within :data:`AUDIT_WINDOW`."""
        now = time.monotonic()
        with self.lock:
            if now - self.audited.get(key, -AUDIT_WINDOW) < AUDIT_WINDOW:
                return False
            if len(self.audited) >= MAX_AUDITED:
                self.audited.clear()
            self.audited[key] = now
            return True


def record_download(caller: ServedCaller, form: str, ip: str | None) -> bool:
    """Write the ``marketplace.download`` audit row of a download, once per user, ETag and form
    per :data:`AUDIT_WINDOW`. ``form`` is ``zip``, ``git`` or ``json``. Returns True when written.

    A download changes nothing, so a failed write is logged and the download still answered.
    """
    window = current_app.extensions.setdefault("agnes_download_audit", DownloadAuditWindow())
    if not window.claim((caller.user_id, caller.served.etag, form)):
        return False
    try:
        write_audit(
            "marketplace.download",
            user_id=caller.user_id,
            resource=f"marketplace:{caller.served.etag}",
            params={"form": form, "plugins": len(caller.served.plugins)},
            client_ip=ip,
            client_kind=FORMS[form] if caller.principal.token_id else "web",
        )
    except Exception:
        log.exception("could not audit a marketplace download by %s", caller.user_id)
        return False
    return True
