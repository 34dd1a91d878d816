"""``/admin/flea``: the flea market's review queue (status chips with counts, filters, sort, 50 a
page; rows in review show the review job's status) and the decisions taken on a version's page
(``/marketplace/flea/<id>/versions/<n>``): approve, reject with a reason, re-run, delete.

Page data: :func:`agnes.pages.flea.admin_queue` (shared with ``/api/admin/flea``); decisions:
:mod:`agnes.flea.review` and :mod:`agnes.flea.service`, like the JSON twins.
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes.access import admin_required
from agnes.errors import AppError, NotFound, field_errors
from agnes.flea import review, service
from agnes.htmx import job_status, render
from agnes.jobs import JobNotFound, get_job
from agnes.jobs.flea import review_job_id, start_flea_review
from agnes.models import flea as model
from agnes.pages.flea import QueueFilters, admin_queue, version_page
from agnes.pages.flea_detail import KIND_LABELS, STATUS_KINDS, STATUS_LABELS
from agnes.state import state_store

bp = Blueprint("admin_flea", __name__, url_prefix="/admin/flea")


@bp.context_processor
def _labels() -> dict[str, object]:
    return {
        "status_labels": STATUS_LABELS,
        "status_kinds": STATUS_KINDS,
        "kind_labels": KIND_LABELS,
        "review_job_id": review_job_id,
    }


@bp.get("")
@admin_required
def queue():  # type: ignore[no-untyped-def]
    """The review queue; the fragment is ``#flea-queue`` (chips, filters and paging swap it)."""
    page = admin_queue(QueueFilters.from_args(request.args))
    response = render("admin/flea/index.html", "admin/flea/_queue.html", queue=page)
    response.headers["HX-Push-Url"] = url_for("admin_flea.queue", **page.filters.args())
    return response


@bp.get("/versions/<version_id>/job")
@admin_required
def review_job_fragment(version_id: str):  # type: ignore[no-untyped-def]
    """The review job's self-polling status for a queue row; a short note when there is none
    (no reviewer key, or the job expired)."""
    try:
        job = get_job(review_job_id(version_id))
    except JobNotFound:
        return render("admin/flea/_no_job.html", "admin/flea/_no_job.html", version_id=version_id)
    return job_status(job)


def _version_url(version_id: str) -> tuple[str, str, int]:
    with state_store().read() as con:
        version = model.get_version(con, version_id)
    if version is None:
        raise NotFound("version_not_found", "There is no such version.")
    url = url_for("flea_pages.version_detail", entity_id=version.entity_id, number=version.number)
    return url, version.entity_id, version.number


@bp.post("/versions/<version_id>/approve")
@admin_required
def approve_post(version_id: str):  # type: ignore[no-untyped-def]
    """Approve (and serve) a version; 409 ``cannot_decide:<status>`` shown on the page."""
    url, _, _ = _version_url(version_id)
    try:
        review.approve(version_id, g.principal.user.id)
    except AppError as exc:
        if exc.status != 409:
            raise
        flash(exc.message, "error")
        return redirect(url, code=303)
    flash("Approved: installers get this version on their next update.", "success")
    return redirect(url, code=303)


@bp.post("/versions/<version_id>/reject")
@admin_required
def reject_post(version_id: str):  # type: ignore[no-untyped-def]
    """Reject with a reason (4 to 2,000 characters, else 422 at the field; nothing changes)."""
    url, entity_id, number = _version_url(version_id)
    reason = request.form.get("reason", "")
    try:
        review.reject(version_id, g.principal.user.id, reason)
    except AppError as exc:
        if exc.status not in (400, 409, 422):
            raise
        page = version_page(g.principal, entity_id, number)
        return render("flea/version.html", status=422, page=page, errors=field_errors(exc, "reason"), reason=reason)
    flash("Rejected; the owner sees your reason.", "success")
    return redirect(url, code=303)


@bp.post("/versions/<version_id>/rerun")
@admin_required
def rerun_post(version_id: str):  # type: ignore[no-untyped-def]
    """Review the version again (back to ``in_review``)."""
    url, _, _ = _version_url(version_id)
    try:
        version = review.prepare_rerun(version_id)
    except AppError as exc:
        if exc.status != 409:
            raise
        flash(exc.message, "error")
        return redirect(url, code=303)
    start_flea_review(version.id, owner_id=g.principal.user.id)
    flash("The review runs again.", "success")
    return redirect(url, code=303)


@bp.post("/entities/<entity_id>/delete")
@admin_required
def delete_post(entity_id: str):  # type: ignore[no-untyped-def]
    """Delete the entry, its versions, files and installs; back to the queue."""
    service.delete(g.principal, entity_id)
    flash("Deleted: installers stop getting it on their next update.", "success")
    return redirect(url_for("admin_flea.queue"), code=303)
