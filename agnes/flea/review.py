"""Review decisions of flea-market versions: the reviewer's verdict, administrators' decisions,
stuck reviews and the purge of blocked bundles.

Statuses: ``in_review`` → ``approved`` | ``blocked`` | ``review_error``. The reviewer decides
only a version still in review without an administrator's decision (a late verdict never
overrides an admin). With ``AGNES_FLEA_APPROVAL=admin`` a safe verdict is recorded and the
version stays in review for an administrator.

Administrators may approve a version in review, in review_error or blocked, and reject one in
review, in review_error or approved (rejecting the served version stops it at once: the newest
other approved version is served, or none). Anything else is 409 ``cannot_decide:<status>``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from duckdb import DuckDBPyConnection
from flask import current_app

from agnes import audit
from agnes.errors import AppError, Conflict, NotFound
from agnes.flea import reviewer, store, visibility
from agnes.models import flea as model
from agnes.models import utcnow
from agnes.models.flea import Version
from agnes.state import state_store

APPROVABLE = frozenset({"in_review", "review_error", "blocked"})
REJECTABLE = frozenset({"in_review", "review_error", "approved"})
RERUNNABLE = frozenset({"in_review", "review_error", "blocked"})
REASON_MIN, REASON_MAX = 4, 2000
# A review in progress this long with no live job becomes review_error.
STUCK_AFTER = timedelta(minutes=30)
# Blocked bundles' files are deleted this long after the decision.
BLOCKED_TTL = timedelta(days=30)
NO_REVIEWER = "no reviewer"


def _version(con: DuckDBPyConnection, version_id: str) -> Version:
    version = model.get_version(con, version_id)
    if version is None:
        raise NotFound("version_not_found", f"There is no flea-market version '{version_id}'.")
    return version


def _cannot(version: Version) -> Conflict:
    return Conflict(
        f"cannot_decide:{version.status}",
        f"Version {version.number} is {version.status.replace('_', ' ')}: it is not awaiting this decision.",
    )


def _served_after_removal(con: DuckDBPyConnection, entity_id: str, removed: int) -> int | None:
    approved = [
        v.number
        for v in model.list_versions(con, entity_id)
        if v.status == "approved" and v.number != removed and v.files_deleted_at is None
    ]
    return max(approved) if approved else None


def approve(version_id: str, actor_id: str) -> Version:
    """An administrator approves: the version is served (unless a newer approved one already is).

    Raises:
        NotFound; Conflict ``cannot_decide:<status>``; AppError 410 ``bundle_missing``.
    """
    with state_store().write() as con:
        version = _version(con, version_id)
        if version.status not in APPROVABLE:
            raise _cannot(version)
        if version.files_deleted_at is not None:
            raise AppError(410, "bundle_missing", "The files of this version were deleted.")
        now = utcnow()
        model.update_version(
            con, version_id, status="approved", decision="approved", decided_by=actor_id, decided_at=now, reason=None
        )
        entity = model.get_entity(con, version.entity_id)
        assert entity is not None
        if entity.served_version is None or entity.served_version < version.number:
            model.update_entity(con, entity.id, now, served_version=version.number)
        audit.record(con, "flea.approve", f"flea:{entity.id}", version=version.number, previous=version.status)
        visibility.changed(served=True)
        return _version(con, version_id)


def reject(version_id: str, actor_id: str, reason: Any) -> Version:
    """An administrator rejects with a reason the owner sees (4 to 2,000 characters).

    Raises:
        AppError: 422 ``invalid_reason`` (nothing changes); NotFound; Conflict ``cannot_decide:<status>``.
    """
    text = reason.strip() if isinstance(reason, str) else ""
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise AppError(
            422,
            "invalid_reason",
            f"Give a reason of {REASON_MIN} to {REASON_MAX:,} characters; the owner sees it.",
            field="reason",
        )
    with state_store().write() as con:
        version = _version(con, version_id)
        if version.status not in REJECTABLE:
            raise _cannot(version)
        now = utcnow()
        model.update_version(
            con, version_id, status="blocked", decision="rejected", decided_by=actor_id, decided_at=now, reason=text
        )
        entity = model.get_entity(con, version.entity_id)
        assert entity is not None
        if entity.served_version == version.number:
            model.update_entity(
                con, entity.id, now, served_version=_served_after_removal(con, entity.id, version.number)
            )
        audit.record(con, "flea.reject", f"flea:{entity.id}", version=version.number, previous=version.status)
        visibility.changed(served=True)
        return _version(con, version_id)


def prepare_rerun(version_id: str) -> Version:
    """Put a version back in review (the caller then starts the review job).

    Raises:
        NotFound; Conflict ``cannot_decide:<status>`` (approved, or decided by an admin);
        AppError 410 ``bundle_missing``.
    """
    with state_store().write() as con:
        version = _version(con, version_id)
        if version.status not in RERUNNABLE or version.decision is not None:
            raise _cannot(version)
        if version.files_deleted_at is not None:
            raise AppError(410, "bundle_missing", "The files of this version were deleted.")
        scan = [f for f in version.findings if f.get("source") == "scan"]
        model.update_version(
            con, version_id, status="in_review", note="", verdict=None, findings=scan, reviewed_at=utcnow()
        )
        audit.record(con, "flea.rerun", f"flea:{version.entity_id}", version=version.number)
        visibility.changed(served=False)
        return _version(con, version_id)


def run_review(version_id: str) -> dict[str, Any]:
    """Review one version (the job's body): ask the reviewer and record the verdict.

    Returns ``{"version_id", "status", "note"}``; ``skipped`` when the version was no longer in
    review or an administrator had decided it.
    """
    with state_store().read() as con:
        version = model.get_version(con, version_id)
    if version is None or version.status != "in_review" or version.decision is not None:
        return {"version_id": version_id, "skipped": True}
    try:
        verdict = reviewer.review(store.read_files(version.entity_id, version.number))
    except reviewer.NoReviewer:
        return record_outcome(version_id, "in_review", NO_REVIEWER, None)
    except reviewer.ReviewFailed as exc:
        return record_outcome(version_id, "review_error", str(exc), None)
    if verdict.decision == "block":
        return record_outcome(version_id, "blocked", verdict.summary or f"risk {verdict.risk}", verdict)
    if current_app.config["AGNES_FLEA_APPROVAL"] == "admin":
        return record_outcome(
            version_id, "in_review", "safe according to the reviewer; awaiting an administrator", verdict
        )
    return record_outcome(version_id, "approved", verdict.summary, verdict)


def record_outcome(version_id: str, status: str, note: str, verdict: reviewer.Verdict | None) -> dict[str, Any]:
    """Record a review outcome unless an administrator decided meanwhile (then nothing changes)."""
    with state_store().write() as con:
        version = model.get_version(con, version_id)
        if version is None:
            return {"version_id": version_id, "skipped": True}
        if version.decision is not None or version.status != "in_review":
            audit.record(con, "flea.review_skipped", f"flea:{version.entity_id}", version=version.number, status=status)
            return {"version_id": version_id, "skipped": True, "status": version.status}
        now = utcnow()
        values: dict[str, Any] = {"status": status, "note": note[:1000], "reviewed_at": now}
        if verdict is not None:
            values["verdict"] = verdict.to_dict()
            values["findings"] = [f for f in version.findings if f.get("source") == "scan"] + verdict.findings
        model.update_version(con, version_id, **values)
        if status == "approved":
            entity = model.get_entity(con, version.entity_id)
            assert entity is not None
            if entity.served_version is None or entity.served_version < version.number:
                model.update_entity(con, entity.id, now, served_version=version.number)
        visibility.changed(served=status == "approved")
        audit.record(con, "flea.review", f"flea:{version.entity_id}", version=version.number, status=status, note=note)
    return {"version_id": version_id, "status": status, "note": note}


def stuck_reviews() -> list[Version]:
    """Versions in review for :data:`STUCK_AFTER` with no administrator decision (the job layer
    keeps those whose review job is still alive); those waiting for a reviewer key are left."""
    with state_store().read() as con:
        return [v for v in model.stuck_reviews(con, utcnow() - STUCK_AFTER) if v.note != NO_REVIEWER]


def mark_stuck(version_id: str) -> bool:
    """Move a stuck review to ``review_error``; False when it left review meanwhile."""
    outcome = record_outcome(version_id, "review_error", "the review did not finish within 30 minutes", None)
    return outcome.get("status") == "review_error" and not outcome.get("skipped")


def purge_blocked() -> int:
    """Delete the files of versions blocked for :data:`BLOCKED_TTL`; returns how many."""
    with state_store().read() as con:
        due = model.blocked_with_files(con, utcnow() - BLOCKED_TTL)
    for version in due:
        with state_store().write() as con:
            model.update_version(con, version.id, files_deleted_at=utcnow())
            audit.record(con, "flea.purge_blocked", f"flea:{version.entity_id}", version=version.number)
            visibility.changed(served=False)
        store.remove_version(version.entity_id, version.number)
    return len(due)
