"""Job status: a self-polling fragment any page can include, and retry."""

from __future__ import annotations

from flask import Blueprint, g

from agnes import audit
from agnes.access import login_required
from agnes.errors import Forbidden, NotFound
from agnes.htmx import job_status
from agnes.jobs import JobNotFound, JobStatus, get_job, retry_job

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


def visible_job(job_id: str) -> JobStatus:
    """The job if the caller may watch it (admin or the user who started it)."""
    try:
        job = get_job(job_id)
    except JobNotFound:
        raise NotFound("job_not_found", "No such job (it may have expired).") from None
    if not g.principal.is_admin and job.owner_id != g.principal.user.id:
        raise Forbidden("job_forbidden", "You cannot see this job.")
    return job


@bp.get("/<path:job_id>")
@login_required
def show_job(job_id: str):  # type: ignore[no-untyped-def]
    """A job's status; htmx polls the fragment until the job ends (the last answer carries
    ``HX-Trigger: <job id>`` so the page's fragments showing the job's resource refresh)."""
    return job_status(visible_job(job_id))


@bp.post("/<path:job_id>/retry")
@login_required
def retry_job_post(job_id: str):  # type: ignore[no-untyped-def]
    """Run a failed job again; answers with the (polling) status fragment."""
    visible_job(job_id)
    job = retry_job(job_id)
    audit.describe("job.retry", f"job:{job_id}")
    return job_status(job)
