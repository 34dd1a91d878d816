"""The audit timeline: every audit row reaches it, filters, keyset pages, bad input, the drawer,
HTMX fragments, and ``activity.read`` written once per admin and filter per minute."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from agnes.models import utcnow
from tests.activity.conftest import audit_count, seed_audit
from tests.conftest import bearer


def _all_rows(client, headers, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    rows, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = client.get("/api/admin/activity", query_string=query, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        body = answer.get_json()
        rows += body["rows"]
        cursor = body["next_cursor"]
        if not cursor:
            return rows


def test_every_audit_row_written_by_the_routes_reaches_the_timeline(app: Flask, client, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(auth.token("admin@example.com", admin=True))
    analyst = bearer(auth.token("analyst@example.com"))
    csv = Path(app.config["AGNES_DATA_SOURCE_DIRS"][0]) / "t.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("a\n1\n")
    calls = [
        ("post", "/api/admin/groups", admin, {"name": "Finance"}),
        ("post", "/api/admin/users", admin, {"email": "bo@example.com"}),
        ("patch", "/api/admin/users/bo@example.com", admin, {"name": "Bo"}),
        ("post", "/api/admin/users/bo@example.com/deactivate", admin, None),
        ("post", "/api/admin/users/bo@example.com/activate", admin, None),
        (
            "post",
            "/api/admin/register-table",
            admin,
            {"name": "t", "source_type": "csv", "source_spec": {"location": str(csv)}},
        ),
        ("post", "/api/sync/trigger", admin, {"tables": ["t"]}),
        ("post", "/api/tokens", admin, {"name": "second", "expires_days": 5}),
        ("post", "/api/admin/groups", analyst, {"name": "Refused"}),  # 403: audited as refused
        ("delete", "/api/admin/registry/t", admin, None),
    ]
    for method, path, headers, body in calls:
        answer = getattr(client, method)(path, json=body, headers=headers)
        assert answer.status_code < 500, (path, answer.get_json())
    app.extensions["agnes_jobs"].wait_idle()
    with app.extensions["agnes_state"].read() as con:
        stored = {r[0]: r[1] for r in con.execute("SELECT id, action FROM audit_log").fetchall()}
    shown = _all_rows(client, admin, limit=3, since="1h")
    shown_ids = [r["id"] for r in shown]
    assert len(shown_ids) == len(set(shown_ids)), "a row appeared on two pages"
    missing = {i: a for i, a in stored.items() if i not in shown_ids and a != "activity.read"}
    assert missing == {}
    actions = {r["action"] for r in shown}
    assert {
        "group.create",
        "user.create",
        "user.update",
        "user.deactivate",
        "table.unregister",
        "token.create",
    } <= actions
    assert "job.run_sync_table" in actions
    refused = next(r for r in shown if r["user_email"] == "analyst@example.com" and r["result"] == "403")
    assert refused["client_kind"] == "cli"


def test_filters_narrow_the_rows(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    ana = auth.user("ana@example.com")
    now = utcnow()
    seed_audit(now - timedelta(hours=2), "group.create", user_id=ana, resource="group:g1", params={"name": "Sales"})
    seed_audit(
        now - timedelta(hours=1),
        "job.run_sync_table",
        resource="job:sync-table_3a_t",
        params={"args": ["t"]},
        result="failed",
        client_kind="job",
        correlation_id="corr-1",
    )
    seed_audit(now - timedelta(hours=1), "table.sync", resource="table:t", correlation_id="corr-1", client_kind="cli")
    seed_audit(now - timedelta(days=9), "group.delete", user_id=ana, resource="group:old")

    def actions(**query: str) -> list[str]:
        return [r["action"] for r in _all_rows(client, headers, **query) if r["action"] != "activity.read"]

    assert "group.delete" not in actions()  # 7 days without since
    assert "group.delete" in actions(since="10d")
    assert actions(since="10d", user="ana@example.com") == ["group.create", "group.delete"]
    assert actions(since="10d", user=ana) == ["group.create", "group.delete"]
    assert actions(action="job.") == ["job.run_sync_table"]
    assert actions(resource="table:") == ["table.sync"]
    assert actions(result="failed") == ["job.run_sync_table"]
    assert actions(client_kind="cli", action="table.") == ["table.sync"]
    assert sorted(actions(correlation_id="corr-1")) == ["job.run_sync_table", "table.sync"]
    assert actions(q="SALES") == ["group.create"]
    window = {"since": (now - timedelta(minutes=90)).isoformat(), "until": (now - timedelta(minutes=30)).isoformat()}
    assert sorted(actions(**window)) == ["job.run_sync_table", "table.sync"]
    # An offset is converted to UTC.
    local = (now - timedelta(minutes=150)).replace(microsecond=0).isoformat() + "+00:00"
    assert "group.create" in actions(since=local)


def test_keyset_pages_never_repeat_or_skip_rows_sharing_a_timestamp(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    moment = utcnow() - timedelta(minutes=5)
    ids = {seed_audit(moment, "bulk.same_time", entry_id=f"id{n:02d}") for n in range(7)}
    ids |= {seed_audit(moment - timedelta(seconds=n), "bulk.earlier") for n in range(1, 4)}
    first = client.get("/api/admin/activity?action=bulk.&limit=4", headers=headers).get_json()
    assert len(first["rows"]) == 4 and first["next_cursor"]
    rows = _all_rows(client, headers, action="bulk.", limit=4)
    assert [r["id"] for r in rows][:4] == [r["id"] for r in first["rows"]]
    assert {r["id"] for r in rows} == ids and len(rows) == 10
    stamps = [(r["timestamp"], r["id"]) for r in rows]
    assert stamps == sorted(stamps, reverse=True)
    # A row written after the first page was read never shifts the later pages.
    seed_audit(utcnow(), "bulk.newer")
    second = client.get(f"/api/admin/activity?action=bulk.&limit=4&cursor={first['next_cursor']}", headers=headers)
    assert [r["id"] for r in second.get_json()["rows"]] == [r["id"] for r in rows[4:8]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("cursor=%%%", "cursor"),
        ("since=yesterday", "since"),
        ("until=2026-13-45", "until"),
        ("since=1h&until=2h", "since"),
        ("q=" + "x" * 501, "q"),
    ],
)
def test_bad_input_answers_400_naming_the_field_and_writes_nothing(
    app: Flask, client, auth, query: str, field: str
) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    before = audit_count()
    answer = client.get(f"/api/admin/activity?{query}", headers=headers)
    assert answer.status_code == 400
    assert answer.get_json()["field"] == field
    assert audit_count() == before


def test_the_page_shows_a_bad_filter_at_its_field(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    answer = client.get("/admin/activity?since=soon&action=job.")
    assert answer.status_code == 422
    soup = BeautifulSoup(answer.data, "html.parser")
    assert soup.select_one("#f-since-error").get_text().startswith("since must be")
    assert soup.select_one("#f-action")["value"] == "job."
    assert soup.select_one(".timeline-row") is None


def test_drawer_masks_params_and_links_details(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    now = utcnow()
    seed_audit(
        now,
        "query.remote",
        params={"sql": "SELECT * FROM orders WHERE email = 'ana@example.com'", "note": "n" * 300},
        correlation_id="op-7",
    )
    seed_audit(
        now - timedelta(seconds=1),
        "job.run_sync_table",
        resource="job:sync-table:orders",
        params={"args": ["orders"]},
        result="finished",
        client_kind="job",
        correlation_id="sync-table:orders",
    )
    soup = BeautifulSoup(client.get("/admin/activity?since=1h").data, "html.parser")
    query_row = soup.select_one('.timeline-row[data-action="query.remote"]')
    params = query_row.select_one("pre.params").get_text()
    assert "ana@example.com" not in params and "email = ?" in params
    assert "n" * 129 not in params and "(172 more characters)" in params
    assert query_row.select_one(".operation-link")["href"].startswith("/admin/activity?correlation_id=op-7")
    sync_row = soup.select_one('.timeline-row[data-action="job.run_sync_table"]')
    links = [a["href"] for a in sync_row.select(".detail-link")]
    assert links == ["/jobs/sync-table:orders", "/admin/tables/orders"]
    # The stored row keeps the raw value.
    with app.extensions["agnes_state"].read() as con:
        raw = con.execute("SELECT params FROM audit_log WHERE action = 'query.remote'").fetchone()[0]
    assert "ana@example.com" in raw


def test_load_more_answers_the_next_page_fragment(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    for n in range(5):
        seed_audit(utcnow() - timedelta(minutes=n + 1), "bulk.row", params={"n": n})
    page = BeautifulSoup(client.get("/admin/activity?action=bulk.&limit=2").data, "html.parser")
    assert page.select_one("html") is not None
    more = page.select_one("#timeline-more")
    fragment = client.get(more["hx-get"], headers={"HX-Request": "true"})
    assert "HX-Request" in fragment.headers["Vary"]
    soup = BeautifulSoup(fragment.data, "html.parser")
    assert soup.select_one("html") is None
    roots = [el for el in soup.children if getattr(el, "name", None)]
    assert len(roots) == 1 and roots[0]["id"].startswith("timeline-page-")
    assert [li["data-action"] for li in soup.select(".timeline-row")] == ["bulk.row", "bulk.row"]
    # Without htmx, the same URL is the whole page (the link works without JavaScript).
    full = BeautifulSoup(client.get(more["href"]).data, "html.parser")
    assert full.select_one("#timeline-filters") is not None and len(full.select(".timeline-row")) == 2


def test_health_fragment_with_and_without_htmx(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    fragment = BeautifulSoup(client.get("/admin/activity/health", headers={"HX-Request": "true"}).data, "html.parser")
    assert fragment.select_one("html") is None and fragment.select_one("#activity-health") is not None
    full = BeautifulSoup(client.get("/admin/activity/health").data, "html.parser")
    assert full.select_one("html") is not None and full.select_one("#activity-health") is not None


def test_reads_are_audited_once_per_admin_and_filter_per_minute(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    other = bearer(auth.token("second-admin@example.com", admin=True))
    client.get("/api/admin/activity?action=group.", headers=headers)
    first = client.get("/api/admin/activity?action=group.&limit=1", headers=headers).get_json()
    if first["next_cursor"]:
        client.get(f"/api/admin/activity?action=group.&limit=1&cursor={first['next_cursor']}", headers=headers)
    assert audit_count("activity.read") == 1
    client.get("/api/admin/activity?action=user.", headers=headers)
    assert audit_count("activity.read") == 2
    client.get("/api/admin/activity?action=group.", headers=other)
    assert audit_count("activity.read") == 3
    client.get("/api/admin/activity/health", headers=headers)
    client.get("/api/admin/activity/health", headers=headers)
    assert audit_count("activity.read") == 3
    with app.extensions["agnes_state"].read() as con:
        params = con.execute("SELECT params FROM audit_log WHERE action = 'activity.read' LIMIT 1").fetchone()[0]
    assert '"action": "group."' in params


def test_read_dedup_is_shared_through_redis_by_every_process(rq_app: Flask, app_config) -> None:  # type: ignore[no-untyped-def]
    """Two app instances (two web processes) on one Redis write one ``activity.read`` between them."""
    from agnes import create_app
    from tests.conftest import IsolatedClient, redis_url

    other = create_app({**app_config, "REDIS_URL": redis_url()})
    other.test_client_class = IsolatedClient
    from tests.conftest import Auth

    token = Auth(rq_app, rq_app.test_client()).token("admin@example.com", admin=True)
    for application in (rq_app, other, rq_app):
        answer = application.test_client().get("/api/admin/activity?q=zz", headers=bearer(token))
        assert answer.status_code == 200
    assert audit_count("activity.read") == 1
