"""The flea market's pages for analysts: upload form (with preview), an entry's page with the
review status its owner watches, install/remove, a new version, and one version's files and
findings. The flea tab of ``/marketplace`` is rendered by :mod:`agnes.views.marketplace_browse`.

Everything works without JavaScript (forms post and redirect, or re-render with 422 and the
message at its field); htmx swaps the status and install fragments in place. Data comes from
:mod:`agnes.pages.flea` (shared with the JSON API) and :mod:`agnes.pages.flea_detail`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes.access import login_required
from agnes.errors import AppError, field_errors
from agnes.flea import service
from agnes.htmx import fragment_or_redirect, render, wants_fragment
from agnes.jobs.flea import start_flea_review
from agnes.marketplace.stack import REFRESH_COMMAND
from agnes.pages.flea import entity_page, version_page
from agnes.pages.flea_detail import (
    KIND_LABELS,
    STATUS_KINDS,
    STATUS_LABELS,
    entity_detail,
    item_detail,
    review_status,
    upload_choices,
)
from agnes.views.api.flea import read_upload, upload_body

bp = Blueprint("flea_pages", __name__, url_prefix="/marketplace/flea")

FORM_FIELDS = ("type", "name", "category", "description")
# Event the status fragment sends when a review ends (the page's other fragments listen for it).
REVIEWED_EVENT = "flea-reviewed"
# Statuses a refused form answers with: the refusal's own for quota (429), else 422 at the field.
_KEEP_STATUS = (429,)


@bp.context_processor
def _labels() -> dict[str, object]:
    return {
        "status_labels": STATUS_LABELS,
        "status_kinds": STATUS_KINDS,
        "kind_labels": KIND_LABELS,
        "refresh_command": REFRESH_COMMAND,
        "reviewed_event": REVIEWED_EVENT,
    }


def _form() -> dict[str, str]:
    form = {k: str(request.form.get(k, "") or "") for k in FORM_FIELDS}
    form["type"] = form["type"] or "skill"
    return form


def _refused(exc: AppError, form: dict[str, str], **extra: Any):  # type: ignore[no-untyped-def]
    status = exc.status if exc.status in _KEEP_STATUS else 422
    findings = getattr(exc, "findings", None) or []
    return render(
        "flea/new.html",
        status=status,
        form=form,
        errors=field_errors(exc, "file"),
        findings=[f.to_dict() if hasattr(f, "to_dict") else f for f in findings],
        preview=None,
        **upload_choices(),
        **extra,
    )


@bp.get("/new")
@login_required
def new_entity():  # type: ignore[no-untyped-def]
    """The upload form: a ZIP, a SKILL.md or an agent/command .md, its type, name and category."""
    form = {k: str(request.args.get(k, "") or "") for k in FORM_FIELDS}
    form["type"] = form["type"] or "skill"
    return render("flea/new.html", form=form, errors={}, findings=[], preview=None, **upload_choices())


@bp.post("/new")
@login_required
@upload_body
def new_entity_post():  # type: ignore[no-untyped-def]
    """``action=preview``: check and show what would be published (writes nothing);
    otherwise publish version 1, start its review and go to the entry's page (303)."""
    try:
        upload = read_upload()
    except AppError as exc:
        if exc.status >= 500 or exc.status in (401, 403, 404):
            raise
        return _refused(exc, _form())
    form = _form()
    try:
        if request.form.get("action") == "preview":
            preview = service.preview(upload.data, upload.filename, upload.kind, upload.name, upload.category)
            return render("flea/new.html", form=form, errors={}, findings=[], preview=preview, **upload_choices())
        result = service.publish(
            g.principal,
            data=upload.data,
            filename=upload.filename,
            kind=upload.kind,
            name=upload.name,
            category=upload.category,
            description=upload.description,
        )
    except AppError as exc:
        if exc.status >= 500 or exc.status in (401, 403, 404):
            raise
        return _refused(exc, form)
    start_flea_review(result.version.id, owner_id=g.principal.user.id)
    return redirect(url_for("flea_pages.entity_detail_page", entity_id=result.entity.id), code=303)


@bp.get("/<entity_id>")
@login_required
def entity_detail_page(entity_id: str):  # type: ignore[no-untyped-def]
    """An entry: hero, install panel, review status (owner and admins), contents, versions."""
    return render("flea/entity.html", detail=entity_detail(g.principal, entity_id), version_errors={})


