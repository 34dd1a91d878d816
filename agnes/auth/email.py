"""Email sign-in links: itsdangerous-signed, single use, short-lived.

The link carries a signed nonce; the nonce row in ``magic_links`` makes it single use and
bounds its age (``AGNES_MAGIC_LINK_TTL`` seconds, default one hour). Requesting a link gives
the same answer whether or not the address belongs to a user.
"""

from __future__ import annotations

import logging

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from agnes.mail import MailError, send_email
from agnes.models import tokens, users
from agnes.state import state_store
from agnes.urls import base_url

log = logging.getLogger(__name__)

SALT = "agnes.magic-link"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def request_sign_in_link(email: str) -> bool:
    """Send a sign-in link if ``email`` belongs to an active user.

    Returns whether a link was sent, for auditing only; callers must answer the same either way.
    """
    with state_store().write() as con:
        user = users.get_user_by_email(con, email)
        if user is None or not user.active:
            return False
        nonce = tokens.create_magic_link(con, user.id)
    token = _serializer().dumps({"n": nonce})
    link = base_url() + url_for("auth.verify_link", token=token)
    deliver_sign_in_link(user.email, link)
    return True


def verify_sign_in_token(token: str) -> str | None:
    """Consume a sign-in token; returns the user id, or None when invalid, expired or used."""
    ttl = int(current_app.config["AGNES_MAGIC_LINK_TTL"])
    try:
        payload = _serializer().loads(token, max_age=ttl)
    except BadSignature:  # includes SignatureExpired
        return None
    nonce = payload.get("n") if isinstance(payload, dict) else None
    if not isinstance(nonce, str):
        return None
    with state_store().write() as con:
        user_id = tokens.consume_magic_link(con, nonce, max_age_seconds=ttl)
        if user_id is None:
            return None
        user = users.get_user(con, user_id)
    if user is None or not user.active:
        return None
    return user_id


def check_sign_in_token(token: str) -> str | None:
    """The email a token would sign in, without consuming it (for the confirm page)."""
    ttl = int(current_app.config["AGNES_MAGIC_LINK_TTL"])
    try:
        payload = _serializer().loads(token, max_age=ttl)
    except BadSignature:
        return None
    nonce = payload.get("n") if isinstance(payload, dict) else None
    with state_store().read() as con:
        row = con.execute(
            "SELECT u.email FROM magic_links m JOIN users u ON u.id = m.user_id"
            " WHERE m.nonce = ? AND m.used_at IS NULL",
            [nonce],
        ).fetchone()
    return row[0] if row else None


def deliver_sign_in_link(address: str, link: str) -> None:
    """Email the link through SMTP, or log it when no SMTP host is configured."""
    config = current_app.config
    if not config["SMTP_HOST"]:
        log.warning("SIGN-IN LINK for %s (no SMTP_HOST configured, so it is logged instead): %s", address, link)
        return
    minutes = int(config["AGNES_MAGIC_LINK_TTL"]) // 60
    body = (
        f"Open this link to sign in to Agnes:\n\n{link}\n\n"
        f"It works once and expires in {minutes} minutes. If you did not ask for it, ignore this email.\n"
    )
    try:
        send_email(address, "Your Agnes sign-in link", body)
    except MailError as exc:
        # The requester gets the generic answer; the operator sees why in the log.
        log.error("could not send sign-in email to %s: %s", address, exc)
