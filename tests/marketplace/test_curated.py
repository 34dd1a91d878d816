"""The curated registry: validation, tokens in the overlay (never in DB, pages, errors), API, pages."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.conftest import bearer, csrf_token
from tests.marketplace.conftest import git, register, small_marketplace, sync_now

SECRET = "ghp_supersecretvalue1234567890"


def overlay(app) -> Path:  # type: ignore[no-untyped-def]
    return Path(app.config["AGNES_DATA_DIR"]) / "state" / ".env_overlay"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"slug": "Bad Slug"}, "slug", "invalid_slug"),
        ({"slug": "-x"}, "slug", "invalid_slug"),
        ({"slug": "store"}, "slug", "reserved_slug"),
        ({"url": "http://example.com/repo.git"}, "url", "unsupported_url_scheme"),
        ({"url": "git@github.com:acme/repo.git"}, "url", "unsupported_url_scheme"),
        ({"url": "https://user:pw@example.com/repo.git"}, "url", "credentials_in_url"),
        ({"url": "file://remote-host/x"}, "url", "invalid_url"),
        ({"name": ""}, "name", "name_required"),
        ({"branch": "a..b"}, "branch", "invalid_branch"),
        ({"curator_email": "nope"}, "curator_email", "invalid_curator_email"),
    ],
)
def test_create_validation(client, admin_headers, body, field, code):  # type: ignore[no-untyped-def]
    payload = {"slug": "acme", "name": "Acme", "url": "https://example.com/acme.git", **body}
    response = client.post("/api/marketplaces", json=payload, headers=admin_headers)
    assert response.status_code == (422 if code == "unsupported_url_scheme" else 400)  # 422: cannot work (issue 15)
    assert response.get_json()["error"] == code
    assert response.get_json()["field"] == field


def test_create_accepts_https_local_path_and_file_url(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    git("init", "-q", "--bare", str(tmp_path))  # a local path must be a git repository (issue 15)
    for slug, url in (("a", "https://example.com/a.git"), ("b", str(tmp_path)), ("c", f"file://{tmp_path}")):
        created = register(client, admin_headers, slug, url)
        assert created["url"] == url
        assert created["curator_email"] == "admin@example.com"  # defaults to the registering admin
    listed = client.get("/api/marketplaces", headers=admin_headers).get_json()["marketplaces"]
    assert [m["id"] for m in listed] == ["a", "b", "c"]


def test_duplicate_slug_conflicts(client, admin_headers):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", "https://example.com/a.git")
    response = client.post(
        "/api/marketplaces", json={"slug": "acme", "name": "x", "url": "https://e.com/x.git"}, headers=admin_headers
    )
    assert response.status_code == 409
    assert response.get_json()["error"] == "marketplace_exists"


def test_token_lives_only_in_overlay(app, client, admin_headers):  # type: ignore[no-untyped-def]
    created = register(client, admin_headers, "private-mp", "https://example.com/p.git", token=SECRET)
    assert created["has_token"] is True
    assert SECRET not in str(created)
    path = overlay(app)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert f"AGNES_MARKETPLACE_PRIVATE_MP_TOKEN={SECRET}" in path.read_text().splitlines()
    db_bytes = (Path(app.config["AGNES_DATA_DIR"]) / "state" / "system.duckdb").read_bytes()
    assert SECRET.encode() not in db_bytes
    # rotate, then clear
    client.patch("/api/marketplaces/private-mp", json={"token": "ghp_rotated0000000000"}, headers=admin_headers)
    assert "ghp_rotated0000000000" in path.read_text()
    assert SECRET not in path.read_text()
    cleared = client.patch("/api/marketplaces/private-mp", json={"token": ""}, headers=admin_headers).get_json()
    assert cleared["has_token"] is False
    assert "PRIVATE_MP" not in path.read_text()


def test_patch_is_partial_and_slug_immutable(client, admin_headers):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", "https://example.com/a.git", branch="dev", description="d")
    updated = client.patch(
        "/api/marketplaces/acme", json={"name": "Acme 2", "branch": None}, headers=admin_headers
    ).get_json()
    assert updated["name"] == "Acme 2" and updated["branch"] == "dev" and updated["description"] == "d"
    response = client.patch("/api/marketplaces/acme", json={"slug": "other"}, headers=admin_headers)
    assert response.status_code == 400 and response.get_json()["error"] == "slug_immutable"
    assert client.patch("/api/marketplaces/nope", json={}, headers=admin_headers).status_code == 404


def test_non_admin_is_refused(client, auth):  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("analyst@example.com"))
    assert client.get("/api/marketplaces", headers=headers).status_code == 403
    assert client.post("/api/marketplaces", json={}, headers=headers).status_code == 403


def test_delete_removes_plugins_grants_subscriptions(app, client, admin_headers, auth, tmp_path):  # type: ignore[no-untyped-def]
    repo = small_marketplace(tmp_path / "repo")
    register(client, admin_headers, "acme", repo)
    register(client, admin_headers, "acme_x", "https://example.com/x.git")
    sync_now("acme")
    client.post(
        "/api/admin/grants",
        json={"group_id": "everyone", "resource_type": "marketplace_plugin", "resource_id": "acme/alpha"},
        headers=admin_headers,
    )
    # a grant on another marketplace whose id shares the prefix "acme" must survive (starts_with, not LIKE)
    client.post(
        "/api/admin/grants",
        json={"group_id": "everyone", "resource_type": "marketplace_plugin", "resource_id": "acme_x/thing"},
        headers=admin_headers,
    )
    analyst = bearer(auth.token("analyst@example.com"))
    assert client.post("/api/marketplace/curated/acme/alpha/install", headers=analyst).status_code == 200
    workdir = Path(app.config["AGNES_DATA_DIR"]) / "marketplaces" / "acme"
    assert workdir.is_dir()
    assert client.delete("/api/marketplaces/acme?purge=true", headers=admin_headers).status_code == 204
    assert not workdir.exists()
    grants = client.get("/api/admin/grants", headers=admin_headers).get_json()["grants"]
    assert [g["resource_id"] for g in grants] == ["acme_x/thing"]
    assert client.get("/api/my-stack", headers=analyst).get_json()["plugins"] == []
    assert client.get("/api/marketplaces/acme/plugins", headers=admin_headers).status_code == 404


# -- marketplace tokens: two slugs must never share one token variable -----------------------------


def test_slugs_differing_only_in_dash_and_underscore_cannot_share_a_token(app):
    from agnes.errors import Conflict
    from agnes.marketplace import curated
    from agnes.marketplace.overlay import read_secret

    common = {"url": "https://git.example.com/acme/tools.git", "curator_email": "c@example.com"}
    first = curated.create_marketplace(
        {"slug": "acme-tools", "name": "Acme", "token": "secret-one", **common}, actor_id=None
    )
    with pytest.raises(Conflict) as refused:
        curated.create_marketplace(
            {
                "slug": "acme_tools",
                "name": "Other",
                "url": "https://evil.example.com/x.git",
                "curator_email": "c@example.com",
            },
            actor_id=None,
        )
    assert refused.value.field == "slug"
    assert read_secret(first.token_env) == "secret-one"


# -- pages -------------------------------------------------------------------------------------


def test_admin_page_lists_and_registers(client, auth, tmp_path):  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    page = client.get("/admin/marketplaces")
    soup = BeautifulSoup(page.data, "html.parser")
    assert soup.find("html") is not None
    assert soup.find(id="marketplaces-table") is not None and soup.find(id="marketplace-create") is not None
    token = csrf_token(client, "/admin/marketplaces")
    bad = client.post(
        "/admin/marketplaces",
        data={"csrf_token": token, "slug": "Bad!", "name": "x", "url": "https://e.com/x.git", "token": SECRET},
    )
    assert bad.status_code == 422
    soup = BeautifulSoup(bad.data, "html.parser")
    assert soup.find(id="f-slug-error") is not None
    assert SECRET not in bad.get_data(as_text=True)  # the token is never echoed back
    repo = small_marketplace(tmp_path / "repo")
    ok = client.post(
        "/admin/marketplaces",
        data={"csrf_token": token, "slug": "acme", "name": "Acme", "url": str(repo), "token": SECRET},
    )
    assert ok.status_code == 303 and ok.headers["Location"].endswith("/admin/marketplaces/acme")
    client.application.extensions["agnes_jobs"].wait_idle()
    detail = client.get("/admin/marketplaces/acme")
    soup = BeautifulSoup(detail.data, "html.parser")
    assert {tr["id"] for tr in soup.select("#marketplace-plugins tbody tr[id]")} == {"plugin-alpha", "plugin-beta"}
    assert soup.find(id="marketplace-token") is not None
    assert SECRET not in detail.get_data(as_text=True)


def test_admin_table_fragment(client, auth):  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    response = client.get("/admin/marketplaces", headers={"HX-Request": "true"})
    soup = BeautifulSoup(response.data, "html.parser")
    assert soup.find("html") is None
    assert soup.find(id="marketplaces-table") is not None


def test_plugins_fragment_and_page(client, auth, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", small_marketplace(tmp_path / "repo"))
    sync_now("acme")
    auth.login("admin@example.com", admin=True)
    fragment = BeautifulSoup(client.get("/admin/marketplaces/acme", headers={"HX-Request": "true"}).data, "html.parser")
    assert fragment.find("html") is None and fragment.find(id="marketplace-plugins") is not None
    page = BeautifulSoup(client.get("/admin/marketplaces/acme").data, "html.parser")
    assert page.find("html") is not None and page.find(id="sync-history") is not None


def test_sync_now_button_returns_job_fragment(client, auth, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", small_marketplace(tmp_path / "repo"))
    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, "/admin/marketplaces/acme")
    response = client.post("/admin/marketplaces/acme/sync", data={"csrf_token": token}, headers={"HX-Request": "true"})
    soup = BeautifulSoup(response.data, "html.parser")
    status = soup.find(id="job-status-sync-marketplace-acme")
    assert soup.find("html") is None and status is not None
    client.application.extensions["agnes_jobs"].wait_idle()
    answer = client.get("/jobs/sync-marketplace:acme", headers={"HX-Request": "true"})
    done = BeautifulSoup(answer.data, "html.parser")
    assert done.find(id="job-status-sync-marketplace-acme")["data-state"] == "finished"
    assert done.select_one(".job-summary").get_text() == "2 plugins: 2 added"
    # The end is announced, named after the job kind and resource; the page's live region listens.
    assert answer.headers["HX-Trigger"] == "sync-marketplace:acme"
    assert "HX-Trigger" not in client.get("/jobs/sync-marketplace:acme").headers  # the full page: no event
    live = BeautifulSoup(client.get("/admin/marketplaces/acme").data, "html.parser").find(id="marketplace-live")
    assert live["hx-trigger"] == "sync-marketplace:acme from:body"
    assert live["hx-get"] == "/admin/marketplaces/acme"
    fragment = BeautifulSoup(client.get(live["hx-get"], headers={"HX-Request": "true"}).data, "html.parser")
    assert fragment.find("html") is None and fragment.select_one("#marketplace-live #marketplace-last-result")


def test_a_running_job_announces_nothing(app, client, auth):  # type: ignore[no-untyped-def]
    from agnes.htmx import announce_end
    from agnes.jobs import JobState, JobStatus

    with app.test_request_context(headers={"HX-Request": "true"}):
        app.preprocess_request()
        for state, header in ((JobState.RUNNING, None), (JobState.QUEUED, None), (JobState.FAILED, "sync-table:t")):
            response = announce_end(app.make_response(""), JobStatus("sync-table:t", state, "Sync table t"))
            assert response.headers.get("HX-Trigger") == header


# -- tokens in URLs (issue 10 item 6) ------------------------------------------------------------
# Before the fix a path token (https://host/<tok>/x.git) registered and then showed in job errors,
# sync history and the jobs API, and a refused ?access_token=... URL was stored verbatim in audit_log.

PATH_TOKEN = "ghp_pathtokenvalue0123456789"


def audit_text() -> str:
    from agnes.state import state_store

    with state_store().read() as con:
        return repr(con.execute("SELECT action, resource, params FROM audit_log").fetchall())


@pytest.mark.parametrize(
    "url",
    [
        f"https://git.example.com/{PATH_TOKEN}/plugins.git",
        "https://git.example.com/glpat-abcdefghijklmnopqrst/plugins.git",
        "https://git.example.com/acme/0123456789abcdef0123456789abcdef01234567.git",
        "https://git.example.com/Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4dE/plugins.git",
    ],
)
def test_credential_looking_path_segments_are_refused_with_the_reason(client, admin_headers, url):  # type: ignore[no-untyped-def]
    response = client.post("/api/marketplaces", json={"slug": "acme", "name": "A", "url": url}, headers=admin_headers)
    assert response.status_code == 400
    assert response.json["error"] == "credentials_in_url" and response.json["field"] == "url"
    assert "looks like an access token" in response.json["message"]
    secret = url.split("/")[-2] if "acme" not in url else url.split("/")[-1].removesuffix(".git")
    assert secret not in audit_text()


def test_a_refused_query_token_is_not_stored_in_the_audit_log(client, admin_headers):  # type: ignore[no-untyped-def]
    url = "https://git.example.com/acme/plugins.git?access_token=querysecret123"
    response = client.post("/api/marketplaces", json={"slug": "acme", "name": "A", "url": url}, headers=admin_headers)
    assert response.status_code == 400 and response.json["error"] == "invalid_url"
    text = audit_text()
    assert "querysecret123" not in text and "access_token=[redacted]" in text


def test_a_token_reaching_a_fetch_url_is_masked_in_errors_history_and_jobs(app, client, admin_headers):  # type: ignore[no-untyped-def]
    from agnes.jobs.marketplace import start_sync

    # A rewrite rule (operator config) can put a token into the fetched URL's path.
    app.config["AGNES_GIT_URL_REWRITES"] = [f"https://example.com/=https://127.0.0.1:1/{PATH_TOKEN}/"]
    register(client, admin_headers, "acme", "https://example.com/acme/plugins.git")
    job = start_sync("acme", owner_id=None)
    app.extensions["agnes_jobs"].wait_idle()
    shown = [
        client.get(f"/api/jobs/{job.id}", headers=admin_headers).get_data(as_text=True),
        client.get("/api/marketplaces/acme", headers=admin_headers).get_data(as_text=True),
        client.get("/api/marketplaces/acme/history", headers=admin_headers).get_data(as_text=True),
        audit_text(),
    ]
    assert "[redacted]" in shown[0] and "[redacted]" in shown[2]
    for text in shown:
        assert PATH_TOKEN not in text