@bp.get("/<entity_id>/<any(skill, agent, command):kind>/<path:item>")
@login_required
def item_page(entity_id: str, kind: str, item: str):  # type: ignore[no-untyped-def]
    """A skill, agent or command of the entry, on the curated item page's template."""
    detail = item_detail(g.principal, entity_id, kind, item)
    parent_url = url_for("flea_pages.entity_detail_page", entity_id=entity_id)
    list_url = url_for("marketplace_browse.listing", tab="flea")
    return render("marketplace/item.html", detail=detail, parent_url=parent_url, parent_list=("Flea market", list_url))


@bp.get("/<entity_id>/status")
@login_required
def status_fragment(entity_id: str):  # type: ignore[no-untyped-def]
    """``#flea-status``: polls every second while the newest version is in review."""
    review = review_status(g.principal, entity_id)
    response = render("flea/_status.html", "flea/_status.html", review=review)
    if not review.polling and wants_fragment():
        # The poll that sees the decision tells the page: its install panel and versions refresh.
        response.headers["HX-Trigger"] = REVIEWED_EVENT
    return response


def _change_install(entity_id: str, *, add: bool):  # type: ignore[no-untyped-def]
    error = None
    try:
        if add:
            service.install(g.principal, entity_id)
        else:
            service.uninstall(g.principal, entity_id)
    except AppError as exc:
        if exc.status != 409:
            raise
        error = exc.message
    page = entity_page(g.principal, entity_id)
    if error:
        return render("flea/_install.html", "flea/_install.html", status=409, page=page, error=error, changed=None)
    return fragment_or_redirect(
        "flea/_install.html",
        url_for("flea_pages.entity_detail_page", entity_id=entity_id),
        page=page,
        error=None,
        changed="added" if add else "removed",
    )


@bp.post("/<entity_id>/install")
@login_required
def install_entity(entity_id: str):  # type: ignore[no-untyped-def]
    """Add the entry to the viewer's stack (409 while not approved, or archived)."""
    return _change_install(entity_id, add=True)


@bp.post("/<entity_id>/remove")
@login_required
def remove_entity(entity_id: str):  # type: ignore[no-untyped-def]
    """Remove the entry from the viewer's stack (idempotent)."""
    return _change_install(entity_id, add=False)


@bp.post("/<entity_id>/versions")
@login_required
@upload_body
def new_version_post(entity_id: str):  # type: ignore[no-untyped-def]
    """The owner uploads the next version (409 while one is in review); back to the entry (303)."""
    try:
        upload = read_upload()
        result = service.publish_version(
            g.principal, entity_id, data=upload.data, filename=upload.filename, kind=upload.kind
        )
    except AppError as exc:
        if exc.status >= 500 or exc.status in (401, 403, 404):
            raise
        detail = entity_detail(g.principal, entity_id)
        status = exc.status if exc.status in _KEEP_STATUS else 422
        return render("flea/entity.html", status=status, detail=detail, version_errors=field_errors(exc, "file"))
    start_flea_review(result.version.id, owner_id=g.principal.user.id)
    return redirect(url_for("flea_pages.entity_detail_page", entity_id=entity_id), code=303)


@bp.get("/<entity_id>/versions/<int:number>")
@login_required
def version_detail(entity_id: str, number: int):  # type: ignore[no-untyped-def]
    """One version: status, reason, findings at file and line, files, diff from the served one;
    administrators decide here."""
    page = version_page(g.principal, entity_id, number)
    return render("flea/version.html", page=page, errors={}, reason="")


def _back_to_entry(entity_id: str, action, done: str):  # type: ignore[no-untyped-def]
    """Run an owner's action; a 409 (e.g. ``version_not_approved``) is shown on the entry's page."""
    try:
        action()
    except AppError as exc:
        if exc.status not in (400, 409):
            raise
        flash(exc.message, "error")
    else:
        flash(done, "success")
    return redirect(url_for("flea_pages.entity_detail_page", entity_id=entity_id), code=303)


@bp.post("/<entity_id>/archive")
@login_required
def archive_post(entity_id: str):  # type: ignore[no-untyped-def]
    """Archive (``archived=1``) or unarchive the entry (owner or admin): archived entries keep
    serving who installed them and refuse new installs."""
    archived = request.form.get("archived", "1") != "0"
    done = "Archived: nobody new can install it; who has it keeps it." if archived else "Unarchived."
    return _back_to_entry(entity_id, lambda: service.set_archived(g.principal, entity_id, archived), done)


@bp.post("/<entity_id>/rollback")
@login_required
def rollback_post(entity_id: str):  # type: ignore[no-untyped-def]
    """Serve an earlier approved version again (owner or admin; 409 for one not approved)."""
    number = request.form.get("version", "")
    version = int(number) if number.isdigit() else number
    return _back_to_entry(
        entity_id,
        lambda: service.rollback(g.principal, entity_id, version),
        f"Version {number} is served again; installers get it on their next update.",
    )
