"""Page data of ``/admin/marketplaces`` and ``/admin/marketplaces/<id>`` (and their JSON twins
``/api/marketplaces`` and ``/api/marketplaces/<id>``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app

from agnes.jobs import JobStatus
from agnes.jobs.marketplace import SYNC_ALL_JOB_ID, current_sync_job, sync_job_id
from agnes.marketplace import curated, system
from agnes.models.marketplace_history import SyncRecord
from agnes.models.marketplaces import Marketplace, Plugin
from agnes.models.system_plugins import SystemMark
from agnes.plugin.contents import plugin_contents


@dataclass(frozen=True)
class MarketplaceRow:
    marketplace: Marketplace
    has_token: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.marketplace.to_dict(), "has_token": self.has_token}


# The event the marketplace list refreshes on: the end of "Sync all now".
LIST_REFRESH_ON = SYNC_ALL_JOB_ID


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
    # Plugin name → (hooks, MCP servers) it installs (read from its files, cached per content hash).
    integrations: dict[str, tuple[int, int]]

    @property
    def refresh_on(self) -> str:
        """The event the page's fragments refresh on: the end of this marketplace's sync job."""
        return sync_job_id(self.marketplace.id)

    @property
    def last_sync(self) -> SyncRecord | None:
        """The newest sync attempt (ok, failed or interrupted), None before the first."""
        return self.history[0] if self.history else None

    @property
    def skipped(self) -> list[dict[str, str]]:
        """Manifest entries the newest sync skipped, ``[{"name", "reason"}]``."""
        return self.last_sync.skipped if self.last_sync else []

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.marketplace.to_dict(),
            "has_token": self.has_token,
            "plugins": [
                {
                    **p.to_dict(),
                    "hooks": self.integrations.get(p.name, (0, 0))[0],
                    "mcp_servers": self.integrations.get(p.name, (0, 0))[1],
                }
                for p in self.plugins
            ],
            "history": [h.to_dict() for h in self.history],
            "job": self.job.to_dict() if self.job else None,
            "last_result": self.last_sync.summary if self.last_sync else None,
            "skipped": self.skipped,
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
        _integrations(detail.plugins),
    )


def _integrations(plugins: list[Plugin]) -> dict[str, tuple[int, int]]:
    data_dir = Path(current_app.config["AGNES_DATA_DIR"])
    counts = {}
    for p in plugins:
        if p.available and p.content_dir:
            contents = plugin_contents(data_dir / p.content_dir, p.content_hash, p.raw)
            counts[p.name] = (len(contents.hooks), len(contents.mcp_servers))
    return counts
