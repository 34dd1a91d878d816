"""Admin telemetry pages: ``/admin/usage`` (figures, charts, parked files) and the session
downloads of ``/admin/users/<id>`` (one ``.jsonl``, or all of a user's as a streamed ZIP).

Page data: :mod:`agnes.pages.admin_usage` (shared with ``/api/admin/usage`` and the user page).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import Blueprint, Response, g, request, send_file, stream_with_context, url_for

from agnes import audit, people
from agnes.access import admin_required
from agnes.audit import current_actor, write_audit
from agnes.errors import AppError
from agnes.htmx import job_started, render, wants_fragment
from agnes.jobs.telemetry import current_reprocess, start_reprocess
from agnes.pages.admin_usage import usage_page, user_sessions_page
from agnes.pages.admin_users import user_page
from agnes.telemetry.uploads import stored_session_file, stored_user_files

bp = Blueprint("admin_usage", __name__)

# Bytes read from a session file per step of the ZIP stream.
ZIP_BLOCK = 1 << 20


@bp.get("/admin/usage")
@admin_required
def usage():  # type: ignore[no-untyped-def]
    """KPIs, events per day by source, top items, error rate per tool, parked files, reprocess."""
    return render("admin/usage/usage.html", page=usage_page())


@bp.post("/admin/usage/reprocess")
@admin_required
def reprocess_post():  # type: ignore[no-untyped-def]
    """Start a reprocess; htmx gets the self-polling job status (files done/total), a form a 303."""
    try:
        job = start_reprocess(owner_id=g.principal.user.id)
    except AppError as exc:
        if exc.status != 409:
            raise
        job = current_reprocess()
        if job is None:
            raise
    audit.describe("usage.reprocess", "usage", job_id=job.id)
    return job_started(job, url_for("admin_usage.usage"))


@bp.get("/admin/users/<user_id>/sessions")
@admin_required
def user_sessions_fragment(user_id: str):  # type: ignore[no-untyped-def]
    """The Sessions section at ``?page=N`` (htmx swaps the section; a plain link gets the page)."""
    try:
        number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        number = 1
    sessions = user_sessions_page(user_id, number)
    page = user_page(user_id, only="sessions" if wants_fragment() else None)
    return render("admin/users/user.html", "admin/users/_sessions.html", page=page, sessions_page=sessions)


def _audit_download(action: str, user_id: str, **params: object) -> None:
    actor = current_actor()
    write_audit(
        action,
        user_id=actor.user_id,
        resource=f"user:{user_id}",
        params=dict(params),
        client_ip=actor.client_ip,
        client_kind=actor.client_kind,
        correlation_id=actor.correlation_id,
    )


@bp.get("/admin/users/<user_id>/sessions/<name>")
@admin_required
def download_session(user_id: str, name: str):  # type: ignore[no-untyped-def]
    """One session transcript as stored (400 for a bad name, 404 for an unknown user or file)."""
    user = people.resolve_user(user_id)
    path = stored_session_file(user.id, name)
    size = path.stat().st_size
    _audit_download("session.download", user.id, file=name, bytes=size)
    return send_file(path, mimetype="application/x-ndjson", as_attachment=True, download_name=name, max_age=0)


class _Pipe:
    """A write-only file for ``zipfile`` that hands written bytes to the response stream."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _zip_stream(files: list[tuple[str, object, int]]) -> Iterator[bytes]:
    """The ZIP of ``files`` produced as it is written (constant memory: one block at a time)."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:  # type: ignore[arg-type]
        for arcname, path, _size in files:
            info = zipfile.ZipInfo(arcname, date_time=datetime.now(UTC).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source, archive.open(info, "w", force_zip64=True) as target:  # type: ignore[arg-type]
                while block := source.read(ZIP_BLOCK):
                    target.write(block)
                    data = pipe.take()
                    if data:
                        yield data
            data = pipe.take()
            if data:
                yield data
    yield pipe.take()


@bp.get("/admin/users/<user_id>/sessions.zip")
@admin_required
def download_all_sessions(user_id: str):  # type: ignore[no-untyped-def]
    """Every stored transcript of the user (subagents included) as one streamed ZIP."""
    user = people.resolve_user(user_id)
    files = stored_user_files(user.id)
    _audit_download("session.download_all", user.id, count=len(files), bytes=sum(f[2] for f in files))
    local = user.email.split("@", 1)[0] or user.id
    name = (
        f"{''.join(c if c.isalnum() or c in '._-' else '-' for c in local)}-sessions-{datetime.now(UTC):%Y-%m-%d}.zip"
    )
    response = Response(stream_with_context(_zip_stream(files)), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
