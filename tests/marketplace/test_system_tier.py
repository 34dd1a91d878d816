"""System plugins: the set-based fan-out at scale, provenance of what it added, every way a user or
group is created afterwards, unmark with "also revoke what the fan-out added", the confirmation
with counts, and a plugin missing upstream for one sync keeping its mark."""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from tests.auth.conftest import FakeGoogle, google_settings, identity, provider, sign_in  # noqa: F401
from tests.conftest import LiveServer, bearer, cli_env, csrf_token, run_cli

HX = {"HX-Request": "true"}


@pytest.fixture
def app_config(app_config: dict, provider: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> dict:  # noqa: F811
    """Google sign-in pointed at the loopback provider (a user created by signing in)."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # oauthlib refuses plain-http endpoints otherwise
    return {**app_config, **google_settings(provider)}


def _marketplace(slug: str = "acme", names: tuple[str, ...] = ("base", "extra")) -> None:
    """A registered marketplace whose last sync found ``names`` (rows only, no files)."""
    from agnes.marketplace import curated
    from agnes.models import marketplaces, utcnow
    from agnes.models.marketplaces import PluginRecord
    from agnes.state import state_store

    if not any(m.id == slug for m in curated.list_marketplaces()):
        curated.create_marketplace(
            {
                "slug": slug,
                "name": slug.title(),
                "url": "https://git.example.com/x.git",
                "curator_email": "cora@example.com",
            },
            actor_id=None,
        )
    records = [PluginRecord(n, n, "path", f"./{n}", {"name": n, "source": f"./{n}"}) for n in names]
    with state_store().write() as con:
        marketplaces.apply_sync(con, slug, commit_sha="0" * 40, checkout_dir="x", records=records, started_at=utcnow())


def _bulk_people(users: int, groups: int) -> None:
    from agnes.state import state_store

    with state_store().write() as con:
        con.execute(
            "INSERT INTO users (id, email, name)"
            " SELECT 'bulk' || i, 'bulk' || i || '@example.com', '' FROM range(?) t(i)",
            [users],
        )
        con.execute(
            "INSERT INTO user_groups (id, name) SELECT 'g' || i, 'Team ' || i FROM range(?) t(i)",
            [groups],
        )


def _counts(rid: str = "acme/base") -> dict[str, int]:
    from agnes.state import state_store

    slug, _, name = rid.partition("/")
    with state_store().read() as con:
        grants = con.execute(
            "SELECT origin, count(*) FROM resource_grants WHERE resource_id = ? GROUP BY origin", [rid]
        ).fetchall()
        subs = con.execute(
            "SELECT origin, count(*) FROM user_plugin_subscriptions WHERE marketplace_id = ? AND plugin_name = ?"
            " GROUP BY origin",
            [slug, name],
        ).fetchall()
    return {**{f"grants_{o}": n for o, n in grants}, **{f"subs_{o}": n for o, n in subs}}


def _subscribed(email: str, rid: str = "acme/base") -> str | None:
    """The origin of the user's subscription to the plugin (None: not subscribed)."""
    from agnes.state import state_store

    with state_store().read() as con:
        row = con.execute(
            "SELECT s.origin FROM user_plugin_subscriptions s JOIN users u ON u.id = s.user_id"
            " WHERE u.email = ? AND s.marketplace_id || '/' || s.plugin_name = ?",
            [email, rid],
        ).fetchone()
    return row[0] if row else None


def test_mark_at_scale_then_every_new_user_and_group_then_unmark_revoking_the_fanout(
    app: Flask,
    app_config: dict,
    live_server: LiveServer,
    auth,
    provider: FakeGoogle,  # noqa: F811
    tmp_path: Path,
) -> None:
    from agnes import create_app, people
    from agnes.marketplace import system

    _marketplace()
    _bulk_people(5000, 200)
    hand = people.create_group("Hand", actor_id=None)
    manual = people.create_grant(hand.id, "marketplace_plugin", "acme/base", actor_id=None)  # before the mark
    early = auth.user("early@example.com")
    from agnes.access import AuthMethod, Principal
    from agnes.marketplace import stack

    people.add_member(hand.id, "early@example.com", actor_id=None)
    stack.install(Principal(people.resolve_user(early), ("everyone", hand.id), AuthMethod.SESSION), "acme", "base")
    groups_total = len(people.list_groups())

    counts = system.set_system("acme", "base", True, actor_id=None)
    assert counts == {"groups": groups_total - 1, "users": 5002 - 1}  # all but the hand-made rows
    assert _counts() == {
        "grants_manual": 1,
        "grants_system_fanout": groups_total - 1,
        "subs_manual": 1,
        "subs_system_fanout": 5001,
    }
    assert _subscribed("early@example.com") == "manual"

    admin_token = auth.token("admin@example.com", admin=True)
    client = app.test_client()
    # New users: the admin page, the API, the CLI, the seed admin and Google sign-in.
    auth.login("admin@example.com")
    page = auth.client.post(
        "/admin/users", data={"email": "page@example.com", "csrf_token": csrf_token(auth.client, "/me")}
    )
    assert page.status_code == 303
    assert (
        client.post("/api/admin/users", json={"email": "api@example.com"}, headers=bearer(admin_token)).status_code
        == 201
    )
    env = cli_env(live_server.url, admin_token, tmp_path / "home")
    added = run_cli(["admin", "user", "add", "cli@example.com"], env)
    assert added.returncode == 0, added.stderr
    create_app({**app_config, "AGNES_SEED_ADMIN_EMAIL": "seed2@example.com"})
    provider.identity = identity("google@example.com")
    sign_in(app.test_client(), provider)
    for email in ("page", "api", "cli", "seed2", "google"):
        assert _subscribed(f"{email}@example.com") == "system_fanout", email
    # A later group is granted it.
    later = people.create_group("Later", actor_id=None)
    assert ("acme/base", "system_fanout") in {(g.resource_id, g.origin) for g in people.list_grants(group_id=later.id)}

    # The confirmation counts what the fan-out added; the CLI unmarks and revokes exactly that.
    preview = client.get("/api/marketplaces/acme/plugins/base/system", headers=bearer(admin_token)).get_json()
    assert preview["unmark"]["fanout_grants"] == groups_total and preview["unmark"]["manual_grants"] == 1
    done = run_cli(["admin", "marketplace", "system", "acme/base", "--unmark", "--revoke-fanout", "--yes"], env)
    assert done.returncode == 0, done.stderr
    assert f"{groups_total} grants" in done.stdout
    assert _counts() == {"grants_manual": 1, "subs_manual": 1}
    assert people.find_grant(hand.id, "marketplace_plugin", "acme/base").id == manual.id
    assert _subscribed("early@example.com") == "manual"


def test_plain_unmark_keeps_rows_and_confirmation_fragment(client: FlaskClient, auth) -> None:
    from agnes.marketplace import system

    _marketplace()
    auth.login("admin@example.com", admin=True)
    confirm = client.get("/admin/marketplaces/acme/plugins/base/system", headers=HX)
    box = BeautifulSoup(confirm.data, "html.parser").select_one("div#system-confirm")
    assert BeautifulSoup(confirm.data, "html.parser").find("html") is None
    users_now = box.select_one(".count-users").text
    assert box.select_one(".count-groups").text == "2" and int(users_now) >= 1  # Admin, Everyone
    full = BeautifulSoup(client.get("/admin/marketplaces/acme/plugins/base/system").data, "html.parser")
    assert full.select_one("#system-confirm-page #system-confirm-button").text == "Mark system"
    token = csrf_token(client, "/admin/marketplaces/acme")
    marked = client.post(
        "/admin/marketplaces/acme/plugins/base/system", data={"system": "1", "csrf_token": token}, headers=HX
    )
    assert marked.status_code == 200 and system.preview("acme", "base").is_system
    unmark_box = BeautifulSoup(client.get("/admin/marketplaces/acme/plugins/base/system").data, "html.parser")
    assert unmark_box.select_one("#revoke-fanout") is not None
    before = _counts()
    plain = client.post("/admin/marketplaces/acme/plugins/base/system", data={"system": "0", "csrf_token": token})
    assert plain.status_code == 303
    assert not system.preview("acme", "base").is_system and _counts() == before


def test_missing_upstream_keeps_the_mark_and_warns(client: FlaskClient, auth) -> None:
    from agnes import people
    from agnes.marketplace import curated, system

    _marketplace()
    system.set_system("acme", "base", True, actor_id=None)
    _marketplace(names=("extra",))  # base missing for one sync
    history = curated.sync_history("acme", limit=1)[0]
    assert history.warnings and "base" in history.warnings[0]
    assert [m.plugin_name for m in system.missing_marks("acme")] == ["base"]
    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get("/admin/marketplaces/acme").data, "html.parser")
    assert page.select_one('.missing-system[data-plugin="base"]') is not None
    # Its grants cannot be revoked meanwhile, and it comes back locked.
    grant = next(g for g in people.list_grants(group_id="everyone") if g.resource_id == "acme/base")
    refused = client.delete(f"/api/admin/grants/{grant.id}", headers=bearer(auth.token("admin@example.com")))
    assert refused.status_code == 409 and refused.get_json()["error"] == "cannot_revoke_system_grant"
    _marketplace()
    assert system.preview("acme", "base").is_system and system.missing_marks("acme") == []
