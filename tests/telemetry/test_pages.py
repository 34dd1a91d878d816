"""Usage on the pages: Most Popular and the usage sorts on /marketplace, the chip and sparkline of
plugin and item pages (and their JSON twins), the Sessions section of /admin/users/<id> with its
downloads, and /admin/usage."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from agnes.telemetry.processor import process_sessions
from tests.conftest import bearer
from tests.telemetry.conftest import TRANSCRIPTS, recent, synced_usage_marketplace, upload

USED = {
    "8463c716-a2ea-4c14-9efa-87158ebd9f20": "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl",  # handgemacht:commit
    "ae4a77f8-aedd-4bc1-888f-c94edc91af04": "ae4a77f8-aedd-4bc1-888f-c94edc91af04.jsonl",  # elixir:hex-docs-search
    "491e126e-1e71-469c-ade2-fcc8af567c74": "subagent.jsonl",  # /handgemacht:create-beads
    "d6e0bada-1959-4eec-a9d2-0bfade768d8f": "tool_heavy.jsonl",  # /mcp
}


def _head(data: bytes, needle: bytes, after: int = 3) -> bytes:
    """The transcript up to a few lines after the first line holding ``needle`` (small uploads)."""
    lines = data.split(b"\n")
    first = next((i for i, line in enumerate(lines) if needle in line), len(lines))
    return b"\n".join(lines[: first + after + 1]) + b"\n"


@pytest.fixture
def used(app: Flask, client, auth, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A synced marketplace whose plugins two analysts used in the last days (processed)."""
    slug = synced_usage_marketplace(client, auth.token("admin@example.com", admin=True), tmp_path)
    ids = {}
    for email in ("analyst@example.com", "second@example.com"):
        token = auth.token(email)
        ids[email] = auth.user(email)
        for plugin in ("handgemacht", "elixir"):
            client.post(f"/api/marketplace/curated/{slug}/{plugin}/install", headers=bearer(token))
        for session_id, name in USED.items():
            data = recent(_head((TRANSCRIPTS / name).read_bytes(), b'"name":"Skill"'), days_ago=2)
            assert upload(client, token, session_id, data, gzipped=True).status_code == 201
    app.extensions["agnes_jobs"].wait_idle()
    process_sessions()
    return {"slug": slug, **ids}


def _soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.data[:500]
    return BeautifulSoup(response.data, "html.parser")


def test_marketplace_pages_show_usage(client, auth, used) -> None:  # type: ignore[no-untyped-def]
    auth.login("analyst@example.com")
    page = _soup(client.get("/marketplace"))
    popular = page.select("#most-popular li")
    # handgemacht: 2 users, 4 calls (commit + create-beads, twice); elixir: 2 users, 2 calls.
    assert [li["data-plugin"] for li in popular] == [f"{used['slug']}/handgemacht", f"{used['slug']}/elixir"]
    assert "2 active · 4 calls" in popular[0].get_text(" ", strip=True)
    assert "2 installed" in popular[0].get_text(" ", strip=True)
    card = page.select_one(f"#card-{used['slug']}-elixir .usage-chip")
    assert card is not None and "2 active · 2 calls" in card.get_text(" ", strip=True)
    assert [o["value"] for o in page.select("#mp-sort option")] == ["recent", "name", "used", "adopted"]
    assert _soup(client.get("/marketplace?q=elixir")).select_one("#most-popular") is None
    assert _soup(client.get("/marketplace?type=skill")).select_one("#most-popular") is None
    assert _soup(client.get("/marketplace?tab=my")).select_one("#most-popular") is None
    used_sort = _soup(client.get("/marketplace?sort=used"))
    assert [a["data-plugin"] for a in used_sort.select("#plugin-grid article")][:2] == [
        f"{used['slug']}/handgemacht",
        f"{used['slug']}/elixir",
    ]
    data = client.get("/api/marketplace/items").get_json()
    assert [p["id"] for p in data["most_popular"]] == [f"{used['slug']}/handgemacht", f"{used['slug']}/elixir"]
    assert {i["id"]: i["usage"]["users_30d"] for i in data["items"]}[f"{used['slug']}/elixir"] == 2

    # Plugin and item pages: chip, sparkline, facts, and the JSON twins.
    slug = used["slug"]
    page = _soup(client.get(f"/marketplace/curated/{slug}/handgemacht"))
    assert "2 active · 4 calls" in page.select_one("#usage-chip").get_text(" ", strip=True)
    spark = page.select_one("#usage-sparkline svg")
    assert spark is not None and spark.find("title").get_text().startswith("Uses of handgemacht")
    assert len(page.select("#usage-sparkline table td")) == 30
    assert "1 active day" in page.select_one("#usage-facts").get_text()
    api = client.get(f"/api/marketplace/curated/{slug}/handgemacht").get_json()
    assert api["usage"]["calls_30d"] == 4 and api["usage"]["active_days"] == 1 and api["usage"]["last_used_at"]
    item = _soup(client.get(f"/marketplace/curated/{slug}/handgemacht/skill/commit"))
    assert "2 active · 2 calls" in item.select_one("#usage-chip").get_text(" ", strip=True)
    command = client.get(f"/api/marketplace/curated/{slug}/handgemacht/command/create-beads").get_json()
    assert command["usage"]["calls_30d"] == 2


