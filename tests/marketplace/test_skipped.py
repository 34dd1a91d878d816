"""Manifest entries a sync skips are recorded with their reason (issue 15 item 2): in the sync result,
the history, the marketplace page, the API and the CLI, logged once; a manifest whose every entry is
skipped fails the sync and keeps the previous plugins.

Before the fix a marketplace.json of 14 entries became "12 plugins" with no trace of the other two.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bs4 import BeautifulSoup

from tests.conftest import cli_env, run_cli
from tests.marketplace.conftest import commit_all, register, small_marketplace, sync_now, write_manifest

BAD_ENTRIES = [
    {"name": "../../etc/passwd", "source": "./plugins/alpha"},
    {"name": "<img src=x onerror=alert(1)>", "source": "./plugins/alpha"},
]


def _with_bad_entries(repo: Path) -> Path:
    small_marketplace(repo)
    entries = [
        {"name": "alpha", "source": "./plugins/alpha", "version": "1.0.0"},
        {"name": "beta", "source": "./plugins/beta", "version": "1.0.0"},
        *BAD_ENTRIES,
    ]
    write_manifest(repo, entries)
    commit_all(repo, "two bad entries")
    return repo


def test_two_bad_entries_are_skipped_with_their_reasons(client, auth, admin_headers, tmp_path, caplog):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", _with_bad_entries(tmp_path / "repo"))
    with caplog.at_level(logging.WARNING, logger="agnes.marketplace.sync"):
        result = sync_now("acme")
    assert result["plugin_count"] == 2
    assert [s["name"] for s in result["skipped"]] == [e["name"] for e in BAD_ENTRIES]
    assert all("invalid plugin name" in s["reason"] for s in result["skipped"])
    assert result["summary"] == "2 plugins: 2 added, 2 entries skipped"
    skipped_logs = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped_logs) == 1 and "../../etc/passwd" in skipped_logs[0].getMessage()

    # The API: the marketplace and its history.
    body = client.get("/api/marketplaces/acme", headers=admin_headers).get_json()
    assert [s["name"] for s in body["skipped"]] == [e["name"] for e in BAD_ENTRIES]
    assert body["last_result"] == "2 plugins: 2 added, 2 entries skipped"
    history = client.get("/api/marketplaces/acme/history", headers=admin_headers).get_json()["history"]
    assert len(history[0]["skipped"]) == 2

    # The page says "2 entries skipped" and lists them, escaped.
    auth.login("admin@example.com", admin=True)
    page = client.get("/admin/marketplaces/acme")
    soup = BeautifulSoup(page.data, "html.parser")
    skipped = soup.select_one("#marketplace-skipped")
    assert skipped is not None and "2 entries skipped" in skipped.get_text(" ", strip=True)
    assert [li["data-entry"] for li in skipped.select("li")] == [e["name"] for e in BAD_ENTRIES]
    assert "<img src=x" not in page.get_data(as_text=True)
    assert soup.select("#sync-history .history-skipped span")[0].get_text() == "../../etc/passwd"


def test_missing_source_and_non_object_entries_are_skipped(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    repo = small_marketplace(tmp_path / "repo")
    write_manifest(
        repo,
        [
            {"name": "alpha", "source": "./plugins/alpha"},
            {"name": "no-source"},
            "just a string",
            {"name": "alpha", "source": "./plugins/beta"},
        ],
    )
    commit_all(repo)
    register(client, admin_headers, "acme", repo)
    result = sync_now("acme")
    assert result["plugin_count"] == 1
    reasons = {s["name"]: s["reason"] for s in result["skipped"]}
    assert reasons == {
        "no-source": "the entry has no source",
        "#2": "the entry is not an object",
        "alpha": "listed twice; the first entry is used",
    }


def test_every_entry_bad_fails_and_keeps_the_previous_plugins(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    repo = small_marketplace(tmp_path / "repo")
    register(client, admin_headers, "acme", repo)
    sync_now("acme")
    write_manifest(repo, BAD_ENTRIES)
    commit_all(repo, "only bad entries")
    from agnes.marketplace.sync import SyncError

    try:
        sync_now("acme")
    except SyncError as exc:
        assert "every entry of marketplace.json was skipped (2)" in str(exc)
    else:
        raise AssertionError("a sync with every entry skipped must fail")
    body = client.get("/api/marketplaces/acme", headers=admin_headers).get_json()
    assert sorted(p["name"] for p in body["plugins"]) == ["alpha", "beta"]
    assert "every entry" in body["last_error"]
    assert body["history"][0]["status"] == "failed" and len(body["history"][0]["skipped"]) == 2
    assert body["history"][1]["status"] == "ok"


def test_cli_show_lists_the_skipped_entries(live_server, client, auth, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", _with_bad_entries(tmp_path / "repo"))
    sync_now("acme")
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path / "home")
    out = run_cli(["admin", "marketplace", "show", "acme"], env)
    assert out.returncode == 0, out.stderr
    assert "2 plugins: 2 added, 2 entries skipped" in out.stdout
    assert "../../etc/passwd: invalid plugin name" in out.stdout
    synced = run_cli(["admin", "marketplace", "sync", "acme", "--wait"], env)
    assert synced.returncode == 0, synced.stderr
    assert "2 entries skipped" in synced.stdout
