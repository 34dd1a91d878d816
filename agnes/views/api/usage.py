"""``/api/admin/usage``: telemetry figures, export, prune, reprocess and ask (admins).

The CLI's ``agnes admin usage ...`` and ``agnes admin ask`` call these.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, send_file

from agnes import audit
from agnes.access import admin_required
from agnes.jobs.telemetry import start_reprocess
from agnes.pages.admin_usage import usage_page
from agnes.telemetry import export as exporting
from agnes.telemetry.ask import SqlRejected, ask
from agnes.telemetry.processor import prune_events
from agnes.views.api.body import json_body

bp = Blueprint("usage", __name__)


@bp.get("/admin/usage")
@admin_required
def usage_summary():  # type: ignore[no-untyped-def]
    """KPIs, events per day by source, top items, tools with error rates, parked files."""
    return jsonify(usage_page().to_dict())


@bp.get("/admin/usage/export")
@admin_required
def export_usage():  # type: ignore[no-untyped-def]
    """``?format=csv|json|parquet&since&until&user&source&what=events|sessions``, streamed."""
    query = exporting.parse_export_query(request.args)
    handle, rows, name = exporting.export(query)
    response = send_file(
        handle, mimetype=exporting.FORMATS[query.format], as_attachment=True, download_name=name, max_age=0
    )
    response.headers["X-Agnes-Rows"] = str(rows)
    return response


@bp.post("/admin/usage/prune")
@admin_required
def prune_usage():  # type: ignore[no-untyped-def]
    """Delete events older than ``AGNES_USAGE_RETENTION_DAYS`` (0: 200 ``skipped``); rollups stay."""
    result = prune_events(int(current_app.config["AGNES_USAGE_RETENTION_DAYS"]))
    if result["status"] == "skipped":
        audit.describe("usage.prune", "usage_events", status="skipped")
    return jsonify(result)


@bp.post("/admin/usage/reprocess")
@admin_required
def reprocess_usage():  # type: ignore[no-untyped-def]
    """Start ``usage-reprocess`` (409 ``reprocess_running`` while one runs)."""
    job = start_reprocess(owner_id=g.principal.user.id)
    audit.describe("usage.reprocess", "usage", job_id=job.id)
    return jsonify(job=job.to_dict()), 202


@bp.post("/admin/usage/ask")
@admin_required
def ask_usage():  # type: ignore[no-untyped-def]
    """``{"question"}`` → the generated SQL, its rationale and up to 1,000 rows (read-only)."""
    question = json_body().get("question")
    audit.describe("usage.ask", "usage", question=question if isinstance(question, str) else None)
    try:
        answer = ask(question)
    except SqlRejected as exc:
        audit.describe("usage.ask", "usage", question=question, sql=exc.sql, rejected=exc.reason)
        raise
    audit.describe("usage.ask", "usage", question=answer.question, sql=answer.sql, rows=len(answer.rows))
    return jsonify(answer.to_dict())
