"""Explain ("why can't she see that?") and "who can reach it" agree with what access actually does:
``access.can_access``, the served marketplace and the ``agnes pull`` manifest."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.access.conftest import HX, register_tables, soup
from tests.conftest import bearer

pytestmark = pytest.mark.synced_marketplaces


@pytest.fixture
def world(auth):  # type: ignore[no-untyped-def]
    """Finance (ana), Sales (bo), cy in neither, dee deactivated in Finance, the seed admin;
    tables orders (Finance, Sales) and secrets (nobody), synced; plugin ui-design granted to Sales."""
    from agnes import people
    from agnes.data.sync import sync_table

    finance = people.create_group("Finance", actor_id=None)
    sales = people.create_group("Sales", actor_id=None)
    ids = {email: auth.user(f"{email}@example.com") for email in ("ana", "bo", "cy", "dee")}
    admin_id = auth.user("admin@example.com", admin=True)
    people.add_member(finance.id, "ana@example.com", actor_id=admin_id)
    people.add_member(finance.id, "dee@example.com", actor_id=admin_id)
    people.add_member(sales.id, "bo@example.com", actor_id=admin_id)
    people.set_user_active(ids["dee"], False, actor_id=admin_id)
    register_tables(["orders", "secrets"])
    for table in ("orders", "secrets"):
        sync_table(table)
    people.create_grant(finance.id, "table", "orders", actor_id=admin_id)
    people.create_grant(sales.id, "table", "orders", actor_id=None)
    people.create_grant(sales.id, "marketplace_plugin", "wshobson/ui-design", actor_id=admin_id)
    return {"finance": finance.id, "sales": sales.id, "admin": admin_id, **ids}


def _explain(client: FlaskClient, headers: dict[str, str], user: str, rtype: str, rid: str):  # type: ignore[no-untyped-def]
    return client.get(
        "/api/admin/access/explain",
        query_string={"user": user, "resource_type": rtype, "resource_id": rid},
        headers=headers,
    )


def test_explain_in_words(client: FlaskClient, auth, world) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    yes = _explain(client, headers, "ana@example.com", "table", "orders").get_json()
    assert yes["allowed"] is True and yes["served"] is True
    assert yes["summary"].startswith(
        "ana@example.com can download orders through Finance, added by admin@example.com on "
    )
    assert yes["reasons"][0]["group"] == "Finance" and yes["reasons"][0]["sources"] == ["admin"]

    no = _explain(client, headers, "cy@example.com", "table", "orders").get_json()
    assert no["allowed"] is False and no["served"] is False and no["reasons"] == []
    assert (
        no["summary"]
        == "cy@example.com cannot download orders: it is granted to Finance and Sales; they are in none of them."
    )

    gone = _explain(client, headers, "dee@example.com", "table", "orders").get_json()
    assert gone["allowed"] is False and "deactivated" in gone["summary"] and "deactivated" in gone["notes"][0]

    admin = _explain(client, headers, "admin@example.com", "table", "secrets").get_json()
    assert admin["allowed"] is True and "only as a member of Admin" in admin["summary"]
    assert any("not the served marketplace" in n for n in admin["notes"])

    plugin = _explain(client, headers, "bo@example.com", "marketplace_plugin", "wshobson/ui-design").get_json()
    assert plugin["allowed"] is True and plugin["served"] is False
    assert any("not in their stack" in n for n in plugin["notes"])
    system = _explain(client, headers, "cy@example.com", "marketplace_plugin", "team/org-baseline").get_json()
    assert system["allowed"] is True and system["served"] is True
    assert any("system plugin" in n for n in system["notes"])


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"user": "nobody@example.com", "resource_type": "table", "resource_id": "orders"}, 404, "user_not_found"),
        ({"user": "cy@example.com", "resource_type": "dataset", "resource_id": "orders"}, 400, "unknown_resource_type"),
        ({"user": "cy@example.com", "resource_type": "table", "resource_id": "Not Valid!"}, 400, "invalid_resource_id"),
        ({"user": "cy@example.com", "resource_type": "table", "resource_id": "missing"}, 404, "resource_not_found"),
    ],
)
def test_explain_errors(client: FlaskClient, auth, world, query, status, code) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/api/admin/access/explain", query_string=query, headers=bearer(auth.token("admin@example.com")))
    assert resp.status_code == status and resp.get_json()["error"] == code


def test_explain_and_reach_agree_with_access_and_serving(client: FlaskClient, auth, world) -> None:  # type: ignore[no-untyped-def]
    """For every user and resource: explain's ``allowed`` is ``can_access``, ``served`` is the served set
    (plugins) or the manifest (tables), and "who can reach it" lists exactly the allowed active users."""
    from agnes.access import AuthMethod, Principal, ResourceType, can_access
    from agnes.data.distribution import manifest
    from agnes.explain import explain, reach
    from agnes.marketplace import resolver
    from agnes.models import groups, users
    from agnes.state import state_store

    resources = [
        (ResourceType.TABLE, "orders"),
        (ResourceType.TABLE, "secrets"),
        (ResourceType.MARKETPLACE_PLUGIN, "wshobson/ui-design"),
        (ResourceType.MARKETPLACE_PLUGIN, "team/org-baseline"),
        (ResourceType.MARKETPLACE_PLUGIN, "wshobson/python-development"),
    ]
    with state_store().read() as con:
        everyone = [(u, groups.list_user_group_ids(con, u.id)) for u in users.list_users(con, limit=100)[0]]
    viewer = Principal(everyone[0][0], tuple(everyone[0][1]), AuthMethod.SESSION)
    checked = 0
    for rtype, rid in resources:
        reached = {u.user_id for u in reach(viewer, rtype.value, rid).users}
        for user, group_ids in everyone:
            principal = Principal(user, tuple(group_ids), AuthMethod.SESSION)
            found = explain(user.id, rtype.value, rid)
            allowed = user.active and can_access(principal, rtype, rid)
            assert found.allowed == allowed, (user.email, rid)
            assert (user.id in reached) == allowed, (user.email, rid)
            if rtype is ResourceType.MARKETPLACE_PLUGIN:
                served = {f"{p.marketplace_id}/{p.name}" for p in resolver.resolve(user.id, group_ids).plugins}
                assert found.served == (user.active and rid in served), (user.email, rid)
            else:
                assert found.served == (user.active and rid in manifest(principal)["tables"]), (user.email, rid)
            checked += 1
    assert checked == len(resources) * len(everyone) >= 25


def test_user_page_explain_fragment(client: FlaskClient, auth, world) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    url = f"/admin/users/{world['cy']}/explain?resource_type=table&resource_id=orders"
    fragment = soup(client.get(url, headers=HX))
    box = fragment.select_one("div#explain")
    assert fragment.find("html") is None and box["data-allowed"] == "false"
    assert "they are in none of them" in box.select_one("#explain-summary").text
    page = soup(client.get(url))
    assert page.select_one("#explain-page #explain-summary") is not None
    missing = client.get(f"/admin/users/{world['cy']}/explain?resource_type=table&resource_id=missing")
    assert missing.status_code == 404
