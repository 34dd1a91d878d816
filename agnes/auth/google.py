"""Google sign-in through Flask-Dance (OAuth 2.0 authorization code + OpenID userinfo).

Offered when ``GOOGLE_CLIENT_ID`` and ``GOOGLE_CLIENT_SECRET`` are set. Only verified
addresses in ``AGNES_GOOGLE_DOMAINS`` (any domain when empty) may sign in; the first sign-in
creates the user. With ``AGNES_GOOGLE_GROUPS`` each sign-in also mirrors the user's Workspace
groups (:mod:`agnes.auth.google_groups`, 3 s budget, failing soft). Endpoint URLs are settings so
tests can run a local OAuth2 server.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, redirect, session, url_for
from flask_dance.consumer import OAuth2ConsumerBlueprint, oauth_authorized, oauth_error
from oauthlib.oauth2 import OAuth2Error
from requests import RequestException

from agnes.audit import write_audit
from agnes.auth import google_groups, login_user
from agnes.models import users
from agnes.people import get_or_create_user
from agnes.urls import safe_next_path

log = logging.getLogger(__name__)

NEXT_KEY = "google_next"


def google_configured() -> bool:
    return bool(current_app.config.get("GOOGLE_CLIENT_ID") and current_app.config.get("GOOGLE_CLIENT_SECRET"))


def make_google_blueprint(app: Flask) -> OAuth2ConsumerBlueprint:
    """Build the Flask-Dance blueprint (``/auth/google`` → ``/auth/google/authorized``)."""
    bp = OAuth2ConsumerBlueprint(
        "google",
        __name__,
        url_prefix="/auth",
        base_url=None,
        authorization_url=app.config["AGNES_GOOGLE_AUTHORIZE_URL"],
        token_url=app.config["AGNES_GOOGLE_TOKEN_URL"],
        scope=["openid", "email", "profile"],
        authorization_url_params={"prompt": "select_account"},
    )
    bp.from_config["client_id"] = "GOOGLE_CLIENT_ID"
    bp.from_config["client_secret"] = "GOOGLE_CLIENT_SECRET"
    oauth_authorized.connect_via(bp)(_on_authorized)
    oauth_error.connect_via(bp)(_on_error)
    # A forged or stale state, a refused code or an unreachable provider: back to the login
    # page with an explanation instead of a 500.
    bp.register_error_handler(OAuth2Error, _on_exchange_failed)
    bp.register_error_handler(RequestException, _on_exchange_failed)
    bp.before_request(_require_configured)
    return bp


def _require_configured() -> Any:
    """Without a client id and secret, don't send visitors to Google with ``client_id=None``."""
    if not google_configured():
        return _fail("google_not_configured")
    return None


def _fail(code: str) -> Any:
    return redirect(url_for("auth.login", error=code))


def _on_error(blueprint: OAuth2ConsumerBlueprint, error: Any = None, **_: Any) -> Any:
    """The provider sent the user back with ``?error=`` (e.g. they cancelled)."""
    log.warning("Google sign-in returned an error: %s", error)
    return _fail("oauth_failed")


def _on_exchange_failed(exc: Exception) -> Any:
    log.warning("Google sign-in failed: %s: %s", type(exc).__name__, exc)
    return _fail("oauth_failed")


def _on_authorized(blueprint: OAuth2ConsumerBlueprint, token: dict[str, Any] | None) -> Any:
    """Turn a fresh Google token into an Agnes session; never stores the token."""

    if not token:
        return _fail("oauth_failed")
    try:
        resp = blueprint.session.get(current_app.config["AGNES_GOOGLE_USERINFO_URL"], timeout=15)
        info = resp.json() if resp.ok else {}
    except Exception:
        log.warning("Google userinfo request failed", exc_info=True)
        return _fail("oauth_failed")
    email = users.normalize_email(str(info.get("email") or ""))
    if not email or "@" not in email:
        return _fail("no_email")
    if info.get("email_verified") is False:
        return _fail("email_not_verified")
    allowed = [d.lower() for d in current_app.config["AGNES_GOOGLE_DOMAINS"]]
    if allowed and email.rsplit("@", 1)[1] not in allowed:
        write_audit("auth.google.refused", params={"email": email, "reason": "domain_not_allowed"})
        return _fail("domain_not_allowed")
    user, created = get_or_create_user(email, str(info.get("name") or ""), via="google")
    if not user.active:
        return _fail("deactivated")
    if google_groups.enabled():
        try:  # fail soft: within its time budget, or the sign-in goes on with the groups as they were
            google_groups.sync_user(user.id, email)
        except Exception:
            log.exception("Google group sync at sign-in failed for %s", email)
    next_path = safe_next_path(session.pop(NEXT_KEY, None))
    login_user(user.id, method="google", created=created)
    return redirect(next_path)
