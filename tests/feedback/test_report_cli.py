"""``agnes report`` against a live server: the report, its audit row, the inbox and the timeline;
the session excerpt bundled (redacted) from a Claude Code transcript; no terminal and no
``--yes`` sends nothing (exit 2); a private session is never bundled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from tests.activity.conftest import audit_count
from tests.conftest import LiveServer, cli_env, run_cli

SESSION = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


@pytest.fixture
def app_config(app_config, smtp):  # type: ignore[no-untyped-def]
    """Admins are notified through the loopback SMTP stub."""
    app_config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_STARTTLS=False)
    return app_config


def _transcript(home: Path, workspace: Path) -> Path:
    """A small Claude Code transcript of ``workspace``'s project with a failing tool call."""
    folder = (
        home / ".claude" / "projects" / str(workspace.resolve()).replace("/", "-").replace(".", "-").replace("_", "-")
    )
    folder.mkdir(parents=True)
    lines = [
        {"type": "user", "version": "2.1.9", "message": {"role": "user", "content": "deploy the app"}},
        {
            "type": "assistant",
            "version": "2.1.9",
            "message": {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "git push"}}],
            },
        },
        {
            "type": "user",
            "version": "2.1.9",
            "message": {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": "fatal: token ghp_abcdefgh12345678 rejected",
                    }
                ],
            },
        },
    ]
    path = folder / f"{SESSION}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + "{not json\n")
    return path


def test_agnes_report_sends_a_report_seen_by_admins(
    app: Flask, live_server: LiveServer, auth, client, smtp, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    workspace = tmp_path / "work"
    workspace.mkdir(parents=True)
    _transcript(home, workspace)
    env = cli_env(live_server.url, auth.token("ana@example.com"), home)

    unattended = run_cli(["report", "--message", "test"], env, cwd=workspace)
    assert unattended.returncode == 2 and "nothing sent" in unattended.stderr
    assert audit_count("feedback.create") == 0

    sent = run_cli(["report", "--message", "test", "--yes"], env, cwd=workspace)
    assert sent.returncode == 0, sent.stderr
    assert "ghp_abcdefgh12345678" not in sent.stdout and '"session_id": "' + SESSION in sent.stdout
    report_id = sent.stdout.rsplit("Sent report ", 1)[1].split(".")[0]
    from agnes import feedback

    report = feedback.get_report(report_id)
    assert report.message == "test" and report.session_id == SESSION
    assert [t["role"] for t in report.excerpt] == ["user", "assistant", "tool"]
    assert report.excerpt[-1]["is_error"] and "[redacted]" in report.excerpt[-1]["text"]
    assert report.environment["claude_code"] == "2.1.9" and report.ack_preview.startswith("{")
    assert audit_count("feedback.create") == 1
    app.extensions["agnes_jobs"].wait_idle()  # the notification job
    mails = [(rcpt, m.get_payload(decode=True).decode()) for rcpt, m in smtp.messages]
    assert [rcpt for rcpt, _ in mails] == [["admin@example.com"]] and f"/admin/feedback/{report_id}" in mails[0][1]

    auth.login("admin@example.com", admin=True)
    inbox = BeautifulSoup(client.get("/admin/feedback").data, "html.parser")
    assert inbox.select_one(f'#feedback-reports tr[data-id="{report_id}"]') is not None
    timeline = BeautifulSoup(client.get("/admin/activity?action=feedback.").data, "html.parser")
    row = timeline.select_one('.timeline-row[data-action="feedback.create"]')
    assert [a["href"] for a in row.select(".detail-link")] == [f"/admin/feedback/{report_id}"]
    assert client.get(row.select_one(".detail-link")["href"]).status_code == 200  # the row opens its report

    # A session marked private in the workspace is not bundled; --no-session sends none either.
    (workspace / ".claude").mkdir()
    (workspace / ".claude" / "agnes-sessions-private.txt").write_text(SESSION + "\n")
    private = run_cli(["report", "-m", "again", "--yes"], env, cwd=workspace)
    assert private.returncode == 0 and "marked private" in private.stderr and '"excerpt"' not in private.stdout
    bare = run_cli(["report", "-m", "third", "--yes", "--no-session"], env, cwd=workspace)
    assert bare.returncode == 0 and '"session_id"' not in bare.stdout
