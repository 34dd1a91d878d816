"""``/api/jobs``: job status for the CLI (``--wait``) and the recount job."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from agnes import audit
from agnes.access import admin_required, login_required
from agnes.jobs import enqueue
from agnes.jobs.groups import run_recompute_group_member_counts
from agnes.views.admin.groups import RECOUNT_JOB_ID
from agnes.views.jobs import visible_job

bp = Blueprint("jobs", __name__)


@bp.get("/jobs/<path:job_id>")
@login_required
def get_job(job_id: str):  # type: ignore[no-untyped-def]
    return jsonify(visible_job(job_id).to_dict())


@bp.post("/admin/groups/recount")
@admin_required
def recount():  # type: ignore[no-untyped-def]
    job = enqueue(
        run_recompute_group_member_counts,
        job_id=RECOUNT_JOB_ID,
        description="Recompute group member counts",
        owner_id=g.principal.user.id,
    )
    audit.describe("group.recount", f"job:{job.id}")
    return jsonify(job.to_dict()), 202
