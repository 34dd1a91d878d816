"""Claude Code fleet fixtures: a synced marketplace with a system plugin, an admin token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import bearer
from tests.marketplace.conftest import register, small_marketplace, sync_now


def synced_marketplace(
    client: Any, admin_token: str, repo: Path, *, slug: str = "acme", version: str = "1.0.0"
) -> None:
    """Register (first time) and sync a marketplace with plugins ``alpha`` and ``beta`` at ``version``."""
    small_marketplace(repo, version=version)
    if not (repo / ".registered").exists():
        register(client, bearer(admin_token), slug, repo)
        (repo / ".registered").touch()
    sync_now(slug)


@pytest.fixture
def admin_token(auth) -> str:  # type: ignore[no-untyped-def]
    return auth.token("admin@example.com", admin=True)


@pytest.fixture
def fleet(client, admin_token, tmp_path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """``acme`` synced with ``alpha`` (marked system) and ``beta``."""
    from agnes.marketplace import system

    repo = tmp_path / "acme-repo"
    synced_marketplace(client, admin_token, repo)
    system.set_system("acme", "alpha", True, actor_id=None)
    return {"repo": repo, "admin_token": admin_token}
