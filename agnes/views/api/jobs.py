"""``/api/jobs``: job status for the CLI (``--wait``)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from agnes.access import login_required
from agnes.views.jobs import visible_job

bp = Blueprint("jobs", __name__)


@bp.get("/jobs/<path:job_id>")
@login_required
def get_job(job_id: str):  # type: ignore[no-untyped-def]
    return jsonify(visible_job(job_id).to_dict())
