"""``/api/sessions``: analysts' Claude Code transcripts uploaded by ``agnes push`` and sessions
marked private by ``agnes mark-private`` (any signed-in user, for their own sessions).

Bodies are the transcript's bytes (``Content-Encoding: gzip`` allowed), not JSON. Rules and
refusals: :mod:`agnes.telemetry.uploads`.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes.access import login_required
from agnes.jobs.telemetry import process_after_upload
from agnes.telemetry import uploads

bp = Blueprint("sessions", __name__)


def _gzipped() -> bool:
    return request.headers.get("Content-Encoding", "").strip().lower() in ("gzip", "x-gzip")


def _store(session_id: str, subagent_file: str | None):  # type: ignore[no-untyped-def]
    user_id = g.principal.user.id
    stored = uploads.store_upload(user_id, session_id, request.stream, gzipped=_gzipped(), subagent_file=subagent_file)
    if stored.status != "unchanged":
        process_after_upload(user_id)
    return jsonify(stored.to_dict()), 201 if stored.status == "created" else 200


@bp.put("/sessions/<session_id>")
@login_required
def put_session(session_id: str):  # type: ignore[no-untyped-def]
    """Store the caller's transcript of ``session_id``: 201 created, 200 replaced or unchanged."""
    return _store(session_id, None)


@bp.put("/sessions/<session_id>/subagents/<file>")
@login_required
def put_subagent(session_id: str, file: str):  # type: ignore[no-untyped-def]
    """Store one subagent transcript (``agent-<id>.jsonl``) of the caller's session."""
    return _store(session_id, file)


@bp.post("/sessions/<session_id>/private")
@login_required
def mark_private(session_id: str):  # type: ignore[no-untyped-def]
    """Mark the caller's session private: what was uploaded of it is deleted, later uploads get 409."""
    return jsonify(uploads.mark_private(g.principal.user.id, session_id))
