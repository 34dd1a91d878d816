"""Sign-in state: who the caller is (session cookie or bearer token), sign-in and sign-out.

The browser session is Flask's signed cookie holding the user id (HttpOnly, SameSite=Lax,
Secure when ``AGNES_BASE_URL`` is https). Scripts send ``Authorization: Bearer <PAT>``.
"""

from __future__ import annotations

import logging

from flask import g, request, session

from agnes import audit, markers
from agnes.access import AuthMethod, Principal
from agnes.auth.cache import principal_cache, session_key, token_key
from agnes.models import groups, tokens, users, utcnow
from agnes.state import state_store

log = logging.getLogger(__name__)

SESSION_USER_KEY = "uid"


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def client_ip() -> str | None:
    return request.remote_addr


def load_principal() -> None:
    """Resolve ``g.principal`` for this request (None when anonymous).

    A bearer token that is unknown, revoked or expired, or belongs to a deactivated user,
    leaves the caller anonymous and records why in ``g.auth_error`` (shown in the 401).
    """

    g.principal = None
    g.auth_error = None
    raw = bearer_token()
    user_id = None if raw else session.get(SESSION_USER_KEY)
    if not raw and not user_id:
        return
    cache = principal_cache()
    marker = markers.ACCESS.current()  # read before the lookup: a change after it invalidates our entry
    key = token_key(raw, client_ip()) if raw else session_key(user_id)
    cached = cache.get(key, marker)
    if cached is not None:
        g.principal = cached
        return
    if raw:
        g.principal = resolve_token(raw, client_ip(), marker=marker)
        return
    with state_store().read() as con:
        user = users.get_user(con, user_id)
        if user is None or not user.active:
            session.pop(SESSION_USER_KEY, None)
            return
        group_ids = groups.list_user_group_ids(con, user.id)
    g.principal = Principal(user=user, group_ids=tuple(group_ids), method=AuthMethod.SESSION)
    cache.put(key, g.principal, marker)


def resolve_token(raw: str, ip: str | None, *, marker: str | None = None) -> Principal | None:
    """Principal for a raw PAT, recording its use; None (with ``g.auth_error``) if unusable.

    With ``marker`` (the access marker read before this lookup) a usable principal is also
    remembered by :mod:`agnes.auth.cache` until the token's expiry at the latest.
    """

    with state_store().read() as con:
        token = tokens.lookup_token(con, raw)
        user = users.get_user(con, token.user_id) if token else None
        group_ids = groups.list_user_group_ids(con, token.user_id) if token else []
    if token is None or user is None:
        g.auth_error = "Access token unknown."
        return None
    if token.status == "revoked":
        g.auth_error = "Access token revoked."
        return None
    if token.status == "expired":
        g.auth_error = "Access token expired."
        return None
    if not user.active:
        g.auth_error = "Account deactivated."
        return None
    principal = Principal(user=user, group_ids=tuple(group_ids), method=AuthMethod.PAT, token_id=token.id)
    if marker is not None:
        ttl = (token.expires_at - utcnow()).total_seconds() if token.expires_at else float("inf")
        principal_cache().put(token_key(raw, ip), principal, marker, ttl)
    if not tokens.touch_due(token, ip):  # most calls: no write unit at all
        return principal
    try:
        with state_store().write() as con, audit.acting_as(audit.Actor(user.id, ip, principal.client_kind)):
            if tokens.touch_token(con, token, ip):  # first use from this address: audited with the touch
                audit.record(con, "token.first_use_new_ip", f"token:{token.id}", previous_ip=token.last_used_ip, ip=ip)
    except Exception:  # a busy store must not fail an authenticated read
        log.warning("could not record use of token %s", token.id, exc_info=True)
    return principal


def login_user(user_id: str, *, method: str, **details: object) -> None:
    """Start a browser session for a user (rotating the session to avoid fixation) and record
    the sign-in (``auth.sign_in`` with ``method``: ``email_link`` or ``google``)."""
    session.clear()
    session.permanent = True
    session[SESSION_USER_KEY] = user_id
    g.audit_user_id = user_id  # the row is about who signed in (the request was anonymous)
    with state_store().write() as con:
        users.record_login(con, user_id)
        audit.record(con, "auth.sign_in", f"user:{user_id}", method=method, **details)


def logout_user() -> None:
    session.clear()
