"""Page data of ``/admin/marketplaces`` and ``/admin/marketplaces/<id>`` (and their JSON twins
``/api/marketplaces`` and ``/api/marketplaces/<id>``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agnes.jobs import JobStatus
from agnes.jobs.marketplace import current_sync_job
from agnes.marketplace import curated, system
from agnes.models.marketplace_history import SyncRecord
from agnes.models.marketplaces import Marketplace, Plugin
from agnes.models.system_plugins import SystemMark


@dataclass(frozen=True)
class MarketplaceRow:
    marketplace: Marketplace
    has_token: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.marketplace.to_dict(), "has_token": self.has_token}


def marketplaces_page() -> list[MarketplaceRow]:
    """Every registered marketplace with its sync state and whether a token is set."""
    return [MarketplaceRow(m, curated.has_token(m)) for m in curated.list_marketplaces()]


@dataclass(frozen=True)
class MarketplacePage:
    """One marketplace: settings, token, plugins, sync history and the sync job (if known)."""

    marketplace: Marketplace
    has_token: bool
    plugins: list[Plugin]
    history: list[SyncRecord]
    job: JobStatus | None
    missing_system: list[SystemMark]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.marketplace.to_dict(),
            "has_token": self.has_token,
            "plugins": [p.to_dict() for p in self.plugins],
            "history": [h.to_dict() for h in self.history],
            "job": self.job.to_dict() if self.job else None,
            "missing_system_plugins": [
                {"name": m.plugin_name, "missing_since": m.missing_since.isoformat() if m.missing_since else None}
                for m in self.missing_system
            ],
        }


def marketplace_page(marketplace_id: str) -> MarketplacePage:
    """Raises NotFound (``marketplace_not_found``)."""
    detail = curated.marketplace_detail(marketplace_id)
    return MarketplacePage(
        detail.marketplace,
        curated.has_token(detail.marketplace),
        detail.plugins,
        detail.history,
        current_sync_job(marketplace_id),
        system.missing_marks(marketplace_id),
    )
