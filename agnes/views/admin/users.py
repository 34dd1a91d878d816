"""Admin page for users: list, add, deactivate and reactivate.

Data: :func:`agnes.people.list_users` (one unit, set-based), shared with ``/api/admin/users``.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes import people
from agnes.access import admin_required
from agnes.errors import AppError
from agnes.htmx import render

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


def users_data(**extra: object) -> dict[str, object]:
    """Context of the users page: users with their groups, filtered by ``q``."""
    query = request.args.get("q", "")
    return {
        "users": people.list_users(query),
        "q": query,
        "form": {"email": "", "name": ""},
        "errors": {},
        **extra,
    }


@bp.get("")
@admin_required
def list_users():  # type: ignore[no-untyped-def]
    """Every user with status and groups; the search box swaps the table only."""
    return render("admin/users.html", "admin/_users_table.html", **users_data())


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
            **users_data(form=form, errors={exc.field or "email": exc.message}),
        )
    flash(f"{user.email} added. They can sign in with an email link.", "success")
    return redirect(url_for("admin_users.list_users"), code=303)


@bp.post("/<user_id>/active")
@admin_required
def set_active_post(user_id: str):  # type: ignore[no-untyped-def]
    """Deactivate (``active=0``) or reactivate (``active=1``) a user."""
    active = request.form.get("active") == "1"
    try:
        user = people.set_user_active(user_id, active, actor_id=g.principal.user.id)
    except AppError as exc:
        if exc.status == 404:
            raise
        flash(exc.message, "error")
        return redirect(url_for("admin_users.list_users"), code=303)
    flash(f"{user.email} {'reactivated' if active else 'deactivated'}.", "success")
    return redirect(url_for("admin_users.list_users"), code=303)
