"""Sign-in pages: email link, Google, sign-out."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for

from agnes import audit
from agnes.auth import login_user, logout_user
from agnes.auth.email import check_sign_in_token, request_sign_in_link, verify_sign_in_token
from agnes.auth.google import NEXT_KEY, google_configured
from agnes.errors import Invalid
from agnes.people import validate_email
from agnes.urls import safe_next_path

bp = Blueprint("auth", __name__)

LOGIN_ERRORS = {
    "google_not_configured": "Google sign-in is not set up on this server.",
    "domain_not_allowed": "Your Google account's domain is not allowed to sign in here.",
    "no_email": "Google did not share an email address.",
    "email_not_verified": "Your Google email address is not verified.",
    "deactivated": "Your account is deactivated. Ask an administrator.",
    "oauth_failed": "Google sign-in failed. Try again.",
    "link_invalid": "That sign-in link is invalid, expired or already used. Ask for a new one.",
}


def login_context(email: str = "", errors: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "email": email,
        "errors": errors or {},
        "next": safe_next_path(request.values.get("next"), default=""),
        "google_enabled": google_configured(),
        "login_error": LOGIN_ERRORS.get(request.args.get("error", "")),
    }


@bp.get("/login")
def login():  # type: ignore[no-untyped-def]
    """Sign-in page: email link form and, when configured, Google."""
    if g.principal is not None:
        return redirect(safe_next_path(request.args.get("next")))
    return render_template("auth/login.html", **login_context())


@bp.post("/login")
def login_post():  # type: ignore[no-untyped-def]
    """Send a sign-in link; the answer is the same whether or not the address is known."""
    email = request.form.get("email", "")
    try:
        email = validate_email(email)
    except Invalid as exc:
        return render_template("auth/login.html", **login_context(email, {"email": exc.message})), 422
    sent = request_sign_in_link(email)
    audit.describe("auth.link_requested", f"email:{email}", sent=sent)
    return redirect(url_for("auth.link_sent"), code=303)


@bp.get("/login/sent")
def link_sent():  # type: ignore[no-untyped-def]
    """Tells the visitor to check their inbox."""
    return render_template("auth/link_sent.html", ttl_minutes=current_app.config["AGNES_MAGIC_LINK_TTL"] // 60)


@bp.get("/auth/link/<token>")
def verify_link(token: str):  # type: ignore[no-untyped-def]
    """Confirm page for an emailed link; a POST signs in (mail scanners only GET links)."""
    email = check_sign_in_token(token)
    if email is None:
        return redirect(url_for("auth.login", error="link_invalid"))
    return render_template("auth/confirm.html", email=email, token=token)


@bp.post("/auth/link/<token>")
def verify_link_post(token: str):  # type: ignore[no-untyped-def]
    """Consume the link and start a session."""
    user_id = verify_sign_in_token(token)
    if user_id is None:
        audit.describe("auth.link_rejected", "auth:link")
        return redirect(url_for("auth.login", error="link_invalid"), code=303)
    login_user(user_id, method="email_link")
    return redirect(url_for("home.index"), code=303)


@bp.get("/auth/google/start")
def google_start():  # type: ignore[no-untyped-def]
    """Remember where to go afterwards, then hand over to Google."""
    if not google_configured():
        return redirect(url_for("auth.login", error="google_not_configured"))
    session[NEXT_KEY] = safe_next_path(request.args.get("next"))
    return redirect(url_for("google.login"))


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    """End the browser session (its server-side id is revoked: a copy of the cookie stops working)."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), code=303)
