"""``/admin/sessions``: processed sessions with their findings (filters, sort, heatmap), one
transcript replayed with finding markers and its subagents linked, the JSON twins, bad filters,
``sessions.read`` audited once a minute, ``agnes admin sessions list|show`` and, in Chromium,
jumping from the list to a finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from agnes.telemetry.findings import scan_sessions
from agnes.telemetry.processor import process_sessions
from tests.activity.conftest import audit_count
from tests.conftest import CSP_RECORDER, TIMEOUT_MS, BrowserLog, LiveServer, bearer, cli_env, run_cli
from tests.telemetry.conftest import TRANSCRIPTS, upload

SHORT = "55604662-cf2a-4331-851a-ec234028f8ca"
MAIN = "8463c716-a2ea-4c14-9efa-87158ebd9f20"


def _stored(client, auth) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Two processed and scanned sessions of ana (one with subagents); returns (ana's id, admin token)."""
    token = auth.token("ana@example.com")
    assert upload(client, token, SHORT, (TRANSCRIPTS / "short.jsonl").read_bytes()).status_code in (200, 201)
    assert upload(client, token, MAIN, (TRANSCRIPTS / f"{MAIN}.jsonl").read_bytes()).status_code in (200, 201)
    for sub in sorted((TRANSCRIPTS / MAIN / "subagents").glob("agent-a[0-9]*.jsonl")):
        assert upload(client, token, MAIN, sub.read_bytes(), subagent=sub.name).status_code in (200, 201)
    process_sessions()
    scan_sessions()
    return auth.user("ana@example.com"), auth.token("admin@example.com", admin=True)


def test_list_filters_sorts_and_heatmap(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    ana, admin = _stored(client, auth)
    listing = client.get("/api/admin/sessions?sort=findings", headers=bearer(admin)).get_json()
    assert [s["session_id"] for s in listing["sessions"]] == [MAIN, SHORT]
    main = listing["sessions"][0]
    assert main["findings"]["tool_error"] == 13 + 2  # its subagent's errors count for the session
    assert main["user_email"] == "ana@example.com" and main["primary_model"] == "claude-opus-4-6"
    only = client.get("/api/admin/sessions?type=interrupted", headers=bearer(admin)).get_json()
    assert [s["session_id"] for s in only["sessions"]] == [SHORT]
    by_user = client.get("/api/admin/sessions?user=ana@example.com&model=claude-opus-4-6", headers=bearer(admin))
    assert by_user.get_json()["total"] == 2
    assert client.get("/api/admin/sessions?user=nobody@example.com", headers=bearer(admin)).get_json()["total"] == 0
    for query, field in (("type=bogus", "type"), ("since=later", "since"), ("sort=size", "sort")):
        bad = client.get(f"/api/admin/sessions?{query}", headers=bearer(admin))
        assert bad.status_code == 400 and bad.get_json()["field"] == field
    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get("/admin/sessions").data, "html.parser")
    assert page.select_one("#findings-heatmap svg title").get_text() == "Failure findings by type and week"
    assert len(page.select("#sessions-table tr[data-session]")) == 2
    assert client.get("/admin/sessions?since=later").status_code == 422
    fragment = BeautifulSoup(client.get("/admin/sessions", headers={"HX-Request": "true"}).data, "html.parser")
    assert fragment.select_one("html") is None and fragment.select_one("#sessions-table") is not None


def test_a_session_replays_with_its_findings(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    ana, admin = _stored(client, auth)
    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get(f"/admin/sessions/{ana}/{SHORT}").data, "html.parser")
    marked = page.select("#transcript .turn.has-finding")
    assert {li["data-line"] for li in marked} >= {"11", "12", "13"}
    rejection = page.select_one("#finding-user_rejection a")
    assert rejection["href"] == "#line-11" and page.select_one("#line-11") is not None
    assert audit_count("sessions.read") == 1
    client.get(f"/admin/sessions/{ana}/{SHORT}")
    assert audit_count("sessions.read") == 1  # once a minute per admin and file
    main = BeautifulSoup(client.get(f"/admin/sessions/{ana}/{MAIN}").data, "html.parser")
    links = [a["href"] for a in main.select("#session-files .subagent-link")]
    assert links and all(link.startswith(f"/admin/sessions/{ana}/{MAIN}/subagents/agent-") for link in links)
    sub = BeautifulSoup(client.get(links[0]).data, "html.parser")
    assert sub.select_one("#session-page")["data-path"].endswith(links[0].rsplit("/", 1)[1])
    detail = client.get(f"/api/admin/sessions/{ana}/{SHORT}", headers=bearer(admin)).get_json()
    assert {f["finding_type"] for f in detail["findings"]} >= {"tool_error", "user_rejection", "interrupted"}
    assert (
        client.get(f"/api/admin/sessions/{ana}/00000000-0000-4000-8000-000000000000", headers=bearer(admin)).status_code
        == 404
    )
    # The timeline links a sessions.read row to the session.
    timeline = BeautifulSoup(
        client.get(f"/admin/activity?action=sessions.read&resource=session:{ana}/{SHORT}").data, "html.parser"
    )
    row = timeline.select_one('.timeline-row[data-action="sessions.read"]')
    assert [a["href"] for a in row.select(".detail-link")] == [f"/admin/sessions/{ana}/{SHORT}"]


def test_sessions_from_the_cli(app: Flask, live_server: LiveServer, client, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ana, admin = _stored(client, auth)
    env = cli_env(live_server.url, admin, tmp_path)
    listed = run_cli(["admin", "sessions", "list", "--type", "interrupted", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert [s["session_id"] for s in json.loads(listed.stdout)["sessions"]] == [SHORT]
    shown = run_cli(["admin", "sessions", "show", ana, SHORT], env)
    assert shown.returncode == 0 and "user_rejection" in shown.stdout and "interrupted" in shown.stdout


@pytest.mark.browser
def test_jump_to_a_finding(live_server, browser, client, auth) -> None:  # type: ignore[no-untyped-def]
    ana, _ = _stored(client, auth)
    auth.login("admin@example.com", admin=True)
    cookie = client.get_cookie("agnes_session")
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(CSP_RECORDER)
    context.add_cookies([{"name": "agnes_session", "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    log = BrowserLog()
    log.attach(page)
    page.goto("/admin/sessions?type=user_rejection")
    page.click(f'#sessions-table tr[data-session="{SHORT}"] a.finding-user_rejection')
    page.wait_for_url(f"**/admin/sessions/{ana}/{SHORT}#finding-user_rejection")
    page.click("#finding-user_rejection a.finding-link")
    page.wait_for_url("**#line-11")
    target = page.locator("#line-11")
    assert target.is_visible() and "user_rejection" in target.locator(".finding-marker").inner_text()
    assert page.evaluate("document.querySelector(':target').id") == "line-11"
    log.assert_clean(page)
    context.close()
