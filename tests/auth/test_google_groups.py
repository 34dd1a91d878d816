"""Google Workspace groups mirrored as Agnes groups, against the loopback directory of conftest.py:
sign-in sync (3 s budget, fail soft), "refresh my groups", linked groups read-only, the
directory-wide sync's guards. The nightly job on a real worker: tests/jobs/test_google_sync_worker.py."""

from __future__ import annotations

import time

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from tests.auth.conftest import FakeDirectory, FakeGoogle, google_settings, identity, install_key, sign_in
from tests.conftest import bearer, csrf_token

HX = {"HX-Request": "true"}


@pytest.fixture
def app_config(
    app_config: dict[str, object], provider: FakeGoogle, directory: FakeDirectory, monkeypatch: pytest.MonkeyPatch
) -> dict[str, object]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    directory.groups = {
        "agnes-finance@corp.example": ("Finance", {"ana@corp.example", "bo@corp.example"}),
        "agnes-admins@corp.example": ("Agnes admins", {"ana@corp.example"}),
        "lunch@corp.example": ("Lunch club", {"ana@corp.example"}),  # no prefix: not mirrored
    }
    directory.fail, directory.delay = False, 0.0
    return {**app_config, **google_settings(provider), **directory.settings()}


def _memberships(email: str) -> dict[str, tuple[str, ...]]:
    from agnes import people

    return {m.group_name: m.sources for m in people.memberships(people.resolve_user(email).id)}


def test_sign_in_mirrors_the_users_groups(app: Flask, client: FlaskClient, provider, directory) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    install_key(directory)
    provider.identity = identity("ana@corp.example")
    assert sign_in(client, provider) == "/me"
    groups = _memberships("ana@corp.example")
    assert groups["Finance"] == ("google_sync",) and groups["Admin"] == ("google_sync",)
    assert "Lunch club" not in groups
    finance = people.resolve_group("Finance")
    assert finance.google_email == "agnes-finance@corp.example" and finance.origin == "google"
    # The linked group is renamed and deleted only in Google Workspace; descriptions may change.
    for call in (lambda: people.update_group(finance.id, name="Money"), lambda: people.delete_group(finance.id)):
        with pytest.raises(Exception) as refused:
            call()
        assert getattr(refused.value, "code", None) == "google_managed"
    assert people.update_group(finance.id, description="Ledger people").description == "Ledger people"
    assert people.resolve_group("Finance").id == finance.id


def test_sign_in_fails_soft_on_errors_and_slowness(
    app: Flask, client: FlaskClient, provider, directory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from agnes.auth import google_groups
    from agnes.models import google_sync
    from agnes.state import state_store

    install_key(directory)
    provider.identity = identity("ana@corp.example")
    sign_in(app.test_client(), provider)
    before = _memberships("ana@corp.example")

    directory.fail = True
    assert sign_in(client, provider) == "/me"  # signed in anyway
    assert _memberships("ana@corp.example") == before
    monkeypatch.setattr(google_groups, "SIGN_IN_BUDGET", 0.3)
    directory.fail, directory.delay = False, 1.0
    started = time.monotonic()
    assert sign_in(app.test_client(), provider) == "/me"
    assert time.monotonic() - started < 1.0 + 0.9  # waited for the budget, not for the directory
    assert _memberships("ana@corp.example") == before
    with state_store().read() as con:
        runs = google_sync.latest_runs(con, scope="user", limit=3)
    assert [r.status for r in runs] == ["failed", "failed", "ok"]
    assert "500" in runs[1].message and "in time" in runs[0].message


def test_refresh_my_groups_and_an_empty_answer(app: Flask, client: FlaskClient, auth, directory) -> None:  # type: ignore[no-untyped-def]
    install_key(directory)
    auth.login("bo@corp.example")
    token = csrf_token(client, "/me")
    fragment = client.post("/me/groups/refresh", data={"csrf_token": token}, headers=HX)
    box = BeautifulSoup(fragment.data, "html.parser")
    assert box.find("html") is None and "1 added" in box.select_one("section#my-groups-section #groups-outcome").text
    assert _memberships("bo@corp.example")["Finance"] == ("google_sync",)
    directory.groups["agnes-finance@corp.example"][1].discard("bo@corp.example")  # Google answers: no groups
    page = BeautifulSoup(client.post("/me/groups/refresh", data={"csrf_token": token}).data, "html.parser")
    assert "1 removed" in page.select_one("#profile #groups-outcome").text
    assert "Finance" not in _memberships("bo@corp.example")
    directory.fail = True
    failed = BeautifulSoup(
        client.post("/me/groups/refresh", data={"csrf_token": token}, headers=HX).data, "html.parser"
    )
    assert "unchanged" in failed.select_one("#groups-outcome").text


def test_admins_may_add_members_beside_google_and_not_remove_google_rows(
    app: Flask, client: FlaskClient, auth, directory
) -> None:  # type: ignore[no-untyped-def]
    from agnes import people
    from agnes.auth import google_groups

    install_key(directory)
    ana = auth.user("ana@corp.example")
    google_groups.sync_user(ana, "ana@corp.example")
    finance = people.resolve_group("Finance")
    headers = bearer(auth.token("admin@example.com", admin=True))
    added = client.post(f"/api/admin/groups/{finance.id}/members", json={"email": "ana@corp.example"}, headers=headers)
    assert added.status_code == 409  # already a member (through Google)
    auth.user("cy@corp.example")
    assert (
        client.post(
            f"/api/admin/groups/{finance.id}/members", json={"email": "cy@corp.example"}, headers=headers
        ).status_code
        == 201
    )
    refused = client.delete(f"/api/admin/groups/{finance.id}/members/{ana}", headers=headers)
    assert refused.status_code == 409 and refused.get_json()["error"] == "managed_membership"
    renamed = client.patch(f"/api/admin/groups/{finance.id}", json={"name": "Money"}, headers=headers)
    assert renamed.status_code == 409 and renamed.get_json()["error"] == "google_managed"
    assert people.resolve_group("Finance").name == "Finance"
