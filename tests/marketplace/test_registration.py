"""What cannot work is refused at registration (issue 15 item 3): a local path that does not exist or
is not a git repository, a URL scheme we do not fetch. 422 at the ``url`` field, nothing written;
forms show every field's error at once. Before the fix these registered and failed at the first sync.
"""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from tests.conftest import csrf_token
from tests.marketplace.conftest import register, small_marketplace


def registry_ids() -> list[str]:
    from agnes.models import marketplaces
    from agnes.state import state_store

    with state_store().read() as con:
        return [m.id for m in marketplaces.list_marketplaces(con)]


@pytest.mark.parametrize(
    ("url", "code", "words"),
    [
        ("{tmp}/missing", "repository_not_found", "does not exist on the server"),
        ("file://{tmp}/missing", "repository_not_found", "does not exist on the server"),
        ("{tmp}/plain-folder", "repository_not_found", "is not a git repository"),
        ("{tmp}/plain-folder/file.txt", "repository_not_found", "is a file"),
        ("ssh://git@github.com/acme/plugins.git", "unsupported_url_scheme", "ssh:// URLs are not fetched"),
        ("git@github.com:acme/plugins.git", "unsupported_url_scheme", "not fetched"),
        ("http://example.com/acme/plugins.git", "unsupported_url_scheme", "http:// URLs are not fetched"),
    ],
)
def test_registration_refuses_what_cannot_be_fetched(client, admin_headers, tmp_path, url, code, words):  # type: ignore[no-untyped-def]
    (tmp_path / "plain-folder").mkdir()
    (tmp_path / "plain-folder" / "file.txt").write_text("x")
    response = client.post(
        "/api/marketplaces",
        json={"slug": "acme", "name": "Acme", "url": url.format(tmp=tmp_path), "sync": True},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert (body["error"], body["field"]) == (code, "url")
    assert words in body["message"]
    assert registry_ids() == []


def test_a_bare_repository_and_a_working_copy_are_accepted(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    from tests.marketplace.conftest import git

    repo = small_marketplace(tmp_path / "repo")
    git("clone", "-q", "--bare", str(repo), str(tmp_path / "bare.git"))
    register(client, admin_headers, "work", repo)
    register(client, admin_headers, "bare", f"file://{tmp_path}/bare.git")
    assert registry_ids() == ["work", "bare"]


def test_editing_to_a_missing_path_is_refused_and_changes_nothing(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    repo = small_marketplace(tmp_path / "repo")
    register(client, admin_headers, "acme", repo)
    response = client.patch(
        "/api/marketplaces/acme", json={"url": str(tmp_path / "gone"), "name": ""}, headers=admin_headers
    )
    assert response.status_code == 422
    body = response.get_json()
    assert {e["field"] for e in body["errors"]} == {"url", "name"}  # every refusal, not the first
    assert client.get("/api/marketplaces/acme", headers=admin_headers).get_json()["url"] == str(repo)


def test_the_form_shows_every_field_error_at_once(client, auth, tmp_path):  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, "/admin/marketplaces")
    response = client.post(
        "/admin/marketplaces",
        data={
            "csrf_token": token,
            "slug": "Bad Slug",
            "name": "",
            "url": str(tmp_path / "missing"),
            "curator_email": "not-an-email",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    form = BeautifulSoup(response.data, "html.parser")
    errors = {p["id"].removeprefix("f-").removesuffix("-error") for p in form.select(".field-error")}
    assert errors == {"slug", "name", "url", "curator_email"}
    assert "does not exist on the server" in form.select_one("#f-url-error").get_text()
    assert form.select_one("#f-url")["value"] == str(tmp_path / "missing")  # the typed values stay
    assert registry_ids() == []
