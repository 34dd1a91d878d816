"""Admin pages for users: the list (filters, sort, pages of 50) and one user's page (profile,
groups, tokens, effective access with explanations, stack, activity, (de)activation).

Page data: :mod:`agnes.pages.admin_users` (shared with ``/api/admin/users``). Each section of the
user page is a fragment with its own root id; its forms swap only that section and work without
JavaScript (a 303 back to the page).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes import people
from agnes.access import admin_required
from agnes.auth.pat import revoke_pat
from agnes.errors import AppError
from agnes.htmx import render, wants_fragment
from agnes.pages.admin_users import UsersFilters, explain_for, user_page, users_list_page

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


def _list_context(**extra: object) -> dict[str, object]:
    return {
        "page": users_list_page(UsersFilters.from_args(request.args)),
        "form": {"email": "", "name": ""},
        "errors": {},
        **extra,
    }


@bp.get("")
@admin_required
def list_users():  # type: ignore[no-untyped-def]
    """Users, 50 a page with the total; filters (status, group, sign-in method) and sort swap the table."""
    return render("admin/users.html", "admin/_users_table.html", **_list_context())


@bp.post("")
@admin_required
def create_user_post():  # type: ignore[no-untyped-def]
    """Add a user who can then sign in with an email link."""
    form = {"email": request.form.get("email", ""), "name": request.form.get("name", "")}
    try:
        user = people.create_user(form["email"], form["name"])
    except AppError as exc:
        return render(
            "admin/users.html",
            status=422 if exc.status == 400 else exc.status,
            **_list_context(form=form, errors={exc.field or "email": exc.message}),
        )
    flash(f"{user.email} added. They can sign in with an email link.", "success")
    return redirect(url_for("admin_users.show_user", user_id=user.id), code=303)


def _section(user_id: str, section: str, *, status: int = 200, message: str = "", **extra: Any):  # type: ignore[no-untyped-def]
    """After a change: the section's fragment for htmx, else the page (303, or the page itself
    with the refusal shown in its section when ``status`` is 4xx)."""
    if wants_fragment() or status >= 400:
        page = user_page(user_id, only=section if wants_fragment() else None)
        refusal = {"section": section, "message": message, **extra}
        return render(
            "admin/users/user.html", f"admin/users/_{section}.html", status=status, page=page, refusal=refusal
        )
    return redirect(url_for("admin_users.show_user", user_id=user_id) + f"#user-{section}", code=303)


@bp.get("/<user_id>")
@admin_required
def show_user(user_id: str):  # type: ignore[no-untyped-def]
    """One user: profile, groups, tokens, effective access, stack, recent activity, account."""
    return render("admin/users/user.html", page=user_page(user_id))


@bp.post("/<user_id>")
@admin_required
def update_user_post(user_id: str):  # type: ignore[no-untyped-def]
    """Change the display name."""
    try:
        people.update_user(user_id, name=request.form.get("name", ""))
    except AppError as exc:
        if exc.status == 404:
            raise
        return _section(user_id, "profile", status=422, message=exc.message, code=exc.code)
    return _section(user_id, "profile")


@bp.post("/<user_id>/memberships")
@admin_required
def add_membership_post(user_id: str):  # type: ignore[no-untyped-def]
    """Add the user to a group (an admin-managed membership)."""
    try:
        people.add_membership(user_id, request.form.get("group_id", ""), actor_id=g.principal.user.id)
    except AppError as exc:
        if exc.code == "user_not_found":
            raise
        status = 422 if exc.status in (400, 404) else exc.status
        return _section(user_id, "groups", status=status, message=exc.message, code=exc.code)
    return _section(user_id, "groups")


@bp.post("/<user_id>/memberships/<group_id>/remove")
@admin_required
def remove_membership_post(user_id: str, group_id: str):  # type: ignore[no-untyped-def]
    """Remove the user's admin-managed membership (Google rows are read-only; the last admin stays)."""
    try:
        people.remove_member(group_id, user_id)
    except AppError as exc:
        return _section(user_id, "groups", status=exc.status, message=exc.message, code=exc.code)
    return _section(user_id, "groups")


@bp.post("/<user_id>/tokens/<token_id>/revoke")
@admin_required
def revoke_token_post(user_id: str, token_id: str):  # type: ignore[no-untyped-def]
    """Revoke one of the user's tokens."""
    people.resolve_user(user_id)
    revoke_pat(token_id, owner_id=user_id, by_admin=True)
    return _section(user_id, "tokens")


@bp.post("/<user_id>/tokens/revoke-all")
@admin_required
def revoke_all_tokens_post(user_id: str):  # type: ignore[no-untyped-def]
    """Revoke every active token of the user."""
    people.revoke_all_tokens(user_id)
    return _section(user_id, "tokens")


@bp.get("/<user_id>/explain")
@admin_required
def explain_fragment(user_id: str):  # type: ignore[no-untyped-def]
    """Why the user can or cannot reach ``resource_type``/``resource_id``, in words."""
    found = explain_for(user_id, request.args.get("resource_type", ""), request.args.get("resource_id", ""))
    return render("admin/users/explain.html", "admin/users/_explain.html", explanation=found)


@bp.get("/<user_id>/status")
@admin_required
def status_confirm(user_id: str):  # type: ignore[no-untyped-def]
    """The deactivate / reactivate confirmation."""
    page = user_page(user_id, only="status")
    return render("admin/users/user.html", "admin/users/_status.html", page=page, confirm=True)


@bp.post("/<user_id>/active")
@admin_required
def set_active_post(user_id: str):  # type: ignore[no-untyped-def]
    """Deactivate (``active=0``) or reactivate (``active=1``); 409s (yourself, the last admin) show
    in place."""
    active = request.form.get("active") == "1"
    try:
        people.set_user_active(user_id, active, actor_id=g.principal.user.id)
    except AppError as exc:
        if exc.status == 404:
            raise
        return _section(user_id, "status", status=exc.status, message=exc.message, code=exc.code)
    return _section(user_id, "status")
