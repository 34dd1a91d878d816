"""JSON API of the data area: registry, trigger, manifest, downloads (ETag, Range), metrics."""

from __future__ import annotations

import hashlib

import pytest

from agnes.state import state_store
from tests.conftest import bearer
from tests.data.conftest import penguins_fields, register


def wait_jobs(app) -> None:  # type: ignore[no-untyped-def]
    app.extensions["agnes_jobs"].wait_idle()


@pytest.fixture
def synced(app, client, auth, folder):  # type: ignore[no-untyped-def]
    """penguins registered and synced through the API; returns the admin token."""
    admin = auth.token("admin@example.com", admin=True)
    created = client.post("/api/admin/register-table", json=penguins_fields(folder), headers=bearer(admin))
    assert created.status_code == 201, created.json
    triggered = client.post("/api/sync/trigger", json={"tables": ["penguins"]}, headers=bearer(admin))
    assert triggered.status_code == 202
    assert [j["id"] for j in triggered.json["jobs"]] == ["sync-table:penguins"]
    wait_jobs(app)
    return admin


def fetch(client, path: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    """GET and close the response (file bodies hold the parquet open until closed)."""
    response = client.get(path, headers=headers)
    response.get_data()
    response.close()
    return response


def audit_actions() -> list[tuple[str, str]]:
    with state_store().read() as con:
        rows = con.execute('SELECT action, resource, "timestamp" FROM audit_log ORDER BY 3').fetchall()
    return [(a, r) for a, r, _ in rows]


def test_registry_crud_and_validation(client, auth, folder):
    admin = bearer(auth.token("admin@example.com", admin=True))
    analyst = bearer(auth.token("analyst@example.com"))
    assert client.post("/api/admin/register-table", json=penguins_fields(folder), headers=analyst).status_code == 403
    created = client.post(
        "/api/admin/register-table", json=penguins_fields(folder, schedule="daily 3:00"), headers=admin
    )
    assert created.status_code == 201
    assert created.json["id"] == "penguins" and created.json["schedule"] == "daily 03:00"
    again = client.post("/api/admin/register-table", json=penguins_fields(folder), headers=admin)
    assert again.status_code == 409 and again.json["error"] == "table_exists"
    bad = client.post(
        "/api/admin/register-table",
        json={"name": "x", "source_type": "csv", "source_spec": {"location": str(folder / "a.csv"), "header": "maybe"}},
        headers=admin,
    )
    assert bad.status_code == 400 and bad.json["field"] == "spec.header"
    updated = client.put(
        "/api/admin/registry/penguins", json={"schedule": "0 */6 * * *", "description": "Birds"}, headers=admin
    )
    assert updated.status_code == 200 and updated.json["schedule"] == "0 */6 * * *"
    assert updated.json["source_spec"]["null_strings"] == ["NA"]
    listed = client.get("/api/admin/registry", headers=admin).json["tables"]
    assert [(t["id"], t["description"]) for t in listed] == [("penguins", "Birds")]
    assert client.get("/api/admin/registry/nope", headers=admin).status_code == 404
    types = {c["type"]: c["available"] for c in client.get("/api/admin/connectors", headers=admin).json["connectors"]}
    assert types["keboola"] is False and types["bigquery"] is False and types["postgres"] is True
    assert client.delete("/api/admin/registry/penguins", headers=admin).status_code == 204
    assert client.get("/api/admin/registry", headers=admin).json["tables"] == []
    assert ("table.register", "table:penguins") in audit_actions()


def test_manifest_and_download_need_a_grant(app, client, auth, synced, folder):
    from agnes import people

    analyst = bearer(auth.token("analyst@example.com"))
    assert client.get("/api/sync/manifest", headers=analyst).json["tables"] == {}
    denied = fetch(client, "/api/data/penguins/download", headers=analyst)
    assert denied.status_code == 403 and denied.json["error"] == "access_denied"
    people.create_grant("everyone", "table", "penguins", actor_id=None)
    fetched = client.get("/api/sync/manifest", headers=analyst)
    fetched.close()  # WSGI servers close the body after sending; the audit row is written then
    entry = fetched.json["tables"]["penguins"]
    assert entry["rows"] == 344 and entry["query_mode"] == "local" and entry["source_type"] == "csv"
    download = fetch(client, "/api/data/penguins/download", headers=analyst)
    assert download.status_code == 200
    assert hashlib.md5(download.data).hexdigest() == entry["hash"] == download.headers["ETag"].strip('"')
    assert download.headers["X-Content-MD5"] == entry["hash"]
    assert hashlib.sha256(download.data).hexdigest() == entry["sha256"] == download.headers["X-Content-SHA256"]
    assert len(entry["schema"]) == 16 and int(entry["schema"], 16) >= 0
    assert int(download.headers["Content-Length"]) == entry["size_bytes"] == len(download.data)
    assert download.data[:4] == b"PAR1"
    assert client.get("/api/sync/manifest").status_code == 401
    assert app.extensions["agnes_data_audit"].flush() >= 2  # batched: written within FLUSH_SECONDS
    actions = audit_actions()
    assert ("manifest.fetch", "manifest") in actions and ("data.download", "table:penguins") in actions


def test_download_etag_and_ranges(client, auth, synced):
    admin = bearer(synced)
    full = fetch(client, "/api/data/penguins/download", headers=admin)
    etag = full.headers["ETag"]
    assert fetch(client, "/api/data/penguins/download", headers={**admin, "If-None-Match": etag}).status_code == 304
    part = fetch(client, "/api/data/penguins/download", headers={**admin, "Range": "bytes=100-", "If-Range": etag})
    assert part.status_code == 206 and part.data == full.data[100:]
    assert part.headers["Content-Range"] == f"bytes 100-{len(full.data) - 1}/{len(full.data)}"
    middle = fetch(client, "/api/data/penguins/download", headers={**admin, "Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.data == full.data[10:20]
    suffix = fetch(client, "/api/data/penguins/download", headers={**admin, "Range": "bytes=-8"})
    assert suffix.data == full.data[-8:]
    stale = fetch(client, "/api/data/penguins/download", headers={**admin, "Range": "bytes=100-", "If-Range": '"old"'})
    assert stale.status_code == 200 and stale.data == full.data
    assert (
        fetch(client, "/api/data/penguins/download", headers={**admin, "Range": f"bytes={len(full.data)}-"}).status_code
        == 416
    )
    assert fetch(client, "/api/data/penguins/download", headers={**admin, "Range": "bytes=0-1,5-6"}).status_code == 416


@pytest.mark.parametrize(
    "path",
    [
        "/api/data/..%2F..%2Fstate%2Fsystem.duckdb/download",
        "/api/data/%2e%2e/download",
        "/api/data/../../state/system.duckdb/download",
        "/api/data/penguins.parquet/download",
        "/api/data/PENGUINS/download",
        "/api/data/penguins%00/download",
        "/api/data/penguins%2F..%2F..%2Fextract.duckdb/download",
        "/api/data/~root/download",
        "/api/data/%252e%252e/download",
    ],
)
def test_path_tricks_in_table_ids_never_serve_a_file(client, synced, path):
    response = fetch(client, path, headers=bearer(synced))
    assert response.status_code in (400, 404)
    assert b"PAR1" not in response.data[:4] and b"DUCK" not in response.data[:16]


def test_remote_tables_are_listed_but_not_downloadable(app, client, synced):
    admin = bearer(synced)
    created = client.post(
        "/api/admin/register-table",
        headers=admin,
        json={
            "name": "heavy",
            "source_type": "sql",
            "query_mode": "remote",
            "source_spec": {"query": "SELECT * FROM penguins WHERE body_mass_g > 5000"},
        },
    )
    assert created.status_code == 201
    client.post("/api/sync/trigger", json=["heavy"], headers=admin)
    wait_jobs(app)
    manifest = client.get("/api/sync/manifest", headers=admin).json["tables"]
    assert manifest["heavy"]["query_mode"] == "remote" and manifest["heavy"]["hash"] == ""
    refused = client.get("/api/data/heavy/download", headers=admin)
    assert refused.status_code == 409 and refused.json["error"] == "remote_table"


def test_trigger_validation_and_schedule_filter(app, client, auth, folder):
    admin = bearer(auth.token("admin@example.com", admin=True))
    client.post("/api/admin/register-table", json=penguins_fields(folder, schedule="every 6h"), headers=admin)
    client.post(
        "/api/admin/register-table",
        headers=admin,
        json={"name": "stocks", "source_type": "csv", "source_spec": {"location": str(folder / "stocks.csv")}},
    )
    assert client.post("/api/sync/trigger", json={"tables": ["nope"]}, headers=admin).status_code == 400
    assert client.post("/api/sync/trigger", json={"tables": "penguins"}, headers=admin).status_code == 400
    first = client.post("/api/sync/trigger", headers=admin)
    assert sorted(j["table"] for j in first.json["jobs"]) == ["penguins", "stocks"]
    wait_jobs(app)
    second = client.post("/api/sync/trigger", headers=admin).json
    assert [j["table"] for j in second["jobs"]] == ["stocks"] and second["skipped"] == ["penguins"]
    wait_jobs(app)
    analyst = bearer(auth.token("analyst@example.com"))
    assert client.post("/api/sync/trigger", headers=analyst).status_code == 403


def test_metrics_import_and_read(client, auth):
    admin = bearer(auth.token("admin@example.com", admin=True))
    analyst = bearer(auth.token("analyst@example.com"))
    documents = [
        {
            "path": "finance/revenue.yml",
            "text": "name: revenue\ndisplay_name: Revenue\ntable: orders\n"
            "sql: SELECT sum(amount) FROM orders\nsql_by_bigquery: SELECT 1\n"
            "dimensions: [customer]\nsynonyms: [sales]\n",
        },
        {
            "path": "ops/all.yml",
            "text": "metrics:\n  - name: orders\n    description: Order count\n"
            "  - name: late_orders\n    category: logistics\n",
        },
    ]
    imported = client.post("/api/admin/metrics/import", json={"documents": documents}, headers=admin)
    assert imported.status_code == 201
    assert sorted(imported.json["imported"]) == ["finance/revenue", "logistics/late_orders", "ops/orders"]
    listed = client.get("/api/metrics", headers=analyst).json
    assert listed["count"] == 3
    revenue = client.get("/api/metrics/finance/revenue", headers=analyst).json
    assert revenue["table"] == "orders" and revenue["sql_variants"] == {"bigquery": "SELECT 1"}
    assert revenue["dimensions"] == ["customer"]
    assert client.get("/api/metrics?category=ops", headers=analyst).json["count"] == 1
    assert client.get("/api/metrics/finance/nope", headers=analyst).status_code == 404
    broken = client.post(
        "/api/admin/metrics/import", json={"documents": [{"path": "x.yml", "text": "a: [b"}]}, headers=admin
    )
    assert broken.status_code == 400 and broken.json["error"] == "invalid_yaml"
    nameless = client.post(
        "/api/admin/metrics/import", json={"documents": [{"path": "x.yml", "text": "a: 1"}]}, headers=admin
    )
    assert nameless.status_code == 400
    assert client.post("/api/admin/metrics/import", json={"documents": documents}, headers=analyst).status_code == 403
    assert client.delete("/api/admin/metrics/ops/orders", headers=admin).status_code == 204
    assert client.get("/api/metrics", headers=analyst).json["count"] == 2


def test_catalog_lists_columns_of_granted_tables(client, auth, synced):
    from agnes import people

    analyst = bearer(auth.token("analyst@example.com"))
    assert client.get("/api/catalog", headers=analyst).json["tables"] == []
    people.create_grant("everyone", "table", "penguins", actor_id=None)
    [table] = client.get("/api/catalog", headers=analyst).json["tables"]
    assert table["id"] == "penguins" and {"name": "island", "type": "VARCHAR"} in table["columns"]


# -- wrong JSON types answer 400 naming the field, never 500 -----------------------------------


def test_wrong_types_in_group_and_table_bodies_are_400_with_the_field(app, client, auth, folder):
    from agnes import people

    group = people.create_group("typed", actor_id=None)
    register(penguins_fields(folder))
    headers = bearer(auth.token("boss@example.com", admin=True))
    cases = [
        ("POST", "/api/admin/groups", {"name": None}, "name"),
        ("POST", "/api/admin/groups", {"name": "ok", "description": {"a": 1}}, "description"),
        ("PATCH", f"/api/admin/groups/{group.id}", {"name": 5}, "name"),
        ("PATCH", f"/api/admin/groups/{group.id}", {"description": ["x"]}, "description"),
        ("POST", "/api/admin/register-table", {**penguins_fields(folder), "id": "p2", "schedule": 15}, "schedule"),
        (
            "POST",
            "/api/admin/register-table",
            {**penguins_fields(folder), "id": "p3", "source_spec": "x.csv"},
            "source_spec",
        ),
        (
            "POST",
            "/api/marketplaces",
            {"slug": ["acme"], "name": "A", "url": "https://git.example.com/a.git"},
            "slug",
        ),
        (
            "POST",
            "/api/marketplaces",
            {"slug": "a", "name": {"en": "A"}, "url": "https://git.example.com/a.git"},
            "name",
        ),
        ("POST", "/api/admin/register-table", {**penguins_fields(folder), "name": ["penguins"]}, "name"),
        ("PUT", "/api/admin/registry/penguins", {"description": 42}, "description"),
        ("PUT", "/api/admin/registry/penguins", {"source_spec": ["x.csv"]}, "source_spec"),
        ("PUT", "/api/admin/registry/penguins", {"schedule": {"every": "15m"}}, "schedule"),
        ("PUT", "/api/admin/registry/penguins", {"schedule": "every 99999999999999999999m"}, "schedule"),
    ]
    for method, path, body, field in cases:
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code == 400, (path, body, response.data)
        assert response.get_json()["field"] == field, (path, body)


# -- caches: a revoke that commits while another thread of the process reads ------------------------


def test_a_table_grant_revoked_during_a_concurrent_manifest_fetch_is_gone_afterwards(app, client, auth, folder):
    from agnes import people, signals
    from agnes.access import ResourceType
    from agnes.data.sync import sync_table
    from agnes.models import grants

    register(penguins_fields(folder))
    sync_table("penguins")
    group = people.create_group("analysts", actor_id=None)
    auth.user("ana@example.com")
    people.add_member(group.id, "ana@example.com", actor_id=None)
    grant = people.create_grant(group.id, "table", "penguins", actor_id=None)
    headers = bearer(auth.token("ana@example.com"))

    def listed() -> list[str]:
        return sorted(client.get("/api/sync/manifest", headers=headers).get_json()["tables"])

    assert listed() == ["penguins"]
    with state_store().write() as con:  # what people.delete_grant does; a fetch runs before it commits
        grants.delete_grant(con, grant.id)
        signals.grant_revoked.send(
            None, con=con, group_id=group.id, resource_type=ResourceType.TABLE, resource_id="penguins"
        )
        assert listed() == ["penguins"]  # not committed yet
    assert listed() == []


# -- secrets: a file URL with credentials would be stored in the registry and shown to admins ---------


def test_file_table_url_with_credentials_is_refused(app, client, auth):
    headers = bearer(auth.token("boss@example.com", admin=True))
    body = {
        "name": "remote csv",
        "source_type": "csv",
        "source_spec": {"location": "https://user:s3cret@files.example.com/data.csv"},
    }
    response = client.post("/api/admin/register-table", json=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["field"] == "spec.location"
    assert "s3cret" not in response.get_data(as_text=True)
    assert client.get("/api/admin/registry", headers=headers).get_json()["tables"] == []
