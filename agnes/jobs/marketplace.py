"""Marketplace jobs: sync one curated marketplace, sync them all (nightly), prune served caches."""

from __future__ import annotations

from typing import Any


def run_sync_marketplace(marketplace_id: str) -> dict[str, Any]:
    """Fetch and re-read one marketplace (job id ``sync-marketplace:<id>``, one in flight).

    Idempotent: a sync of an unchanged repository rewrites the same rows. Returns what
    changed (``added``, ``removed``, ``changed``, ``unavailable``). Raises SyncError on
    failure, after recording it; the previous state keeps being served.
    """
    from agnes.marketplace.packager import prune_caches
    from agnes.marketplace.sync import sync_marketplace

    result = sync_marketplace(marketplace_id).to_dict()
    prune_caches()
    return result


def run_sync_all_marketplaces() -> dict[str, Any]:
    """Sync every registered marketplace (nightly at 03:00 UTC); one failure does not stop the rest."""
    from agnes.marketplace.packager import prune_caches
    from agnes.marketplace.sync import sync_all

    result = sync_all()
    prune_caches()
    return result


def run_prune_marketplace_caches() -> dict[str, int]:
    """Delete served ZIP/git artifacts whose ETag nobody resolves to any more."""
    from agnes.marketplace.packager import prune_caches

    return prune_caches()
