"""Jobs: the enqueue path on real Redis (SimpleWorker in-process) and embedded, and the status fragment."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup
from flask import Flask

from agnes.jobs import JobState, enqueue, get_job, retry_job
from agnes.jobs.groups import run_recompute_group_member_counts
from agnes.models import groups
from agnes.state import state_store
from tests.conftest import Auth, bearer, csrf_token, run_rq_jobs
from tests.jobs.conftest import run_always_fails, run_flaky, run_with_progress


def fragment_of(client, job_id: str) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    response = client.get(f"/jobs/{job_id}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    return BeautifulSoup(response.data, "html.parser")


def test_recount_job_on_rq_with_simpleworker(rq_app: Flask) -> None:
    client = rq_app.test_client()
    auth = Auth(rq_app, client)
    auth.user("ana@example.com")
    auth.login("admin@example.com")
    token = csrf_token(client, "/admin/groups")
    response = client.post("/admin/groups/recount", data={"csrf_token": token}, headers={"HX-Request": "true"})
    soup = BeautifulSoup(response.data, "html.parser")
    status = soup.select_one(".job-status")
    assert status["data-state"] == "queued" and status.get("hx-trigger") == "every 1s"
    job_id = "recompute-group-member-counts"
    # One in flight: a second click returns the same queued job, not a second one.
    assert enqueue(run_recompute_group_member_counts, job_id=job_id).state is JobState.QUEUED
    assert rq_app.extensions["agnes_jobs"].queue.count == 1
    run_rq_jobs(rq_app)
    done = fragment_of(client, job_id).select_one(".job-status")
    assert done["data-state"] == "finished" and done.get("hx-trigger") is None
    with state_store().read() as con:
        everyone = groups.get_group(con, "everyone")
        admin = groups.get_group(con, "admin")
    assert everyone.counted_member_count == 2 and admin.counted_member_count == 1 and admin.counted_at
    api = client.get(f"/api/jobs/{job_id}").get_json()
    assert api["state"] == "finished" and api["result"] == {"Admin": 1, "Everyone": 2}
    with state_store().read() as con:
        row = con.execute(
            "SELECT result, client_kind FROM audit_log WHERE action = 'job.run_recompute_group_member_counts'"
        ).fetchone()
    assert row == ("finished", "job")


def test_failed_job_shows_error_and_retry(rq_app: Flask, tmp_path: Path) -> None:
    client = rq_app.test_client()
    Auth(rq_app, client).login("admin@example.com")
    marker = tmp_path / "marker"
    job = enqueue(run_flaky, str(marker), job_id="flaky")
    run_rq_jobs(rq_app)
    failed = fragment_of(client, job.id).select_one(".job-status")
    assert failed["data-state"] == "failed" and failed.get("hx-trigger") is None
    assert "first attempt fails" in failed.select_one(".job-error").text
    retry_form = failed.select_one("form")
    response = client.post(
        retry_form["action"], data={"csrf_token": csrf_token(client, "/admin/groups")}, headers={"HX-Request": "true"}
    )
    assert BeautifulSoup(response.data, "html.parser").select_one(".job-status")["data-state"] == "queued"
    run_rq_jobs(rq_app)
    assert get_job("flaky").state is JobState.FINISHED


def test_job_errors_are_redacted(rq_app: Flask) -> None:
    enqueue(run_always_fails, job_id="fails")
    run_rq_jobs(rq_app)
    status = get_job("fails")
    assert status.state is JobState.FAILED and "SECRETSECRET" not in status.error


def test_progress_is_reported(rq_app: Flask) -> None:
    enqueue(run_with_progress, 3, job_id="progress")
    run_rq_jobs(rq_app)
    status = get_job("progress")
    assert status.progress == {"done": 3, "total": 3, "message": "step 3"} and status.result == 3


def test_embedded_jobs_run_in_process_with_visible_status(app: Flask, client, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert app.config["REDIS_URL"] == ""
    auth.login("admin@example.com")
    response = client.post("/admin/groups/recount", data={"csrf_token": csrf_token(client, "/admin/groups")})
    assert response.status_code == 303
    app.extensions["agnes_jobs"].wait_idle()
    status = client.get("/api/jobs/recompute-group-member-counts").get_json()
    assert status["state"] == "finished" and status["result"]["Admin"] == 1
    failing = enqueue(run_flaky, str(tmp_path / "m"), job_id="embedded-flaky")
    app.extensions["agnes_jobs"].wait_idle()
    assert get_job(failing.id).state is JobState.FAILED
    retry_job(failing.id)
    app.extensions["agnes_jobs"].wait_idle()
    assert get_job(failing.id).state is JobState.FINISHED


def test_job_status_page_and_permissions(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    admin_token = auth.token("admin@example.com")
    client.post("/admin/groups/recount", headers=bearer(admin_token))
    app.extensions["agnes_jobs"].wait_idle()
    page = client.get("/jobs/recompute-group-member-counts", headers=bearer(admin_token))
    soup = BeautifulSoup(page.data, "html.parser")
    assert soup.find("html") is not None and soup.select_one("#job-page .job-status") is not None
    analyst = auth.token("analyst@example.com")
    assert client.get("/api/jobs/recompute-group-member-counts", headers=bearer(analyst)).status_code == 403
    assert client.get("/api/jobs/nope", headers=bearer(admin_token)).status_code == 404
