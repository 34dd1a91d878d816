"""Fleet health from plugin_loaded events: on the served version, behind and since when, never
connected, hook failures, the pulse; the admin page, its JSON twin and the user page section."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup

from tests.claude_code.conftest import log_request, skill_events, synced_marketplace
from tests.conftest import bearer

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _report(**kwargs):  # type: ignore[no-untyped-def]
    from agnes.claude_code.fleet import fleet_report

    return fleet_report(**kwargs)


def _alpha(report):  # type: ignore[no-untyped-def]
    return next(p for p in report.plugins if p.plugin_id == "acme/alpha")


def test_current_behind_since_never_connected_and_the_pulse(app, client, auth, fleet) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("ana@example.com")
    auth.user("bo@example.com")  # granted (system plugin), never connected
    body = log_request(skill_events()).SerializeToString()
    sent = client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(token)})
    assert sent.status_code == 200
    with app.app_context():
        report = _report()
        alpha = _alpha(report)
        assert alpha.required and alpha.version == "1.0.0" and alpha.current == ["ana@example.com"]
        assert "bo@example.com" in alpha.not_loaded and alpha.behind == []
        assert (alpha.hook_failures, alpha.hook_runs) == (1, 1)
        assert "bo@example.com" in report.never_connected and "ana@example.com" not in report.never_connected
        assert report.pulse.status == "green"

    # A new version is served: Ana is behind from now on; a day later the pulse turns yellow.
    synced_marketplace(client, fleet["admin_token"], fleet["repo"], version="1.1.0")
    with app.app_context():
        alpha = _alpha(_report())
        assert alpha.version == "1.1.0" and alpha.current == []
        [lagging] = alpha.behind
        assert (lagging.email, lagging.loaded_version) == ("ana@example.com", "1.0.0")
        assert lagging.behind_since is not None
        assert _report().pulse.status == "green"  # behind for less than a day
        later = _report(now=lagging.behind_since + timedelta(days=1, hours=1))
        assert later.pulse.status == "yellow" and later.pulse.stale_users == 1 and later.pulse.active_users == 1
        from agnes.jobs.health import compute_health

        field = next(
            f for f in compute_health(lagging.behind_since + timedelta(days=2)).fields if f.key == "claude_code_fleet"
        )
        assert (field.status, field.value) == ("yellow", "1 of 1 stale")
        now_field = next(f for f in compute_health().fields if f.key == "claude_code_fleet")
        assert now_field.status == "green" and now_field.label == "Claude Code plugins"
        ana_only = _report(user_id=auth.user("ana@example.com"))
        assert [p.plugin_id for p in ana_only.plugins] == ["acme/alpha"] and ana_only.never_connected == []

    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get("/admin/claude-code").data, "html.parser")
    row = page.select_one('#fleet-plugins tr[data-plugin-id="acme/alpha"]')
    assert row.select_one('[data-count="behind"]').text == "1" and row.select_one('[data-count="current"]').text == "0"
    assert page.select_one('.fleet-behind li[data-email="ana@example.com"]') is not None
    assert page.select_one("#fleet")["data-pulse"] == "green"
    api = client.get("/api/admin/claude-code").get_json()["fleet"]
    assert api["plugins"][0]["behind"][0]["loaded_version"] == "1.0.0"

    user_page = BeautifulSoup(client.get(f"/admin/users/{auth.user('ana@example.com')}").data, "html.parser")
    loaded = user_page.select_one('#user-plugin-loads tr[data-plugin="alpha"]')
    assert loaded["data-status"] == "behind" and "1.1.0" in loaded.text
    bo = BeautifulSoup(client.get(f"/admin/users/{auth.user('bo@example.com')}").data, "html.parser")
    assert "has not reported" in bo.select_one("#user-plugin-loads").text


def test_skill_health_by_claude_or_typed_and_the_flag(app, client, auth, fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agnes.claude_code import skills

    token = auth.token("ana@example.com")
    typed = log_request([{**skill_events()[1], "invocation_trigger": "user-slash"}])
    by_claude = log_request(skill_events()[1:2], start=datetime.now(UTC) - timedelta(minutes=5))
    for request in (typed, typed, by_claude):  # the typed batch is resent: it counts once
        body = request.SerializeToString()
        assert client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(token)}).status_code == 200
    auth.login("ana@example.com")
    item = client.get("/api/marketplace/curated/acme/alpha/skill/alpha-skill").get_json()
    assert item["invocations"] == {"by_claude": 1, "typed": 1, "other": 0, "days": 30}
    page = BeautifulSoup(client.get("/marketplace/curated/acme/alpha/skill/alpha-skill").data, "html.parser")
    stat = page.select_one("#item-invocations")
    assert (stat["data-by-claude"], stat["data-typed"]) == ("1", "1")

    auth.login("admin@example.com", admin=True)
    rows = client.get("/api/admin/claude-code").get_json()["skills"]
    assert rows == [
        {
            "plugin": "acme/alpha",
            "skill": "alpha-skill",
            "served_to": 2,
            "by_claude": 1,
            "typed": 1,
            "other": 0,
            "days": 30,
            "flag": None,
        }
    ]
    # Served widely (here: to 2 people, admin and Ana) and never chosen by Claude: flagged on its row.
    monkeypatch.setattr(skills, "WIDE_USERS", 2)
    with app.app_context():
        from agnes.state import state_store

        with state_store().write() as con:
            con.execute("DELETE FROM otel_events WHERE invocation_trigger = 'claude-proactive'")
    page = BeautifulSoup(client.get("/admin/claude-code").data, "html.parser")
    row = page.select_one('#skill-rows tr[data-skill="acme/alpha:alpha-skill"]')
    assert "flagged" in row["class"] and row.select_one(".skill-flag") is not None
    flagged = client.get("/api/admin/claude-code").get_json()["skills"][0]
    assert flagged["flag"].startswith("Installed widely but never invoked by Claude itself")
