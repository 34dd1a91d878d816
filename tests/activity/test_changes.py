"""The Changes tab of /admin/activity: each registry mutation's fields before and after (never a
secret), the plugins marketplace syncs changed, table row-count changes, filters, keyset pages,
bad input, fragments, the JSON twin, ``agnes admin activity changes`` and the audited read."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bs4 import BeautifulSoup
from flask import Flask

from agnes.auth.pat import create_pat, revoke_pat
from agnes.models import tables as tables_model
from agnes.models import utcnow
from agnes.state import state_store
from tests.activity.conftest import audit_count, seed_audit
from tests.conftest import LiveServer, bearer, cli_env, run_cli
from tests.data.conftest import folder, penguins_fields  # noqa: F401  (the table fixture files)
from tests.marketplace.conftest import commit_all, register, small_marketplace, sync_now, write_manifest, write_plugin

# A marketplace token as a git host issues them: it must never reach a page, the API or the log.
SECRET = "ghp_" + "S3cr3tT0kenValue" * 2 + "abcd"
ROTATED = "ghp_" + "R0tat3dT0kenValue" * 2 + "abc"


def _changes(client, headers, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    rows, cursor = [], None
    while True:
        answer = client.get(
            "/api/admin/activity/changes",
            query_string={**params, **({"cursor": cursor} if cursor else {})},
            headers=headers,
        )
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        rows += body["rows"]
        cursor = body["next_cursor"]
        if not cursor:
            return rows


def _one(rows: list[dict], action: str, **match: object) -> dict:
    found = [r for r in rows if r["action"] == action and all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (action, match, [(r["action"], r["subject"]) for r in rows])
    return found[0]


def _fields(row: dict) -> dict[str, tuple[object, object]]:
    return {f["field"]: (f["before"], f["after"]) for f in row["fields"]}


def test_people_and_token_changes_show_before_and_after(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(auth.token("admin@example.com", admin=True))
    bo = client.post("/api/admin/users", json={"email": "bo@example.com"}, headers=admin).get_json()
    group = client.post("/api/admin/groups", json={"name": "Finance", "description": "money"}, headers=admin)
    group_id = group.get_json()["id"]
    assert client.patch(f"/api/admin/groups/{group_id}", json={}, headers=admin).status_code == 200  # not a change
    client.patch(f"/api/admin/groups/{group_id}", json={"name": "Finance EU", "description": "money"}, headers=admin)
    client.post(f"/api/admin/groups/{group_id}/members", json={"email": "bo@example.com"}, headers=admin)
    client.delete(f"/api/admin/groups/{group_id}/members/{bo['id']}", headers=admin)
    grant = client.post(
        "/api/admin/grants",
        json={"group_id": group_id, "resource_type": "table", "resource_id": "orders"},
        headers=admin,
    ).get_json()
    assert client.delete(f"/api/admin/grants/{grant['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/admin/groups/{group_id}", headers=admin).status_code == 204
    record, raw = create_pat(bo["id"], "laptop", 30)
    revoke_pat(record.id, owner_id=bo["id"])

    rows = _changes(client, admin, since="1h")
    assert _one(rows, "group.create")["kind"] == "created"
    assert _fields(_one(rows, "group.create")) == {"name": (None, "Finance"), "description": (None, "money")}
    renamed = _one(rows, "group.update")
    assert (renamed["kind"], renamed["type"]) == ("changed", "group")
    assert _fields(renamed) == {"name": ("Finance", "Finance EU")}  # the unchanged description is not a change
    added = _one(rows, "group.member_add", type="member", subject="bo@example.com")
    removed = _one(rows, "group.member_remove")
    assert added["kind"] == "created" and _fields(added)["email"] == (None, "bo@example.com")
    assert removed["kind"] == "removed" and _fields(removed)["email"] == ("bo@example.com", None)
    assert _fields(_one(rows, "grant.create"))["resource_id"] == (None, "orders")
    revoked = _one(rows, "grant.delete")
    assert (revoked["kind"], _fields(revoked)["resource_id"]) == ("removed", ("orders", None))
    deleted = _one(rows, "group.delete")
    assert deleted["kind"] == "removed" and _fields(deleted)["name"] == ("Finance EU", None)
    assert deleted["user_email"] == "admin@example.com"
    # A token by its metadata only: name, expiry, revocation.
    created = _one(rows, "token.create", type="token", subject="laptop")
    assert set(_fields(created)) == {"name", "expires_days", "expires_at"}
    revoked_token = _one(rows, "token.revoke")
    assert (revoked_token["kind"], revoked_token["subject"]) == ("changed", "laptop")
    assert list(_fields(revoked_token)) == ["revoked_at"] and _fields(revoked_token)["revoked_at"][0] is None
    answer = client.get("/api/admin/activity/changes", query_string={"since": "1h"}, headers=admin).get_data(
        as_text=True
    )
    assert raw not in answer and record.prefix not in answer
    with state_store().read() as con:
        stored = con.execute(
            "SELECT string_agg(CAST(params_before AS VARCHAR) || CAST(params AS VARCHAR)) FROM audit_log"
        ).fetchone()[0]
    assert raw not in stored


def test_marketplace_changes_syncs_and_system_flags_never_show_the_token(
    app: Flask, client, auth, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(auth.token("admin@example.com", admin=True))
    repo = small_marketplace(tmp_path / "repo", ("alpha", "beta"))
    register(client, admin, "acme", repo, token=SECRET)
    sync_now("acme")
    assert (
        client.patch("/api/marketplaces/acme", json={"token": ROTATED, "branch": "main"}, headers=admin).status_code
        == 200
    )
    assert client.patch("/api/marketplaces/acme", json={"token": ""}, headers=admin).status_code == 200
    assert client.post("/api/marketplaces/acme/plugins/alpha/system", headers=admin).status_code == 200
    assert client.delete("/api/marketplaces/acme/plugins/alpha/system", headers=admin).status_code == 200
    # Upstream: beta removed, gamma added, alpha re-versioned.
    write_plugin(repo / "plugins" / "alpha", "alpha", version="1.1.0", skills=("alpha-skill",))
    write_plugin(repo / "plugins" / "gamma", "gamma", skills=("gamma-skill",))
    write_manifest(
        repo,
        [
            {"name": "alpha", "source": "./plugins/alpha", "version": "1.1.0"},
            {"name": "gamma", "source": "./plugins/gamma", "version": "1.0.0"},
        ],
    )
    commit_all(repo, "1.1")
    sync_now("acme")

    rows = _changes(client, admin, since="1h", type="marketplace")
    assert {r["type"] for r in rows} == {"marketplace"}
    created = _one(rows, "marketplace.create")
    assert _fields(created)["token_env"] == (None, "AGNES_MARKETPLACE_ACME_TOKEN")  # the variable's name only
    updates = [r for r in rows if r["action"] == "marketplace.update"]
    cleared = next(r for r in updates if "token_env" in _fields(r))
    assert _fields(cleared)["token_env"] == ("AGNES_MARKETPLACE_ACME_TOKEN", None)
    rotated = next(r for r in updates if r is not cleared)
    assert _fields(rotated) == {"branch": (None, "main")} and rotated["context"]["token"] == "[redacted]"
    syncs = [r for r in rows if r["action"] == "marketplace.sync"]
    assert [r["plugins"] for r in syncs] == [
        {"added": ["gamma"], "removed": ["beta"], "changed": [{"name": "alpha", "from": "1.0.0", "to": "1.1.0"}]},
        {"added": ["alpha", "beta"], "removed": [], "changed": []},
    ]
    flags = _changes(client, admin, since="1h", type="system")
    assert [(r["action"], _fields(r)) for r in flags] == [
        ("marketplace.plugin.unmark_system", {"is_system": (True, False)}),
        ("marketplace.plugin.mark_system", {"is_system": (False, True)}),
    ]
    auth.login("admin@example.com", admin=True)
    html = client.get("/admin/activity/changes", query_string={"since": "1h"}).get_data(as_text=True)
    api = client.get("/api/admin/activity/changes", query_string={"since": "1h"}, headers=admin).get_data(as_text=True)
    timeline = client.get("/api/admin/activity", query_string={"since": "1h"}, headers=admin).get_data(as_text=True)
    for shown in (html, api, timeline):
        assert SECRET not in shown and ROTATED not in shown
    page = BeautifulSoup(html, "html.parser")
    sync_row = page.select('li.change-row[data-action="marketplace.sync"]')[0]
    assert [li.get_text() for li in sync_row.select(".plugin-changes li")] == [
        "+ gamma",
        "− beta",
        "alpha: 1.0.0 → 1.1.0",
    ]


def test_table_changes_and_row_counts(app: Flask, client, auth, folder: Path) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    admin = bearer(auth.token("admin@example.com", admin=True))
    fields = penguins_fields(folder)
    assert client.post("/api/admin/register-table", json=fields, headers=admin).status_code == 201
    changed = {"description": "Penguins of Palmer", "schedule": "every 2h"}
    spec = {**fields["source_spec"], "null_strings": ["NA", "n/a"]}
    assert (
        client.put("/api/admin/registry/penguins", json={**changed, "source_spec": spec}, headers=admin).status_code
        == 200
    )
    for _ in range(2):  # the second sync reads the same rows: not a change
        client.post("/api/sync/trigger", json={"tables": ["penguins"]}, headers=admin)
        app.extensions["agnes_jobs"].wait_idle()
    csv = folder / "penguins.csv"
    csv.write_text("".join(csv.read_text().splitlines(keepends=True)[:-4]))  # four rows fewer
    client.post("/api/sync/trigger", json={"tables": ["penguins"]}, headers=admin)
    app.extensions["agnes_jobs"].wait_idle()

    rows = _changes(client, admin, since="1h", type="table")
    update = _one(rows, "table.update")
    assert _fields(update) == {
        "description": ("Palmer penguins", "Penguins of Palmer"),
        "schedule": (None, "every 2h"),
        "source_spec.null_strings": (["NA"], ["NA", "n/a"]),
    }
    assert _one(rows, "table.register")["kind"] == "created"
    counts = [r["rows"] for r in rows if r["action"] == "table.sync"]
    assert counts == [{"before": 344, "after": 340, "delta": -4}, {"before": None, "after": 344, "delta": None}]
    # The admin started the syncs: their user filter keeps them; another user's has none.
    assert len(_changes(client, admin, since="1h", user="admin@example.com", type="table")) == 4
    assert _changes(client, admin, since="1h", user="nobody@example.com") == []
    assert client.delete("/api/admin/registry/penguins", headers=admin).status_code == 204
    gone = _one(_changes(client, admin, since="1h", type="table"), "table.unregister")
    assert gone["kind"] == "removed" and _fields(gone)["schedule"] == ("every 2h", None)


def test_pages_filters_fragment_and_the_audited_read(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    now = utcnow()
    for minutes in range(5):
        seed_audit(
            now - timedelta(minutes=minutes + 1),
            "group.update",
            resource="group:g1",
            params={"name": f"n{minutes + 1}"},
            params_before={"name": f"n{minutes}"},
        )
    seed_audit(now - timedelta(days=9), "group.update", params={"name": "old"}, params_before={"name": "older"})
    seed_audit(now - timedelta(minutes=1), "group.update", params={"name": "no before"})  # not a change
    reads = audit_count("activity.read")

    first = client.get("/admin/activity/changes", query_string={"limit": 2, "type": "group"})
    page = BeautifulSoup(first.data, "html.parser")
    assert page.select_one('#activity-tabs a[aria-current="page"]').get_text() == "Changes"
    assert [li["data-kind"] for li in page.select("li.change-row")] == ["changed", "changed"]
    assert page.select_one('li.change-row tr[data-field="name"] .after').get_text() == "n1"
    more = page.select_one("#changes-more")
    assert more["href"] == more["hx-get"] and "cursor=" in more["href"]  # a plain link without JavaScript
    seen = [li["data-id"] for li in page.select("li.change-row")]
    while more is not None:
        fragment = BeautifulSoup(client.get(more["href"], headers={"HX-Request": "true"}).data, "html.parser")
        assert fragment.select_one("html") is None and fragment.select_one(".timeline-page") is not None
        seen += [li["data-id"] for li in fragment.select("li.change-row")]
        more = fragment.select_one("#changes-more")
    assert len(seen) == len(set(seen)) == 5  # the 9-day-old change is outside the default window
    assert audit_count("activity.read") == reads + 1  # paging one filter is one read
    client.get("/admin/activity/changes", query_string={"type": "token"})
    assert audit_count("activity.read") == reads + 2
    with state_store().read() as con:
        (params,) = con.execute(
            "SELECT params FROM audit_log WHERE action = 'activity.read' ORDER BY timestamp DESC LIMIT 1"
        ).fetchone()
    assert json.loads(params)["tab"] == "changes"
    assert len(_changes(client, {}, since="30d", type="group")) == 6
    # The timeline's drawer shows a change's previous values too.
    timeline = BeautifulSoup(client.get("/admin/activity?action=group.update").data, "html.parser")
    befores = [json.loads(pre.get_text()) for pre in timeline.select("pre.params-before")]
    assert {"name": "n0"} in befores and len(befores) == 5


def test_bad_input_answers_400_naming_the_field_and_writes_nothing(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(auth.token("admin@example.com", admin=True))
    before = audit_count()
    for params, field in (
        ({"since": "yesterday-ish"}, "since"),
        ({"until": "2026-13-40"}, "until"),
        ({"since": "1h", "until": "2h"}, "since"),
        ({"type": "plugin"}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ):
        answer = client.get("/api/admin/activity/changes", query_string=params, headers=admin)
        assert answer.status_code == 400, params
        assert answer.get_json()["field"] == field, params
    assert audit_count() == before
    auth.login("admin@example.com", admin=True)
    page = client.get("/admin/activity/changes", query_string={"type": "plugin"})
    assert page.status_code == 422
    assert BeautifulSoup(page.data, "html.parser").select_one("#f-type-error") is not None


def test_changes_from_the_cli(app: Flask, live_server: LiveServer, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seed_audit(
        utcnow() - timedelta(minutes=5),
        "grant.create",
        resource="grant:x",
        params={"resource_id": "orders"},
        params_before={},
    )
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path)
    table = run_cli(["admin", "activity", "changes", "--since", "1h"], env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split()[:3] == ["TIME", "(UTC)", "USER"]
    assert "resource_id: - -> orders" in table.stdout
    found = run_cli(["admin", "activity", "changes", "--json", "--type", "grant"], env)
    assert [r["action"] for r in json.loads(found.stdout)] == ["grant.create"]


def test_redaction_keeps_a_variable_name_and_masks_anything_else_under_a_secret_key() -> None:
    from agnes.redaction import REDACTED, redact

    shown = redact(
        {
            "token_env": "AGNES_MARKETPLACE_ACME_TOKEN",  # a variable's name: kept
            "other_token_env": SECRET,  # a token where a name belongs: masked
            "aws_token_env": "AKIAIOSFODNN7EXAMPLE",  # upper case, but a known key prefix: masked
            "password_env": "not a name",
            "token": "rotated",
            "secret": None,  # nothing to hide
        }
    )
    assert shown == {
        "token_env": "AGNES_MARKETPLACE_ACME_TOKEN",
        "other_token_env": REDACTED,
        "aws_token_env": REDACTED,
        "password_env": REDACTED,
        "token": REDACTED,
        "secret": None,
    }


def test_migration_0062_fills_in_the_previous_row_counts_of_existing_syncs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import db

    shipped = db.available_migrations()
    store = db.StateStore(tmp_path / "system.duckdb")
    monkeypatch.setattr(db, "available_migrations", lambda: [m for m in shipped if m[0] < 62])
    store.migrate()
    start = utcnow() - timedelta(days=1)
    runs = [("a", 0, "ok", 10), ("a", 1, "failed", None), ("a", 2, "ok", 12), ("b", 3, "ok", 5), ("a", 4, "ok", 12)]
    with store.write() as con:
        for n, (table, minutes, status, rows) in enumerate(runs):
            at = start + timedelta(minutes=minutes)
            con.execute(
                "INSERT INTO sync_history (id, table_id, started_at, finished_at, status, rows)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [f"r{n}", table, at, at, status, rows],
            )
    monkeypatch.setattr(db, "available_migrations", lambda: shipped)
    assert 62 in store.migrate()
    with store.read() as con:
        found = dict(con.execute("SELECT id, previous_rows FROM sync_history").fetchall())
        changes = tables_model.list_row_count_changes(con)
    assert found == {"r0": None, "r1": None, "r2": 10, "r3": None, "r4": 12}
    assert [(c.id, c.previous_rows, c.rows) for c in changes] == [("r3", None, 5), ("r2", 10, 12), ("r0", None, 10)]
