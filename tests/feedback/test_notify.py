"""Notifications: a new report emails every admin (loopback SMTP) and posts to the webhook; at
most one message per admin per 5 minutes, the rest in a digest; the health pulse turning red is
notified once per transition; a failed send is recorded and never fails the report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from agnes import feedback, notify
from agnes.models import utcnow
from tests.activity.conftest import audit_count
from tests.conftest import bearer


def text(message) -> str:  # type: ignore[no-untyped-def]
    return message["Subject"] + "\n" + message.get_payload(decode=True).decode()


@pytest.fixture
def app_config(app_config, smtp, webhook):  # type: ignore[no-untyped-def]
    app_config.update(
        SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_STARTTLS=False, AGNES_NOTIFY_WEBHOOK_URL=webhook.url
    )
    return app_config


def test_a_report_reaches_every_admin_and_the_webhook_once_per_window(app: Flask, client, auth, smtp, webhook) -> None:  # type: ignore[no-untyped-def]
    auth.user("admin@example.com", admin=True)
    auth.user("second@example.com", admin=True)
    headers = bearer(auth.token("ana@example.com"))
    answer = client.post("/api/feedback", json={"message": "The orders table is empty"}, headers=headers)
    assert answer.status_code == 201
    app.extensions["agnes_jobs"].wait_idle()  # start_notify ran on the embedded pool
    assert sorted(r for rcpt, _ in smtp.messages for r in rcpt) == ["admin@example.com", "second@example.com"]
    first = text(smtp.messages[0][1])
    assert "The orders table is empty" in first and f"/admin/feedback/{answer.get_json()['id']}" in first
    assert len(webhook.bodies) == 1
    assert any(e["kind"] == "feedback" for e in webhook.bodies[0]["events"])

    # A second report within 5 minutes waits; after the window both admins get one message with it.
    client.post("/api/feedback", json={"message": "And the sales table too"}, headers=headers)
    app.extensions["agnes_jobs"].wait_idle()
    assert len(smtp.messages) == 2 and len(webhook.bodies) == 1
    later = notify.deliver(utcnow() + timedelta(minutes=6))
    assert later["sent"] == 3
    assert len(smtp.messages) == 4 and "And the sales table too" in text(smtp.messages[-1][1])
    assert notify.deliver(utcnow() + timedelta(minutes=20))["sent"] == 0  # nothing new


def test_health_turning_red_is_notified_once_per_transition(app: Flask) -> None:
    assert notify.watch_health("green", "All good.") is False
    assert notify.watch_health("red", "1 red (Scheduler).") is True
    assert notify.watch_health("red", "1 red (Scheduler).") is False
    assert notify.watch_health("yellow", "1 yellow.") is False
    assert notify.watch_health("red", "again") is True
    with app.extensions["agnes_state"].read() as con:
        kinds = con.execute("SELECT kind, body FROM notification_events ORDER BY created_at").fetchall()
    assert kinds == [("health", "1 red (Scheduler)."), ("health", "again")]


def test_a_failed_send_is_recorded_and_never_fails_the_report(app: Flask, client, auth, smtp, webhook) -> None:  # type: ignore[no-untyped-def]
    auth.user("admin@example.com", admin=True)
    smtp.close()  # nothing listens on the SMTP port any more
    webhook.status = 500
    answer = client.post("/api/feedback", json={"message": "Broken"}, headers=bearer(auth.token("ana@example.com")))
    assert answer.status_code == 201
    app.extensions["agnes_jobs"].wait_idle()
    assert feedback.get_report(answer.get_json()["id"]).status == "open"
    with app.extensions["agnes_state"].read() as con:
        errors = dict(con.execute("SELECT recipient, last_error FROM notification_deliveries").fetchall())
    assert errors["webhook"] == "the webhook answered 500"
    assert webhook.url not in str(errors)
    admin_errors = [e for r, e in errors.items() if r != "webhook"]
    assert admin_errors and all(admin_errors)
    assert audit_count("notify.failed") == 2
