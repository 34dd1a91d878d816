"""Feedback reports: ``POST /api/feedback`` and its refusals (nothing written), duplicates by
fingerprint, triage transitions (a refused one changes nothing), purge, the reporter's view on
``/me`` and ``feedback.read`` written once per admin and report per minute."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from agnes import feedback
from tests.activity.conftest import audit_count
from tests.conftest import bearer, csrf_token

SESSION = "8463c716-1234-4abc-8def-0123456789ab"


def _tables() -> tuple[int, int]:
    from agnes.state import state_store

    with state_store().read() as con:
        reports = con.execute("SELECT count(*) FROM feedback_reports").fetchone()[0]
        audit = con.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    return reports, audit


def test_a_report_is_stored_redacted_with_its_audit_row(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("ana@example.com"))
    excerpt = [
        {"role": "user", "text": "deploy it"},
        {
            "role": "tool",
            "tool": "Bash",
            "text": "fatal: auth failed for https://x:ghp_abcdefghij1234@github.com/a.git",
            "is_error": True,
        },
    ]
    answer = client.post(
        "/api/feedback",
        json={
            "message": "Push fails, my token is agnes_pat_abcdefgh12345678",
            "session_id": SESSION.upper(),
            "excerpt": excerpt,
            "environment": {"agnes": "0.1.0", "claude_code": "2.1.3", "os": "Linux", "unknown": "dropped"},
            "ack_preview": "shown",
        },
        headers=headers,
    )
    assert answer.status_code == 201, answer.get_json()
    report = feedback.get_report(answer.get_json()["id"])
    assert report.session_id == SESSION and report.status == "open"
    assert "agnes_pat_abcdefgh" not in report.message and "[redacted]" in report.message
    assert "ghp_abcdefghij1234" not in str(report.excerpt)
    assert report.environment == {"agnes": "0.1.0", "claude_code": "2.1.3", "os": "Linux"}
    assert audit_count("feedback.create") == 1
    mine = client.get("/api/feedback", headers=headers).get_json()["reports"]
    assert [r["id"] for r in mine] == [report.id]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"message": ""}, 400, "message"),
        ({"message": "   "}, 400, "message"),
        ({"message": 7}, 400, "message"),
        ({"message": "x" * 5001}, 400, "message"),
        ({"message": "ok", "excerpt": [{"text": "y" * 300_000}]}, 413, "excerpt"),
        ({"message": "ok", "excerpt": "not a list"}, 400, "excerpt"),
        ({"message": "ok", "session_id": "../../etc"}, 400, "session_id"),
        ({"message": "ok", "environment": ["x"]}, 400, "environment"),
    ],
)
def test_bad_reports_are_refused_and_write_nothing(app: Flask, client, auth, body, status, field) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("ana@example.com"))
    before = _tables()
    answer = client.post("/api/feedback", json=body, headers=headers)
    assert answer.status_code == status
    assert answer.get_json()["field"] == field
    reports, audit = _tables()
    assert reports == before[0]
    # A refused request is audited as refused (with its status), but no report row exists.
    assert audit == before[1] + 1


def test_duplicates_share_a_fingerprint(app: Flask, auth) -> None:  # type: ignore[no-untyped-def]
    ana = auth.user("ana@example.com")
    error = [{"role": "tool", "text": "Error: table 1234 not found (request 0x1f2e)", "is_error": True}]
    first = feedback.create_report(ana, message="Query fails", excerpt=error)
    again = feedback.create_report(
        ana,
        message="query  FAILS",
        excerpt=[{"role": "tool", "text": "Error: table 98 not found (request 0xabc)", "is_error": True}],
    )
    other = feedback.create_report(
        ana, message="Query fails", excerpt=[{"role": "tool", "text": "timeout", "is_error": True}]
    )
    assert first.fingerprint == again.fingerprint != other.fingerprint


def test_triage_moves_and_refusals_change_nothing(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(auth.token("admin@example.com", admin=True))
    ana = auth.user("ana@example.com")
    report = feedback.create_report(ana, message="Broken")
    url = f"/api/admin/feedback/{report.id}"
    assigned = client.post(f"{url}/assign", headers=admin).get_json()
    assert (assigned["status"], assigned["assignee_email"]) == ("triaged", "admin@example.com")
    refused = client.post(f"{url}/resolve", json={"resolution": "  "}, headers=admin)
    assert refused.status_code == 400 and refused.get_json()["field"] == "resolution"
    resolved = client.post(f"{url}/resolve", json={"resolution": "Fixed in 0.2"}, headers=admin).get_json()
    assert resolved["status"] == "resolved" and resolved["resolution"] == "Fixed in 0.2"
    before = feedback.get_report(report.id)
    for action in ("wontfix", "resolve"):
        answer = client.post(f"{url}/{action}", json={"resolution": "again"}, headers=admin)
        assert answer.status_code == 422 and answer.get_json()["error"] == "transition_not_allowed"
    assert feedback.get_report(report.id) == before
    reopened = client.post(f"{url}/reopen", headers=admin).get_json()
    assert reopened["status"] == "open" and reopened["resolution"] is None
    assert client.post(f"{url}/reopen", headers=admin).status_code == 422
    tagged = client.post(f"{url}/tags", json={"tags": ["CLI", "cli", "auth"]}, headers=admin).get_json()
    assert tagged["tags"] == ["auth", "cli"]
    assert client.post(f"{url}/tags", json={"tags": ["no spaces allowed"]}, headers=admin).status_code == 400
    assert client.get("/api/admin/feedback?tag=auth", headers=admin).get_json()["total"] == 1
    assert client.post(f"{url}/explode", headers=admin).status_code == 404
    assert client.post("/api/admin/feedback/nope/reopen", headers=admin).status_code == 404
    actions = ["feedback.assign", "feedback.resolve", "feedback.reopen", "feedback.tag"]
    assert all(audit_count(a) == 1 for a in actions)


def test_purge_removes_the_excerpt_and_keeps_the_message(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    admin = bearer(auth.token("admin@example.com", admin=True))
    report = feedback.create_report(
        auth.user("ana@example.com"), message="Slow", excerpt=[{"role": "user", "text": "x"}], ack_preview="p"
    )
    purged = client.post(f"/api/admin/feedback/{report.id}/purge-excerpt", headers=admin).get_json()
    assert purged["excerpt"] is None and purged["ack_preview"] is None and purged["excerpt_purged_at"]
    assert purged["message"] == "Slow"


def test_inbox_pages_and_the_reporters_profile(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    ana = auth.user("ana@example.com")
    first = feedback.create_report(ana, message="One")
    feedback.create_report(ana, message="Two")
    feedback.resolve(first.id, "Done", ana)
    auth.login("admin@example.com", admin=True)
    inbox = BeautifulSoup(client.get("/admin/feedback").data, "html.parser")
    counts = {
        a["data-status"]: a.select_one(".count").get_text() for a in inbox.select("#feedback-counts a[data-status]")
    }
    assert counts == {"open": "1", "triaged": "0", "resolved": "1", "wontfix": "0"}
    resolved = BeautifulSoup(client.get("/admin/feedback?status=resolved").data, "html.parser")
    assert [tr["data-id"] for tr in resolved.select("#feedback-reports tr[data-id]")] == [first.id]
    fragment = BeautifulSoup(client.get("/admin/feedback", headers={"HX-Request": "true"}).data, "html.parser")
    assert fragment.select_one("html") is None and fragment.select_one("#feedback-reports") is not None
    # Opening a report is audited once per minute per admin; the triage panel is its fragment.
    client.get(f"/admin/feedback/{first.id}")
    panel = BeautifulSoup(client.get(f"/admin/feedback/{first.id}", headers={"HX-Request": "true"}).data, "html.parser")
    assert panel.select_one("html") is None and panel.select_one("#feedback-triage")["data-status"] == "resolved"
    assert audit_count("feedback.read") == 1
    # The reporter sees the status on /me.
    auth.login("ana@example.com")
    mine = BeautifulSoup(client.get("/me").data, "html.parser")
    assert mine.select_one(f'#my-feedback tr[data-id="{first.id}"]')["data-status"] == "resolved"


def test_the_page_refuses_a_transition_in_place(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    report = feedback.create_report(auth.user("ana@example.com"), message="Broken")
    feedback.wontfix(report.id, "", auth.user("admin@example.com"))
    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, f"/admin/feedback/{report.id}")
    answer = client.post(
        f"/admin/feedback/{report.id}/resolve",
        data={"csrf_token": token, "resolution": "x"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 422
    panel = BeautifulSoup(answer.data, "html.parser")
    assert "cannot become resolved" in panel.select_one("#triage-error").get_text()
    assert feedback.get_report(report.id).status == "wontfix"
    plain = client.post(f"/admin/feedback/{report.id}/reopen", data={"csrf_token": token})
    assert plain.status_code == 303 and plain.headers["Location"].endswith(f"/admin/feedback/{report.id}")


def test_a_report_about_a_private_session_is_409_and_writes_nothing(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    token = auth.token("ana@example.com")
    assert client.post(f"/api/sessions/{SESSION}/private", headers=bearer(token)).status_code == 200
    before = _tables()
    answer = client.post("/api/feedback", json={"message": "Broken", "session_id": SESSION}, headers=bearer(token))
    assert answer.status_code == 409 and answer.get_json()["error"] == "session_private"
    assert _tables()[0] == before[0]


def test_a_report_links_to_its_uploaded_transcript(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    from tests.telemetry.conftest import TRANSCRIPTS, upload

    token = auth.token("ana@example.com")
    session = "55604662-cf2a-4331-851a-ec234028f8ca"
    assert upload(client, token, session, (TRANSCRIPTS / "short.jsonl").read_bytes()).status_code in (200, 201)
    report = feedback.create_report(auth.user("ana@example.com"), message="It stopped", session_id=session)
    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get(f"/admin/feedback/{report.id}").data, "html.parser")
    assert page.select_one("#feedback-transcript")["href"] == f"/admin/sessions/{report.reporter_id}/{session}"
