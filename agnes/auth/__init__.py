"""Sign-in state: who the caller is (session cookie or bearer token), sign-in and sign-out.

The browser session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure when
``AGNES_BASE_URL`` is https) holding the user id and a server-side session id
(:mod:`agnes.models.web_sessions`): sign-out, deactivation and "sign out everywhere" revoke the
row, so a copy of the cookie stops working at once. Scripts send ``Authorization: Bearer <PAT>``.
"""

from __future__ import annotations

import logging

from duckdb import DuckDBPyConnection
from flask import current_app, g, request, session

from agnes import audit, markers, signals
from agnes.access import AuthMethod, Principal
from agnes.auth.cache import principal_cache, session_key, token_key
from agnes.models import groups, tokens, users, utcnow, web_sessions
from agnes.state import state_store

log = logging.getLogger(__name__)

SESSION_USER_KEY = "uid"
SESSION_ID_KEY = "sid"


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
    session_id = None if raw else session.get(SESSION_ID_KEY)
    if not raw and not session_id:
        if session.get(SESSION_USER_KEY):  # a cookie from before server-side sessions: sign in again
            session.pop(SESSION_USER_KEY, None)
        return
    cache = principal_cache()
    marker = markers.ACCESS.current()  # read before the lookup: a change after it invalidates our entry
    key = token_key(raw, client_ip()) if raw else session_key(web_sessions.session_hash(session_id))
    cached = cache.get(key, marker)
    if cached is not None:
        g.principal = cached
        return
    if raw:
        g.principal = resolve_token(raw, client_ip(), marker=marker)
        return
    with state_store().read() as con:
        row = web_sessions.get_session(con, session_id)
        user = users.get_user(con, row.user_id) if row is not None and row.usable else None
        if user is None or not user.active or user.id != session.get(SESSION_USER_KEY):
            session.pop(SESSION_USER_KEY, None)
            session.pop(SESSION_ID_KEY, None)
            return
        group_ids = groups.list_user_group_ids(con, user.id)
    g.principal = Principal(user=user, group_ids=tuple(group_ids), method=AuthMethod.SESSION)
    assert row is not None
    ttl = (row.expires_at - utcnow()).total_seconds()
    cache.put(key, g.principal, marker, ttl)


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


def start_session(con: DuckDBPyConnection, user_id: str) -> dict[str, str]:
    """Create a server-side session for ``user_id`` inside the write unit ``con``; returns the
    cookie values (``uid``, ``sid``) to put in Flask's session."""
    hours = int(current_app.config["AGNES_SESSION_HOURS"])
    return {SESSION_USER_KEY: user_id, SESSION_ID_KEY: web_sessions.create_session(con, user_id, hours=hours)}


def login_user(user_id: str, *, method: str, **details: object) -> None:
    """Start a browser session for a user (a new server-side session id, so no fixation) and
    record the sign-in (``auth.sign_in`` with ``method``: ``email_link`` or ``google``)."""
    session.clear()
    session.permanent = True
    g.audit_user_id = user_id  # the row is about who signed in (the request was anonymous)
    with state_store().write() as con:
        values = start_session(con, user_id)
        users.record_login(con, user_id, method)
        audit.record(con, "auth.sign_in", f"user:{user_id}", method=method, **details)
    session.update(values)


def logout_user() -> None:
    """End this browser session: its server-side row is revoked (a copy of the cookie stops
    working in every process) and the cookie cleared. Audited as ``auth.sign_out``."""
    session_id = session.get(SESSION_ID_KEY)
    principal = g.get("principal")
    if session_id and principal is not None:
        with state_store().write() as con:
            web_sessions.revoke_session(con, session_id)
            signals.credentials_changed.send(None, con=con, user_id=principal.user.id)
            audit.record(con, "auth.sign_out", f"user:{principal.user.id}", scope="this_session")
    session.clear()


def sign_out_everywhere(user_id: str) -> int:
    """Revoke every browser session of ``user_id`` (this one included); returns how many were open.
    Audited as ``auth.sign_out`` with ``scope=everywhere``."""
    with state_store().write() as con:
        count = web_sessions.revoke_user_sessions(con, user_id)
        signals.credentials_changed.send(None, con=con, user_id=user_id)
        audit.record(con, "auth.sign_out", f"user:{user_id}", scope="everywhere", sessions=count)
    session.clear()
    return count
