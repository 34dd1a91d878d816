"""``/api/flea`` (publish, browse, versions, rollback, archive, install) and ``/api/admin/flea``
(the review queue and decisions). Uploads are multipart: ``file`` (a ZIP or one ``.md``),
``type``, ``name``, ``category``, ``description?``. Refusals are ``{error, message, field}``
(``findings`` too for ``security_blocked``) and write nothing (a scan refusal: its audit row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from agnes.access import admin_required, login_required
from agnes.errors import Invalid
from agnes.flea import review, service
from agnes.flea.checks import UploadRefused, read_limited
from agnes.jobs.flea import start_flea_review
from agnes.marketplace import stack
from agnes.pages import flea as pages
from agnes.views.api.body import json_body

bp = Blueprint("flea", __name__)
F = TypeVar("F", bound=Callable[..., Any])

# Multipart overhead allowed above the file limit before the body is refused while streaming.
FORM_OVERHEAD = 256 * 1024


def body_limit() -> int:
    """Largest upload request body, bytes: ``AGNES_FLEA_MAX_UPLOAD_MB`` plus the form's overhead."""
    return int(current_app.config["AGNES_FLEA_MAX_UPLOAD_MB"]) * 1024 * 1024 + FORM_OVERHEAD


def upload_body(view: F) -> F:
    """Refuse a request body past the flea upload limit while it streams, before the CSRF check
    reads the form (``body_limit`` of the view, applied in :mod:`agnes.app`'s before-request)."""
    view.body_limit = body_limit  # type: ignore[attr-defined]
    return view


@dataclass(frozen=True)
class Upload:
    """An upload form as read from the request (the file within the size limit)."""

    data: bytes
    filename: str
    kind: str
    name: str
    category: str
    description: str


def read_upload() -> Upload:
    """Read the multipart upload of this request, refusing it while it streams past
    ``AGNES_FLEA_MAX_UPLOAD_MB`` (shared by the upload page and the JSON API).

    Raises:
        UploadRefused: 413 ``file_too_large``; 400 ``file_required``.
    """
    limit = int(current_app.config["AGNES_FLEA_MAX_UPLOAD_MB"]) * 1024 * 1024
    too_large = UploadRefused(413, "file_too_large", f"The file is larger than {limit // (1024 * 1024)} MB.", "file")
    if request.content_length is not None and request.content_length > body_limit():
        raise too_large
    request.max_content_length = body_limit()
    try:
        upload = request.files.get("file")
        form = request.form
    except RequestEntityTooLarge:
        raise too_large from None
    if upload is None or not upload.filename:
        raise UploadRefused(400, "file_required", "Choose a file: a ZIP, a SKILL.md or an agent/command .md.", "file")
    data = read_limited(upload.stream, limit)
    return Upload(
        data=data,
        filename=upload.filename,
        kind=str(form.get("type", "") or form.get("kind", "") or ""),
        name=str(form.get("name", "") or "").strip(),
        category=str(form.get("category", "") or ""),
        description=str(form.get("description", "") or ""),
    )


def _published(result: service.Published) -> tuple[Response, int]:
    job = start_flea_review(result.version.id, owner_id=g.principal.user.id)
    body = result.to_dict()
    body["job"] = job.to_dict() if job is not None else None
    return jsonify(body), 201


@bp.post("/flea/preview")
@login_required
@upload_body
def preview():  # type: ignore[no-untyped-def]
    """Check an upload and show what it would publish; writes nothing."""
    upload = read_upload()
    return jsonify(service.preview(upload.data, upload.filename, upload.kind, upload.name, upload.category))


@bp.post("/flea/entities")
@login_required
@upload_body
def create_entity():  # type: ignore[no-untyped-def]
    """Publish version 1 (201 ``{entity, version, job}``); the review job starts after the commit."""
    upload = read_upload()
    result = service.publish(
        g.principal,
        data=upload.data,
        filename=upload.filename,
        kind=upload.kind,
        name=upload.name,
        category=upload.category,
        description=upload.description,
    )
    return _published(result)


@bp.get("/flea/entities")
@login_required
def list_entities():  # type: ignore[no-untyped-def]
    """The flea tab: ``q``, ``type``, ``category``, ``sort`` (recent, name, most_installed, updated),
    ``mine``, ``page``."""
    return jsonify(pages.flea_tab(g.principal, pages.TabFilters.from_args(request.args)).to_dict())


@bp.get("/flea/categories")
@login_required
def list_categories():  # type: ignore[no-untyped-def]
    return jsonify(categories=list(service.CATEGORIES), kinds=list(pages.KINDS))


@bp.get("/flea/entities/<entity_id>")
@login_required
def get_entity(entity_id: str):  # type: ignore[no-untyped-def]
    return jsonify(pages.entity_page(g.principal, entity_id).to_dict())


