"""The Syncs tab of /admin/activity: tables (last sync, status, rows, duration, next due, last
error) and marketplaces (last sync, plugins, last change) with Sync now and live job status; its
JSON twin and ``agnes admin activity sync``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bs4 import BeautifulSoup
from flask import Flask

from agnes.models import new_id, utcnow
from agnes.state import state_store
from tests.activity.conftest import seed_marketplace
from tests.conftest import LiveServer, bearer, cli_env, csrf_token, run_cli
from tests.data.conftest import (
    folder,  # noqa: F401  (the table fixture files)
    penguins_fields,
    register,
)


def _history(slug: str, *, added: list[str], changed: list[dict], minutes_ago: int) -> None:
    at = utcnow() - timedelta(minutes=minutes_ago)
    with state_store().write() as con:
        con.execute(
            "INSERT INTO marketplace_sync_history (id, marketplace_id, started_at, finished_at, status, plugin_count,"
            " added, removed, changed) VALUES (?, ?, ?, ?, 'ok', 3, ?, '[]', ?)",
            [new_id(), slug, at, at, json.dumps(added), json.dumps(changed)],
        )


def test_syncs_show_tables_and_marketplaces(app: Flask, client, auth, folder: Path) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    register(penguins_fields(folder, schedule="every 2h"))
    register({"name": "broken", "source_type": "csv", "source_spec": {"location": str(folder / "missing.csv")}})
    admin = bearer(auth.token("admin@example.com", admin=True))
    for table in ("penguins", "broken"):
        client.post("/api/sync/trigger", json={"tables": [table]}, headers=admin)
    app.extensions["agnes_jobs"].wait_idle()
    seed_marketplace("acme")
    _history("acme", added=["sql"], changed=[], minutes_ago=60)
    _history("acme", added=[], changed=[{"name": "docs", "from": "1.0", "to": "1.1"}], minutes_ago=10)
    _history("acme", added=[], changed=[], minutes_ago=1)  # a sync that changed nothing

    found = client.get("/api/admin/activity/sync", headers=admin).get_json()
    tables = {t["id"]: t for t in found["tables"]}
    assert tables["penguins"]["status"] == "ok" and tables["penguins"]["rows"] == 344
    assert tables["penguins"]["duration_ms"] > 0 and tables["penguins"]["next_due"] is not None
    assert tables["broken"]["status"] == "failed" and tables["broken"]["error"]
    assert tables["broken"]["next_due"] is None  # on demand only
    (acme,) = found["marketplaces"]
    assert acme["changed"] == [{"name": "docs", "from": "1.0", "to": "1.1"}] and acme["added"] == []

    auth.login("admin@example.com", admin=True)
    # The sync's row on the timeline opens its details: the job's status page and the table's page.
    rows = client.get("/api/admin/activity?action=job.run_sync_table&resource=job:sync-table:penguins").get_json()
    links = [link["url"] for link in rows["rows"][0]["links"]]
    assert links == ["/jobs/sync-table:penguins", "/admin/tables/penguins"]
    assert [client.get(url).status_code for url in links] == [200, 200]
    page = BeautifulSoup(client.get("/admin/activity/syncs").data, "html.parser")
    assert page.select_one('#activity-tabs a[aria-current="page"]').get_text() == "Syncs"
    assert page.select_one('#table-syncs tr[data-table="broken"]')["data-status"] == "failed"
    assert "docs 1.0→1.1" in page.select_one('#marketplace-syncs tr[data-marketplace="acme"]').get_text()
    fragment = BeautifulSoup(client.get("/admin/activity/syncs", headers={"HX-Request": "true"}).data, "html.parser")
    assert fragment.select_one("html") is None and fragment.select_one("#activity-syncs") is not None
    # Sync now answers the live job status in the row.
    form = page.select_one("#sync-table-penguins form")
    started = client.post(
        form["hx-post"],
        data={"csrf_token": csrf_token(client, "/admin/activity/syncs")},
        headers={"HX-Request": "true"},
    )
    status = BeautifulSoup(started.data, "html.parser").select_one(".job-status")
    assert status["data-state"] in ("queued", "running", "finished")
    app.extensions["agnes_jobs"].wait_idle()


def test_syncs_from_the_cli(app: Flask, live_server: LiveServer, auth, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    register(penguins_fields(folder))
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path)
    table = run_cli(["admin", "activity", "sync"], env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:2] == ["TABLE", "LAST"] and "penguins" in table.stdout
    as_json = json.loads(run_cli(["admin", "activity", "sync", "--json"], env).stdout)
    assert [t["id"] for t in as_json["tables"]] == ["penguins"] and as_json["tables"][0]["last_attempt"] is None
