"""Admin pages for groups and their members."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes import audit, people
from agnes.access import admin_required
from agnes.errors import AppError
from agnes.htmx import fragment_or_redirect, hx_redirect, job_started, render
from agnes.jobs.groups import start_recount

bp = Blueprint("admin_groups", __name__, url_prefix="/admin/groups")


def groups_data(**extra: object) -> dict[str, object]:
    """Context of the groups list page and its fragments (data: :func:`agnes.people.list_groups`)."""
    return {"groups": people.list_groups(), "form": {"name": "", "description": ""}, "errors": {}, "job": None, **extra}


def group_data(group_id: str, **extra: object) -> dict[str, object]:
    """Context of one group's page and its members fragment (data: :func:`agnes.people.group_detail`,
    shared with ``/api/admin/groups/<id>``)."""
    detail = people.group_detail(group_id)
    return {
        "group": detail.group,
        "members": detail.members,
        "grants": detail.grants,
        "member_form": {"email": ""},
        "member_errors": {},
        "rename_errors": {},
        **extra,
    }


@bp.get("")
@admin_required
def list_groups():  # type: ignore[no-untyped-def]
    """All groups with member and grant counts."""
    return render("admin/groups.html", "admin/_groups_table.html", **groups_data())


@bp.post("")
@admin_required
def create_group_post():  # type: ignore[no-untyped-def]
    """Create a group from the inline form."""
    form = {"name": request.form.get("name", ""), "description": request.form.get("description", "")}
    try:
        group = people.create_group(form["name"], form["description"], actor_id=g.principal.user.id)
    except AppError as exc:
        return render(
            "admin/groups.html",
            "admin/_group_create.html",
            status=422 if exc.status == 400 else exc.status,
            **groups_data(form=form, errors={exc.field or "name": exc.message}),
        )
    flash(f"Group {group.name} created.", "success")
    response = redirect(url_for("admin_groups.show_group", group_id=group.id), code=303)
    return hx_redirect(response, url_for("admin_groups.show_group", group_id=group.id))


@bp.post("/recount")
@admin_required
def recount_post():  # type: ignore[no-untyped-def]
    """Start the member-count job and show its live status."""
    job = start_recount(owner_id=g.principal.user.id)
    audit.describe("group.recount", f"job:{job.id}")
    return job_started(job, url_for("jobs.show_job", job_id=job.id))


@bp.get("/<group_id>")
@admin_required
def show_group(group_id: str):  # type: ignore[no-untyped-def]
    """One group: rename, delete, members and grants."""
    return render("admin/group.html", "admin/_members.html", **group_data(group_id))


@bp.post("/<group_id>")
@admin_required
def update_group_post(group_id: str):  # type: ignore[no-untyped-def]
    """Rename a group or change its description."""
    name = request.form.get("name")
    description = request.form.get("description")
    try:
        group = people.update_group(group_id, name=name, description=description)
    except AppError as exc:
        if exc.status == 404:
            raise
        return render(
            "admin/group.html",
            status=422 if exc.status == 400 else exc.status,
            **group_data(group_id, rename_errors={exc.field or "name": exc.message}),
        )
    flash(f"Group {group.name} saved.", "success")
    return redirect(url_for("admin_groups.show_group", group_id=group_id), code=303)


@bp.post("/<group_id>/delete")
@admin_required
def delete_group_post(group_id: str):  # type: ignore[no-untyped-def]
    """Delete a group (not a system group)."""
    group = people.delete_group(group_id)
    flash(f"Group {group.name} deleted.", "success")
    response = redirect(url_for("admin_groups.list_groups"), code=303)
    return hx_redirect(response, url_for("admin_groups.list_groups"))


def _members_refused(group_id: str, status: int, *, member_form: dict[str, str] | None = None, **errors: str):  # type: ignore[no-untyped-def]
    """The members fragment (or page) again, with the refusal shown at its field."""
    extra = {"member_form": member_form} if member_form else {}
    return render(
        "admin/group.html", "admin/_members.html", status=status, **group_data(group_id, member_errors=errors, **extra)
    )


@bp.post("/<group_id>/members")
@admin_required
def add_member_post(group_id: str):  # type: ignore[no-untyped-def]
    """Add a member by email; the members fragment re-renders with the result."""
    email = request.form.get("email", "")
    try:
        people.add_member(group_id, email, actor_id=g.principal.user.id)
    except AppError as exc:
        if exc.code == "group_not_found":
            raise
        return _members_refused(
            group_id, 422 if exc.status in (400, 404) else exc.status, member_form={"email": email}, email=exc.message
        )
    return fragment_or_redirect(
        "admin/_members.html", url_for("admin_groups.show_group", group_id=group_id), **group_data(group_id)
    )


@bp.post("/<group_id>/members/<user_id>/remove")
@admin_required
def remove_member_post(group_id: str, user_id: str):  # type: ignore[no-untyped-def]
    """Remove a member; refusals (last admin) show in the members fragment."""
    try:
        people.remove_member(group_id, user_id)
    except AppError as exc:
        if exc.code == "group_not_found":
            raise
        return _members_refused(group_id, exc.status, remove=exc.message)
    return fragment_or_redirect(
        "admin/_members.html", url_for("admin_groups.show_group", group_id=group_id), **group_data(group_id)
    )
