"""Publishing in the flea market: preview, the first upload, new versions, and an owner's changes.

Order of an upload (so the scan rules cannot be probed, and a refusal writes nothing):
category and name checks → :func:`agnes.flea.checks.check_upload` → :func:`agnes.flea.scan.scan_bundle`
→ one write unit (spam quota counted inside it, the entity and version rows, the files written
atomically, the audit row). The review job is started by the caller once this returns (after the
commit): the domain never starts jobs.

A high scan finding refuses the upload with 422 ``security_blocked`` (findings at file and line)
and writes only its ``flea.security_blocked`` audit row, which the quota counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from duckdb import DuckDBPyConnection

from agnes import audit
from agnes.access import Principal
from agnes.errors import Conflict, Forbidden, Invalid, NotFound
from agnes.flea import store, visibility
from agnes.flea.checks import Bundle, UploadRefused, check_upload
from agnes.flea.scan import scan_bundle
from agnes.flea.visibility import visible_entity
from agnes.models import flea as model
from agnes.models import new_id, utcnow
from agnes.models.flea import Entity, Version
from agnes.state import state_store

# The categories an entity may have (the form's choices).
CATEGORIES = (
    "Code & Engineering",
    "Data & Analytics",
    "Documentation",
    "Productivity",
    "Communication",
    "DevOps & Infra",
    "Security",
    "Research",
    "Other",
)
# Blocked versions (and scan refusals) per uploader in QUOTA_WINDOW before uploads answer 429.
QUOTA_LIMIT = 20
QUOTA_WINDOW = timedelta(hours=24)
MAX_DESCRIPTION = 2000
_HANDLE_CLEAN = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Published:
    """What an upload stored: the entity and its new version (in review)."""

    entity: Entity
    version: Version

    def to_dict(self) -> dict[str, Any]:
        return {"entity": self.entity.to_dict(), "version": self.version.to_dict()}


def check_category(category: Any) -> str:
    """Raises Invalid (400 ``invalid_category``) unless ``category`` is one of :data:`CATEGORIES`."""
    if category not in CATEGORIES:
        raise Invalid(
            "invalid_category",
            f"Choose a category: {', '.join(CATEGORIES)}.",
            field="category",
        )
    return str(category)


def _finding_dicts(findings: list[Any], source: str) -> list[dict[str, Any]]:
    return [{**f.to_dict(), "source": source} for f in findings]


def inspect(data: bytes, filename: str, kind: str, name: str) -> tuple[Bundle, list[dict[str, Any]]]:
    """Validate and scan an upload without writing anything.

    Returns:
        The bundle and the scan's findings that do not block (medium, low).

    Raises:
        UploadRefused: a validation refusal, or 422 ``security_blocked`` with the findings.
    """
    bundle = check_upload(data, filename, kind, name)
    findings = scan_bundle(bundle.files)
    high = [f for f in findings if f.severity == "high"]
    if high:
        where = ", ".join(f"{f.file}:{f.line}" for f in high[:5])
        raise UploadRefused(
            422,
            "security_blocked",
            f"The upload was refused: {len(high)} security finding(s) ({where}). Remove them and upload again.",
            "file",
            findings=high,
        )
    return bundle, _finding_dicts(findings, "scan")


def preview(data: bytes, filename: str, kind: str, name: str, category: Any) -> dict[str, Any]:
    """What an upload would publish (writes nothing): ``{kind, name, description, sha256, size,
    files: [{path, size}], findings}``. Raises Invalid / UploadRefused like :func:`publish`."""
    check_category(category)
    bundle, findings = inspect(data, filename, kind, name)
    return {
        "kind": bundle.kind,
        "name": name,
        "description": bundle.description,
        "sha256": bundle.sha256,
        "size": bundle.size,
        "files": [{"path": p, "size": len(b)} for p, b in sorted(bundle.files.items())],
        "findings": findings,
    }


def _check_quota(con: DuckDBPyConnection, user_id: str) -> None:
    blocked = model.count_blocked_since(con, user_id, utcnow() - QUOTA_WINDOW)
    if blocked >= QUOTA_LIMIT:
        raise UploadRefused(
            429,
            "quota_exceeded",
            f"{blocked} of your uploads were blocked in the last 24 hours (limit {QUOTA_LIMIT}); try again tomorrow.",
            "file",
        )


def _refuse_blocked(principal: Principal, refusal: UploadRefused, kind: str, name: str, entity_id: str | None) -> None:
    """Write the audit row of a scan refusal (its own unit; the quota counts it), then raise it."""
    with state_store().write() as con:
        _check_quota(con, principal.user.id)
        audit.record(
            con,
            "flea.security_blocked",
            f"flea:{entity_id}" if entity_id else f"flea-name:{name}",
            kind=kind,
            name=name,
            findings=[f.to_dict() for f in refusal.findings or []],
        )
    raise refusal


def handle_for(con: DuckDBPyConnection, user_id: str, email: str) -> str:
    """The user's publisher handle, chosen once from the e-mail's local part (made unique) and stored."""
    found = model.get_handle(con, user_id)
    if found:
        return found
    base = _HANDLE_CLEAN.sub("-", email.split("@", 1)[0].lower()).strip("-")
    base = re.sub(r"-{2,}", "-", base)[:40].strip("-") or "user"
    if not base[0].isalpha():
        base = f"u{base}"[:40]
    handle, n = base, 2
    while model.handle_taken(con, handle):
        handle, n = f"{base}-{n}", n + 1
    model.insert_handle(con, user_id, handle)
    return handle


def publish(
    principal: Principal,
    *,
    data: bytes,
    filename: str,
    kind: str,
    name: str,
    category: Any,
    description: str = "",
) -> Published:
    """Publish version 1 of a new entity (in review).

    Args:
        data: the uploaded file (a ZIP, or one ``.md``), already read within the size limit.
        kind: ``skill``, ``agent``, ``command`` or ``plugin``.
        name: the entity name, ``^[a-z][a-z0-9-]{0,63}$``, unique per owner.
        description: optional; the frontmatter's or plugin.json's description otherwise.

    Raises:
        Invalid: 400 ``invalid_category``.
        Conflict: 409 ``name_taken``.
        UploadRefused: 400/413/422 from the checks, 422 ``security_blocked``, 429 ``quota_exceeded``.
    """
    check_category(category)
    user_id = principal.user.id
    with state_store().read() as con:
        taken = model.entity_name_taken(con, user_id, name) if isinstance(name, str) else False
    if taken:
        raise _name_taken(name)
    try:
        bundle, findings = inspect(data, filename, kind, name)
    except UploadRefused as refusal:
        if refusal.code == "security_blocked":
            _refuse_blocked(principal, refusal, kind, name, None)
        raise
    entity_id, version_id, now = new_id(), new_id(), utcnow()
    text = (description or "").strip()[:MAX_DESCRIPTION] or bundle.description
    if not text:  # a plugin without plugin.json says what it does in the form
        raise UploadRefused(
            422,
            "description_required",
            "This plugin has no .claude-plugin/plugin.json: say in a sentence what it does.",
            "description",
        )
    written = False
    try:
        with state_store().write() as con:
            _check_quota(con, user_id)
            if model.entity_name_taken(con, user_id, name):
                raise _name_taken(name)
            handle_for(con, user_id, principal.user.email)
            model.insert_entity(
                con,
                entity_id=entity_id,
                owner_id=user_id,
                kind=bundle.kind,
                name=name,
                category=str(category),
                description=text,
                now=now,
            )
            _insert_version(con, entity_id, version_id, 1, bundle, findings, user_id, now)
            store.write_version(entity_id, 1, bundle.files)
            written = True
            audit.record(
                con, "flea.publish", f"flea:{entity_id}", name=name, kind=bundle.kind, version=1, sha256=bundle.sha256
            )
            visibility.changed(served=False)
            entity = model.get_entity(con, entity_id)
            version = model.get_version(con, version_id)
    except BaseException:
        if written:
            store.remove_entity(entity_id)
        raise
    assert entity is not None and version is not None
    return Published(entity, version)


def _name_taken(name: str) -> Conflict:
    return Conflict(
        "name_taken", f"You already published an entry named '{name}'; upload a new version of it.", field="name"
    )


def _insert_version(
    con: DuckDBPyConnection,
    entity_id: str,
    version_id: str,
    number: int,
    bundle: Bundle,
    findings: list[dict[str, Any]],
    user_id: str,
    now: Any,
) -> None:
    model.insert_version(
        con,
        version_id=version_id,
        entity_id=entity_id,
        number=number,
        sha256=bundle.sha256,
        size_bytes=bundle.size,
        file_count=len(bundle.files),
        status="in_review",
        note="",
        findings=findings,
        uploaded_by=user_id,
        now=now,
    )


def owned_entity(principal: Principal, entity_id: str, *, admin_may: bool = True) -> Entity:
    """The entity when the caller owns it (or is an admin, with ``admin_may``).

    Raises:
        NotFound: hidden from the caller. Forbidden: 403 ``not_owner`` (they see it but do not own it).
    """
    entity = visible_entity(principal, entity_id)
    if entity.owner_id != principal.user.id and not (admin_may and principal.is_admin):
        raise Forbidden("not_owner", f"Only the owner of '{entity.name}' can do this.")
    return entity


def publish_version(principal: Principal, entity_id: str, *, data: bytes, filename: str, kind: str = "") -> Published:
    """Upload the next version of an entity the caller owns (in review; the served one keeps serving).

    Raises:
        NotFound, Forbidden (``not_owner``); Conflict: 409 ``version_in_review``, ``entity_archived``;
        UploadRefused as :func:`publish` (``invalid_type`` when ``kind`` differs from the entity's).
    """
    entity = owned_entity(principal, entity_id, admin_may=False)
    if kind and kind != entity.kind:
        raise UploadRefused(400, "invalid_type", f"'{entity.name}' is a {entity.kind}; upload a {entity.kind}.", "type")
    _check_open_for_version(entity)
    try:
        bundle, findings = inspect(data, filename, entity.kind, entity.name)
    except UploadRefused as refusal:
        if refusal.code == "security_blocked":
            _refuse_blocked(principal, refusal, entity.kind, entity.name, entity.id)
        raise
    version_id, now = new_id(), utcnow()
    number = 0
    written = False
    try:
        with state_store().write() as con:
            _check_quota(con, principal.user.id)
            current = model.get_entity(con, entity_id)
            if current is None:
                raise NotFound("entity_not_found", f"There is no flea-market entry '{entity_id}'.")
            _check_open_for_version(current)
            number = (current.latest_version or 0) + 1
            _insert_version(con, entity_id, version_id, number, bundle, findings, principal.user.id, now)
            store.write_version(entity_id, number, bundle.files)
            written = True
            model.update_entity(con, entity_id, now)
            audit.record(con, "flea.version", f"flea:{entity_id}", version=number, sha256=bundle.sha256)
            visibility.changed(served=False)
            fresh = model.get_entity(con, entity_id)
            version = model.get_version(con, version_id)
    except BaseException:
        if written:
            store.remove_version(entity_id, number)
        raise
    assert fresh is not None and version is not None
    return Published(fresh, version)


def _check_open_for_version(entity: Entity) -> None:
    if entity.state == "archived":
        raise Conflict("entity_archived", f"'{entity.name}' is archived; unarchive it before uploading.")
    if entity.latest_status == "in_review":
        raise Conflict(
            "version_in_review",
            f"Version {entity.latest_version} of '{entity.name}' is still in review; wait for its decision.",
        )


# -- owner's changes -------------------------------------------------------------------------


def rollback(principal: Principal, entity_id: str, number: Any) -> Entity:
    """Serve an earlier (or any) approved version again. Owner or admin.

    Raises:
        Invalid: 400 ``invalid_version``. NotFound: 404 ``version_not_found``.
        Conflict: 409 ``version_not_approved``.
    """
    entity = owned_entity(principal, entity_id)
    if isinstance(number, bool) or not isinstance(number, int):
        raise Invalid("invalid_version", "version must be a version number (1, 2, ...).", field="version")
    with state_store().write() as con:
        version = model.get_version_number(con, entity_id, number)
        if version is None:
            raise NotFound("version_not_found", f"'{entity.name}' has no version {number}.", field="version")
        if version.status != "approved" or version.files_deleted_at is not None:
            raise Conflict(
                "version_not_approved",
                f"Version {number} of '{entity.name}' is {version.status.replace('_', ' ')}; only an approved"
                " version can be served.",
                field="version",
            )
        model.update_entity(con, entity_id, utcnow(), served_version=number)
        audit.record(con, "flea.rollback", f"flea:{entity_id}", version=number, previous=entity.served_version)
        visibility.changed(served=True)
        found = model.get_entity(con, entity_id)
    assert found is not None
    return found


def set_archived(principal: Principal, entity_id: str, archived: bool) -> Entity:
    """Archive (hidden, no new installs, installers keep it) or unarchive. Owner or admin."""
    entity = owned_entity(principal, entity_id)
    state = "archived" if archived else "active"
    with state_store().write() as con:
        if entity.state != state:
            model.update_entity(con, entity_id, utcnow(), state=state)
            audit.record(con, "flea.archive" if archived else "flea.unarchive", f"flea:{entity_id}")
            visibility.changed(served=True)
        found = model.get_entity(con, entity_id)
    assert found is not None
    return found


def delete(principal: Principal, entity_id: str) -> None:
    """Hard delete (admins): rows, installs and files; installers stop being served it."""
    if not principal.is_admin:
        raise Forbidden("admin_required", "Only an administrator can delete an entry; archive it instead.")
    with state_store().write() as con:
        entity = model.get_entity(con, entity_id)
        if entity is None:
            raise NotFound("entity_not_found", f"There is no flea-market entry '{entity_id}'.")
        model.delete_entity(con, entity_id)
        audit.record(con, "flea.delete", f"flea:{entity_id}", name=entity.name, owner_id=entity.owner_id)
        visibility.changed(served=True)
    store.remove_entity(entity_id)


def install(principal: Principal, entity_id: str) -> tuple[Entity, bool]:
    """Add the entity to the caller's served marketplace (idempotent). Returns (entity, changed).

    Raises:
        NotFound (hidden); Conflict: 409 ``entity_archived``, ``entity_not_approved`` (owner included).
    """
    entity = visible_entity(principal, entity_id)
    with state_store().write() as con:
        current = model.get_entity(con, entity_id)
        if current is None:
            raise NotFound("entity_not_found", f"There is no flea-market entry '{entity_id}'.")
        if model.is_installed(con, entity_id, principal.user.id):
            return current, False
        if current.state == "archived":
            raise Conflict("entity_archived", f"'{entity.name}' is archived and takes no new installs.")
        if current.served_version is None:
            raise Conflict("entity_not_approved", f"'{entity.name}' has no approved version yet.")
        model.add_install(con, entity_id, principal.user.id, utcnow())
        audit.record(con, "flea.install", f"flea:{entity_id}")
        visibility.changed(served=True)
        found = model.get_entity(con, entity_id)
    assert found is not None
    return found, True


def uninstall(principal: Principal, entity_id: str) -> tuple[Entity, bool]:
    """Remove it from the caller's served marketplace (idempotent). Returns (entity, changed)."""
    entity = visible_entity(principal, entity_id)
    with state_store().write() as con:
        changed = model.remove_install(con, entity_id, principal.user.id)
        if changed:
            audit.record(con, "flea.uninstall", f"flea:{entity_id}")
            visibility.changed(served=True)
        found = model.get_entity(con, entity_id) or entity
    return found, changed
