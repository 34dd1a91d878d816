"""Redis down: pages render with "job queue unreachable", actions answer 503 queue_unavailable
(issue 10 item 3). Before the fix "Sync now", sync-all, recount, job status and the marketplace and
table pages answered 500, and registering a marketplace with its first sync left its row behind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from agnes.state import state_store
from tests.conftest import Auth, bearer, csrf_token
from tests.data.conftest import folder  # noqa: F401  (the table fixture files)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_config(app_config, tmp_path: Path):  # type: ignore[no-untyped-def]
    return {**app_config, "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}


def state_rows() -> dict[str, list]:  # type: ignore[type-arg]
    """Every row of every state-store table except the audit log (refused requests are audited)."""
    with state_store().read() as con:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
                " AND table_type = 'BASE TABLE'"
            ).fetchall()
        ]
        return {
            name: sorted(map(repr, con.execute(f'SELECT * FROM "{name}"').fetchall()))
            for name in names
            if name != "audit_log"
        }


def assert_queue_unavailable(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, (response.status_code, response.data[:300])
    assert response.headers["Retry-After"].isdigit()
    if response.is_json:
        assert response.json["error"] == "queue_unavailable"
        assert "queue" in response.json["message"]
    else:
        assert b"job queue is unreachable" in response.data


def test_every_page_and_action_that_touches_jobs_survives_redis_down(app, client, auth: Auth, folder: Path) -> None:  # noqa: F811
    admin = bearer(auth.token("admin@example.com", admin=True))
    created = client.post(
        "/api/marketplaces",
        json={"slug": "acme", "name": "Acme", "url": "https://git.example.com/acme/plugins.git"},
        headers=admin,
    )
    assert created.status_code == 201, created.json
    body = {"name": "penguins", "source_type": "csv", "source_spec": {"location": str(folder / "penguins.csv")}}
    assert client.post("/api/admin/register-table", json=body, headers=admin).status_code == 201
    auth.login("admin@example.com", admin=True)
    before = state_rows()

    for path in ("/admin/marketplaces/acme", "/admin/tables/penguins"):
        assert client.get(path, headers={"HX-Request": "true"}).status_code == 200, path
        for headers in ({}, {"HX-Request": "true", "HX-Boosted": "true"}):
            page = client.get(path, headers=headers)
            assert page.status_code == 200, (path, page.status_code)
            widget = BeautifulSoup(page.data, "html.parser").select_one(".job-status")
            assert widget is not None and widget["data-state"] == "unreachable", path
            assert "Job queue unreachable" in widget.get_text()
    for path in ("/admin/marketplaces", "/admin/tables", "/admin/groups", "/"):
        assert client.get(path).status_code == 200, path
    for path in ("/api/marketplaces/acme", "/api/admin/registry/penguins"):
        page = client.get(path, headers=admin)
        assert page.status_code == 200 and page.json["job"]["state"] == "unreachable", path
    assert client.get("/readyz").status_code == 503

    token = csrf_token(client, "/admin/groups")
    form_posts = [
        ("/admin/marketplaces/acme/sync", {}),
        ("/admin/marketplaces/sync-all", {}),
        ("/admin/tables/penguins/sync", {}),
        ("/admin/groups/recount", {}),
        ("/jobs/sync-marketplace:acme/retry", {}),
        ("/admin/marketplaces", {"slug": "beta", "name": "Beta", "url": "https://git.example.com/beta.git"}),
    ]
    for path, data in form_posts:
        for headers in ({}, {"HX-Request": "true"}):
            assert_queue_unavailable(client.post(path, data={"csrf_token": token, **data}, headers=headers))
    assert_queue_unavailable(client.get("/jobs/sync-marketplace:acme"))
    api_calls = [
        ("POST", "/api/marketplaces/acme/sync", None),
        ("POST", "/api/marketplaces/sync-all", None),
        ("POST", "/api/sync/trigger", {"tables": ["penguins"]}),
        ("POST", "/api/sync/trigger", {}),
        (
            "POST",
            "/api/marketplaces",
            {"slug": "gamma", "name": "G", "url": "https://git.example.com/g.git", "sync": True},
        ),
        ("GET", "/api/jobs/sync-table:penguins", None),
    ]
    for method, path, json_body in api_calls:
        assert_queue_unavailable(client.open(path, method=method, json=json_body, headers=admin))

    assert state_rows() == before
