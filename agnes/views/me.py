"""The signed-in user's profile: groups and personal access tokens."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes import people
from agnes.access import login_required, session_required
from agnes.auth import google_groups, sign_out_everywhere
from agnes.auth.pat import create_pat, list_pats, parse_expires_days, revoke_pat
from agnes.errors import Conflict, Invalid
from agnes.htmx import render
from agnes.pages.admin_feedback import my_reports

bp = Blueprint("me", __name__)

EXPIRY_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]


def profile_data(**extra: object) -> dict[str, object]:
    """Context of the profile page and its token fragment."""
    principal = g.principal
    return {
        "user": principal.user,
        "groups": people.user_groups(principal.user.id),
        "google_groups": google_groups.enabled(),
        "groups_outcome": None,
        "tokens": list_pats(principal.user.id),
        "reports": my_reports(principal.user.id),
        "expiry_choices": EXPIRY_CHOICES,
        "new_token": None,
        "form": {"name": "", "expires_days": "90"},
        "errors": {},
        **extra,
    }


@bp.get("/me")
@login_required
def profile():  # type: ignore[no-untyped-def]
    """Your account, groups and access tokens."""
    return render("me/profile.html", "me/_tokens.html", **profile_data())


@bp.post("/me/tokens")
@session_required
def create_token_post():  # type: ignore[no-untyped-def]
    """Create a token and show it once."""
    form = {"name": request.form.get("name", ""), "expires_days": request.form.get("expires_days", "90")}
    try:
        days = parse_expires_days(form["expires_days"])
        record, raw = create_pat(g.principal.user.id, form["name"], days)
    except Invalid as exc:
        return render(
            "me/profile.html",
            "me/_tokens.html",
            status=422,
            **profile_data(form=form, errors={exc.field or "name": exc.message}),
        )
    return render("me/profile.html", "me/_tokens.html", status=201, **profile_data(new_token=raw))


@bp.post("/me/sessions/revoke")
@session_required
def sign_out_everywhere_post():  # type: ignore[no-untyped-def]
    """Sign out every browser session of yours (other devices and this one)."""
    count = sign_out_everywhere(g.principal.user.id)
    flash(f"Signed out everywhere ({count} session{'s' if count != 1 else ''} ended).", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.post("/me/tokens/<token_id>/revoke")
@login_required
def revoke_token_post(token_id: str):  # type: ignore[no-untyped-def]
    """Revoke one of your tokens."""
    revoke_pat(token_id, owner_id=g.principal.user.id)
    return render("me/profile.html", "me/_tokens.html", **profile_data())


@bp.post("/me/groups/refresh")
@login_required
def refresh_groups_post():  # type: ignore[no-untyped-def]
    """ "Refresh my groups": mirror your Google Workspace groups now (3 s budget, failing soft)."""
    if not google_groups.enabled():
        raise Conflict("google_groups_disabled", "Google Workspace groups are not mirrored on this server.")
    user = g.principal.user
    outcome = google_groups.sync_user(user.id, user.email)  # fails soft: the outcome says what happened
    return render("me/profile.html", "me/_groups.html", **profile_data(groups_outcome=outcome))