@bp.post("/flea/entities/<entity_id>/versions")
@login_required
@upload_body
def create_version(entity_id: str):  # type: ignore[no-untyped-def]
    """Upload the next version (owner); 409 ``version_in_review`` while one is in review."""
    upload = read_upload()
    result = service.publish_version(
        g.principal, entity_id, data=upload.data, filename=upload.filename, kind=upload.kind
    )
    return _published(result)


@bp.get("/flea/entities/<entity_id>/versions/<int:number>")
@login_required
def get_version(entity_id: str, number: int):  # type: ignore[no-untyped-def]
    """Files, findings and the diff from the served version."""
    return jsonify(pages.version_page(g.principal, entity_id, number).to_dict())


@bp.get("/flea/entities/<entity_id>/versions/<int:number>/files/<path:path>")
@login_required
def get_file(entity_id: str, number: int, path: str):  # type: ignore[no-untyped-def]
    """One file's bytes (``text/plain``, downloaded as an attachment)."""
    data = pages.version_file(g.principal, entity_id, number, path)
    name = path.rsplit("/", 1)[-1].replace('"', "")
    return Response(
        data,
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"},
    )


def _version_number(body: dict[str, Any]) -> Any:
    value = body.get("version")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


@bp.post("/flea/entities/<entity_id>/rollback")
@login_required
def rollback(entity_id: str):  # type: ignore[no-untyped-def]
    """``{"version": n}``: serve an approved version again (owner or admin)."""
    entity = service.rollback(g.principal, entity_id, _version_number(json_body()))
    return jsonify(entity=entity.to_dict())


@bp.post("/flea/entities/<entity_id>/archive")
@login_required
def archive(entity_id: str):  # type: ignore[no-untyped-def]
    return jsonify(entity=service.set_archived(g.principal, entity_id, True).to_dict())


@bp.post("/flea/entities/<entity_id>/unarchive")
@login_required
def unarchive(entity_id: str):  # type: ignore[no-untyped-def]
    return jsonify(entity=service.set_archived(g.principal, entity_id, False).to_dict())


@bp.post("/flea/entities/<entity_id>/install")
@login_required
def install(entity_id: str):  # type: ignore[no-untyped-def]
    """Idempotent; 409 ``entity_not_approved`` / ``entity_archived``. ``claude_commands``: what to
    run in Claude Code next (``claude plugin install <name>-by-<handle>@agnes``)."""
    entity, changed = service.install(g.principal, entity_id)
    commands = stack.claude_commands("added" if changed else None, entity.plugin_name)
    return jsonify(installed=True, changed=changed, entity=entity.to_dict(), claude_commands=commands)


@bp.delete("/flea/entities/<entity_id>/install")
@login_required
def uninstall(entity_id: str):  # type: ignore[no-untyped-def]
    entity, changed = service.uninstall(g.principal, entity_id)
    commands = stack.claude_commands("removed" if changed else None, entity.plugin_name)
    return jsonify(installed=False, changed=changed, entity=entity.to_dict(), claude_commands=commands)


# -- administrators --------------------------------------------------------------------------


@bp.get("/admin/flea")
@admin_required
def admin_queue():  # type: ignore[no-untyped-def]
    """Counts per status and a page of versions: ``status`` (in_review default, or all), ``type``,
    ``q``, ``sort``, ``page``."""
    return jsonify(pages.admin_queue(pages.QueueFilters.from_args(request.args)).to_dict())


@bp.post("/admin/flea/versions/<version_id>/<action>")
@admin_required
def decide(version_id: str, action: str):  # type: ignore[no-untyped-def]
    """``approve``, ``reject`` (``{"reason": 4..2000 characters}``) or ``rerun``; 409 ``cannot_decide:<status>``."""
    me = g.principal.user.id
    if action == "approve":
        version = review.approve(version_id, me)
        return jsonify(version=version.to_dict())
    if action == "reject":
        version = review.reject(version_id, me, json_body().get("reason"))
        return jsonify(version=version.to_dict())
    if action == "rerun":
        version = review.prepare_rerun(version_id)
        job = start_flea_review(version.id, owner_id=me)
        return jsonify(version=version.to_dict(), job=job.to_dict() if job is not None else None)
    raise Invalid("unknown_action", "The action must be approve, reject or rerun.", field="action")


@bp.delete("/admin/flea/entities/<entity_id>")
@admin_required
def delete_entity(entity_id: str):  # type: ignore[no-untyped-def]
    """Hard delete: rows, installs and files; installers stop being served it on their next request."""
    service.delete(g.principal, entity_id)
    return jsonify(deleted=entity_id)
