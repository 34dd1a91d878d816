"""Errors are told in words for people: pages, the JSON API and the CLI never show Python class
names or tracebacks, and the CLI prints ``error: <message>`` on stderr and exits non-zero."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from agnes.errors import UNEXPECTED, human_message, message_from_traceback
from tests.conftest import bearer, cli_env, run_cli, run_rq_jobs
from tests.marketplace.conftest import register

# What a Python class name or traceback looks like in a message.
CLASS_NAME = re.compile(r"\b(?:[a-z_]+\.)+[A-Z]\w+|\b\w*(?:Error|Exception)\b(?!s)|Traceback")


def _formatted(exc: BaseException) -> str:
    try:
        raise exc
    except BaseException as raised:  # noqa: BLE001 - the point is to format it
        return "".join(traceback.format_exception(raised))


def test_messages_from_tracebacks_and_exceptions_carry_no_class_names() -> None:
    from agnes.marketplace.sync import SyncError

    assert message_from_traceback(_formatted(SyncError("the host name does not resolve"))) == (
        "the host name does not resolve"
    )
    chained = _formatted(ValueError("outer: keeps its own colon"))
    assert message_from_traceback(chained) == "outer: keeps its own colon"
    assert message_from_traceback(_formatted(RuntimeError())) == UNEXPECTED
    assert message_from_traceback("Work-horse terminated unexpectedly; waitpid returned 9 (signal 9); ") == (
        "the worker process running this job stopped unexpectedly (signal 9)"
    )
    assert message_from_traceback("") == ""
    assert human_message(FileNotFoundError(2, "No such file or directory", "/srv/x.csv")) == (
        "no such file or directory: /srv/x.csv"
    )
    assert human_message(KeyError("location")) == "missing key 'location'"
    assert human_message(TimeoutError()) == "timed out"
    assert human_message(RuntimeError("line one\nline two")) == "line one"


def _assert_human(text: str) -> None:
    assert text and not CLASS_NAME.search(text), f"class name or traceback in {text!r}"


def _register_vanishing(client, headers: dict[str, str], path: Path) -> None:  # type: ignore[no-untyped-def]
    """Register a repository, then remove it (a missing path is refused at registration)."""
    import shutil

    from tests.marketplace.conftest import small_marketplace

    register(client, headers, "broken", small_marketplace(path))
    shutil.rmtree(path)


def _failing_marketplace(client, headers: dict[str, str], tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    _register_vanishing(client, headers, tmp_path / "no-such-repository")
    started = client.post("/api/marketplaces/broken/sync", headers=headers)
    assert started.status_code == 202, started.get_json()
    return started.get_json()["job"]["id"]


def _check_pages(client, headers: dict[str, str], job_id: str) -> str:  # type: ignore[no-untyped-def]
    status = client.get(f"/api/jobs/{job_id}", headers=headers).get_json()
    assert status["state"] == "failed"
    _assert_human(status["error"])
    fragment = BeautifulSoup(client.get(f"/jobs/{job_id}", headers=headers).data, "html.parser")
    _assert_human(fragment.select_one(".job-error").get_text())
    page = BeautifulSoup(client.get("/admin/marketplaces/broken", headers=headers).data, "html.parser")
    shown = page.select_one(".error")
    assert shown is not None
    _assert_human(shown.get_text())
    detail = client.get("/api/marketplaces/broken", headers=headers).get_json()
    _assert_human(detail["last_error"])
    return status["error"]


def test_a_failed_rq_job_reads_like_a_sentence(rq_app: Flask, tmp_path: Path) -> None:
    from agnes.auth.pat import create_pat
    from agnes.people import ensure_seed_admin

    _, raw = create_pat(ensure_seed_admin("admin@example.com").id, "t", 1)
    client, headers = rq_app.test_client(), bearer(raw)
    job_id = _failing_marketplace(client, headers, tmp_path)
    run_rq_jobs(rq_app)
    message = _check_pages(client, headers, job_id)
    assert message.startswith("repository not found: ")
    from agnes.jobs.backends import rq_job_id
    from agnes.state import state_store

    with state_store().read() as con:
        [(params,)] = con.execute(
            "SELECT params FROM audit_log WHERE resource = ? AND result = 'failed'", [f"job:{rq_job_id(job_id)}"]
        ).fetchall()
    _assert_human(str(params))


def test_a_failed_embedded_job_reads_like_a_sentence(app: Flask, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    headers = bearer(auth.token("admin@example.com", admin=True))
    job_id = _failing_marketplace(client, headers, tmp_path)
    app.extensions["agnes_jobs"].wait_idle()
    _check_pages(client, headers, job_id)


def test_cli_errors_are_one_lowercase_line_on_stderr(live_server, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path / "home")
    _register_vanishing(live_server.app.test_client(), bearer(auth.token("admin@example.com")), tmp_path / "nope")
    failed = run_cli(["admin", "marketplace", "sync", "broken", "--wait"], env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert failed.stderr.startswith("error: sync failed: ") and failed.stderr.count("\n") == 1, failed.stderr
    _assert_human(failed.stderr)
    usage = run_cli(["admin", "marketplace", "sync"], env)  # neither a slug nor --all
    assert usage.returncode == 2 and usage.stderr.splitlines()[-1] == "error: give a SLUG or --all"
    unknown = run_cli(["admin", "group", "members", "nope"], env)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: no group named 'nope'")
    for result in (failed, usage, unknown):
        assert "Error:" not in result.stderr and "Traceback" not in result.stderr


def test_an_unexpected_cli_failure_is_one_line_too(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import cli.main as entry

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("the workspace database is locked")

    monkeypatch.setattr(entry.cli, "main", explode)
    monkeypatch.delenv("AGNES_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        entry.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the workspace database is locked (run again with AGNES_DEBUG=1")
    monkeypatch.setenv("AGNES_DEBUG", "1")
    with pytest.raises(RuntimeError):
        entry.main()
