"""Marketplace jobs: sync one curated marketplace, sync them all (nightly), prune served caches.

Starting a sync lives here too (one in flight per marketplace), so views and the CLI API start
jobs through this module and :mod:`agnes.marketplace` never imports :mod:`agnes.jobs`.
"""

from __future__ import annotations

from typing import Any

from agnes.jobs import JobStatus, enqueue, lookup_job, require_queue, set_progress
from agnes.jobs.recovery import INTERRUPTED_MESSAGE, on_interrupted
from agnes.marketplace import curated
from agnes.marketplace.packager import prune_caches
from agnes.marketplace.sync import record_interrupted, sync_all, sync_marketplace
from agnes.models.marketplaces import Marketplace

# One "sync everything" in flight at a time.
SYNC_ALL_JOB_ID = "sync-all-marketplaces"


def sync_job_id(marketplace_id: str) -> str:
    """``sync-marketplace:<slug>``: one sync in flight per marketplace."""
    return f"sync-marketplace:{marketplace_id}"


def start_sync(marketplace_id: str, *, owner_id: str | None) -> JobStatus:
    """Queue a sync (or return the one in flight). Raises NotFound (``marketplace_not_found``)."""
    curated.get_marketplace(marketplace_id)
    return enqueue(
        run_sync_marketplace,
        marketplace_id,
        job_id=sync_job_id(marketplace_id),
        description=f"Sync marketplace {marketplace_id}",
        owner_id=owner_id,
    )


def register_marketplace(
    fields: dict[str, Any], *, sync: bool, actor_id: str | None, actor_email: str = "", actor_name: str = ""
) -> tuple[Marketplace, JobStatus | None]:
    """Register a marketplace and (``sync``) start its first sync.

    The queue is asked first, so a marketplace is never left registered with a first sync that
    could not be queued. Raises what :func:`curated.create_marketplace` raises, and
    QueueUnavailable (nothing registered).
    """
    if sync:
        require_queue()
    mp = curated.create_marketplace(fields, actor_id=actor_id, actor_email=actor_email, actor_name=actor_name)
    return mp, start_sync(mp.id, owner_id=actor_id) if sync else None


def start_sync_all(*, owner_id: str | None) -> JobStatus:
    """Queue a sync of every marketplace (or return the one in flight)."""
    return enqueue(
        run_sync_all_marketplaces, job_id=SYNC_ALL_JOB_ID, description="Sync all marketplaces", owner_id=owner_id
    )


def current_sync_job(marketplace_id: str) -> JobStatus | None:
    """The latest sync job of a marketplace, if the job backend still knows it (``unreachable`` when Redis is down)."""
    return lookup_job(sync_job_id(marketplace_id))


def run_sync_marketplace(marketplace_id: str) -> dict[str, Any]:
    """Fetch and re-read one marketplace (job id ``sync-marketplace:<id>``, one in flight).

    Idempotent: a sync of an unchanged repository rewrites the same rows. Returns what
    changed (``added``, ``removed``, ``changed``, ``unavailable``). Raises SyncError on
    failure, after recording it; the previous state keeps being served.
    """
    result = sync_marketplace(marketplace_id, progress=set_progress).to_dict()
    prune_caches()
    return result


@on_interrupted(run_sync_marketplace)
def _sync_interrupted(marketplace_id: str) -> None:
    """The worker died mid-sync: staging folders removed, ``interrupted`` in the sync history."""
    record_interrupted(marketplace_id, INTERRUPTED_MESSAGE)


def run_sync_all_marketplaces() -> dict[str, Any]:
    """Sync every registered marketplace (nightly at 03:00 UTC); one failure does not stop the rest."""
    result = sync_all(progress=set_progress)
    prune_caches()
    return result


def run_prune_marketplace_caches() -> dict[str, int]:
    """Delete served ZIP/git artifacts whose ETag nobody resolves to any more."""
    return prune_caches()
