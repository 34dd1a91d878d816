"""One place decides access to a resource: every plugin page, JSON twin and table download asks
the resource type's check in ``agnes.access`` (issue 8: a patched check is seen by each)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from agnes import access, people
from agnes.access import RESOURCE_TYPES, ResourceType
from agnes.data.registration import register_table
from agnes.data.sync import sync_table
from agnes.marketplace import curated
from agnes.models import marketplaces, utcnow
from agnes.models.marketplaces import PluginRecord
from agnes.state import state_store
from tests.conftest import bearer

PLUGIN = "acme/tool"


@pytest.fixture
def world(app: Flask, auth, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A plugin with one skill (granted to no one) and a synced table (granted to no one)."""
    plugin_dir = Path(app.config["AGNES_DATA_DIR"]) / "marketplaces" / "acme" / "checkouts" / "c1" / "tool"
    (plugin_dir / "skills" / "hello").mkdir(parents=True)
    (plugin_dir / "skills" / "hello" / "SKILL.md").write_text("---\nname: hello\ndescription: Says hello.\n---\nHi.\n")
    curated.create_marketplace(
        {"slug": "acme", "name": "Acme", "url": "https://git.example.com/acme.git", "curator_email": "c@example.com"},
        actor_id=None,
    )
    record = PluginRecord(
        name="tool",
        manifest_name="tool",
        source_kind="path",
        source_spec="./tool",
        raw={"name": "tool", "source": "./tool"},
        skill_count=1,
        content_dir=str(plugin_dir.relative_to(app.config["AGNES_DATA_DIR"])),
        content_hash="h",
    )
    with state_store().write() as con:
        marketplaces.apply_sync(
            con, "acme", commit_sha="0" * 40, checkout_dir="x", records=[record], started_at=utcnow()
        )
    csv = tmp_path / "files" / "numbers.csv"  # the test app's AGNES_DATA_SOURCE_DIRS
    csv.parent.mkdir(exist_ok=True)
    csv.write_text("n\n1\n2\n")
    register_table({"name": "numbers", "source_type": "csv", "source_spec": {"location": str(csv)}}, owner_id=None)
    sync_table("numbers")
    return {"token": auth.token("analyst@example.com")}


def _patch(monkeypatch, resource_type: ResourceType, answer: bool) -> list[str]:  # type: ignore[no-untyped-def]
    """Replace the type's check with one that records each id it is asked about."""
    asked: list[str] = []

    def check(principal: access.Principal, resource_id: str) -> bool:
        asked.append(resource_id)
        return answer

    monkeypatch.setitem(RESOURCE_TYPES, resource_type, replace(RESOURCE_TYPES[resource_type], is_granted=check))
    return asked


PLUGIN_ROUTES = (
    "/marketplace/curated/acme/tool",
    "/api/marketplace/curated/acme/tool",
    "/marketplace/curated/acme/tool/skill/hello",
    "/api/marketplace/curated/acme/tool/skill/hello",
)


@pytest.mark.parametrize("path", PLUGIN_ROUTES)
def test_plugin_pages_and_json_twins_ask_the_plugin_check(client, world, monkeypatch, path: str) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(world["token"])
    asked = _patch(monkeypatch, ResourceType.MARKETPLACE_PLUGIN, False)
    assert client.get(path, headers=headers).status_code == 403
    assert asked and set(asked) == {PLUGIN}
    asked = _patch(monkeypatch, ResourceType.MARKETPLACE_PLUGIN, True)  # no grant exists, the check says yes
    assert client.get(path, headers=headers).status_code == 200
    assert PLUGIN in asked


def test_table_download_asks_the_table_check(client, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(world["token"])
    asked = _patch(monkeypatch, ResourceType.TABLE, True)  # no grant exists, the check says yes
    download = client.get("/api/data/numbers/download", headers=headers, buffered=True)
    download.close()
    assert download.status_code == 200 and download.data[:4] == b"PAR1"
    assert asked == ["numbers"]
    assert "numbers" in client.get("/api/sync/manifest", headers=headers).get_json()["tables"]
    _patch(monkeypatch, ResourceType.TABLE, False)
    people.create_grant("everyone", "table", "numbers", actor_id=None)  # a real grant, the check says no
    assert client.get("/api/data/numbers/download", headers=headers).status_code == 403
    assert client.get("/api/sync/manifest", headers=headers).get_json()["tables"] == {}


def test_admins_pass_without_asking_and_missing_plugins_are_404(client, world, auth, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    asked = _patch(monkeypatch, ResourceType.MARKETPLACE_PLUGIN, False)
    admin = bearer(auth.token("admin@example.com", admin=True))
    assert client.get("/api/marketplace/curated/acme/tool", headers=admin).status_code == 200
    assert client.get("/api/marketplace/curated/acme/nope", headers=bearer(world["token"])).status_code == 404
    assert client.get("/api/marketplace/curated/Bad Slug/x", headers=bearer(world["token"])).status_code == 404
    assert "acme/nope" in asked