def test_admin_pages_show_sessions_downloads_and_usage(client, auth, used) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    user_id = used["analyst@example.com"]
    page = _soup(client.get(f"/admin/users/{user_id}"))
    rows = page.select("#sessions-table tbody tr[data-session]")
    assert {r["data-session"] for r in rows} == set(USED)
    assert page.select_one("#sessions-per-day svg title") is not None
    link = page.select_one(f"tr[data-session='{next(iter(USED))}'] a")["href"]
    one = client.get(link)
    assert one.status_code == 200 and one.data.startswith(b"{")
    one.close()
    assert client.get(f"/admin/users/{user_id}/sessions/..%2Fx.jsonl").status_code in (400, 404)
    assert client.get(f"/admin/users/{user_id}/sessions/notes.txt").status_code == 400
    assert client.get(f"/admin/users/{user_id}/sessions/{'0' * 8}.jsonl").status_code == 404
    assert client.get("/admin/users/nobody-here/sessions.zip").status_code == 404
    archive = client.get(page.select_one("#sessions-zip")["href"])
    assert archive.status_code == 200 and archive.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.data)) as z:
        assert sorted(z.namelist()) == sorted(f"{sid}.jsonl" for sid in USED)
        assert z.read(f"{next(iter(USED))}.jsonl").startswith(b"{")
        assert z.testzip() is None
    from agnes.models import audit as audit_model
    from agnes.state import state_store

    with state_store().read() as con:
        rows = con.execute(
            "SELECT action, params FROM audit_log WHERE action LIKE 'session.download%' ORDER BY timestamp"
        ).fetchall()
    assert [r[0] for r in rows] == ["session.download", "session.download_all"]
    assert '"count": 4' in rows[1][1].replace(":4", ": 4")
    assert audit_model is not None
    api = client.get(f"/api/admin/users/{user_id}").get_json()
    assert api["sections"]["sessions"]["total"] == 4

    # /admin/usage and its twin.
    page = _soup(client.get("/admin/usage"))
    assert page.select_one("#usage-kpis [data-kpi=active_users] .kpi-value").get_text() == "2"
    assert page.select_one("#events-chart svg title").get_text().startswith("Usage events per day")
    assert page.select_one("#events-chart table.chart-data") is not None
    items = {tr["data-item"] for tr in page.select("#top-items tr[data-item]")}
    assert {"handgemacht:commit", "elixir:hex-docs-search", "/handgemacht:create-beads", "/mcp"} <= items
    assert page.select_one("#tool-errors tr[data-tool='Bash']") is not None
    twin = client.get("/api/admin/usage").get_json()
    assert twin["kpis"]["active_users"] == 2
    assert {s["source"] for s in twin["events_by_source"]} >= {"builtin", "curated"}
    auth.login("analyst@example.com")
    assert client.get("/admin/usage").status_code == 403
