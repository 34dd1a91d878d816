"""Notifications to admins: new feedback reports and the health pulse turning red.

An event is written with :func:`record_event` inside the write unit of what it is about (a
report), so it exists exactly when the change does. :func:`deliver` (job ``run_notify``, every
minute and right after a report) sends each recipient the events it has not had:

* every active admin by email through the configured SMTP (``AGNES_NOTIFY_EMAIL``, ``SMTP_HOST``),
  **at most one message per admin per** :data:`WINDOW`: one event is sent as itself, several as
  one digest; events arriving within the window wait for the next run after it;
* the webhook ``AGNES_NOTIFY_WEBHOOK_URL`` (a JSON POST ``{"events": [...], "text": ...}``), with
  the same window.

A failed send is recorded (``notification_deliveries.last_error`` and a ``notify.failed`` audit
row) and retried after the window; it never fails the report that caused it. The webhook's URL
is a secret: it is never logged or stored.

:func:`watch_health` turns a pulse that became red into one event per transition (the last
status is kept in the shared cache).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from duckdb import DuckDBPyConnection
from flask import current_app

from agnes.audit import redact_text, write_audit
from agnes.cache import shared_cache
from agnes.mail import MailError, mail_configured, send_email
from agnes.models import groups as groups_model
from agnes.models import notifications as model
from agnes.models import utcnow
from agnes.models.notifications import Delivery, NotificationEvent
from agnes.state import state_store
from agnes.urls import base_url

log = logging.getLogger(__name__)

# At most one message per recipient in this window; later events go in the next digest.
WINDOW = timedelta(minutes=5)
# A recipient seen for the first time gets the events of this last stretch, not the whole history.
FIRST_LOOKBACK = timedelta(hours=1)
# Seconds to wait for the webhook.
WEBHOOK_TIMEOUT = 10
WEBHOOK = "webhook"
HEALTH_KEY = "notify:health-status"


def record_event(con: DuckDBPyConnection, kind: str, subject: str, body: str, link: str | None = None) -> str:
    """Queue a notification inside the caller's write unit; returns its id."""
    return model.insert_event(con, kind, subject[:200], body[:4000], link)


def _compose(events: list[NotificationEvent]) -> tuple[str, str]:
    root = base_url().rstrip("/")
    if len(events) == 1:
        event = events[0]
        return f"[Agnes] {event.subject}", event.body + (f"\n\n{root}{event.link}" if event.link else "") + "\n"
    lines = [f"{len(events)} things happened in Agnes:\n"]
    for event in events:
        lines.append(
            f"- {event.created_at:%Y-%m-%d %H:%M} UTC  {event.subject}"
            + (f"\n  {root}{event.link}" if event.link else "")
        )
    return f"[Agnes] {len(events)} notifications", "\n".join(lines) + "\n"


def _recipients(con: DuckDBPyConnection) -> dict[str, str]:
    """recipient -> address: active admins (when email is on and SMTP configured), and the webhook."""
    found: dict[str, str] = {}
    config = current_app.config
    if config["AGNES_NOTIFY_EMAIL"] and mail_configured():
        for member in groups_model.list_members(con, "admin"):
            if member.active and member.email:
                found[member.user_id] = member.email
    if config["AGNES_NOTIFY_WEBHOOK_URL"]:
        found[WEBHOOK] = config["AGNES_NOTIFY_WEBHOOK_URL"]
    return found


def _send(recipient: str, address: str, events: list[NotificationEvent]) -> None:
    subject, body = _compose(events)
    if recipient != WEBHOOK:
        send_email(address, subject, body)
        return
    payload: dict[str, Any] = {
        "text": f"{subject}\n{body}",
        "events": [
            {
                "kind": e.kind,
                "subject": e.subject,
                "body": e.body,
                "link": e.link,
                "created_at": e.created_at.isoformat(),
            }
            for e in events
        ],
    }
    # httpx costs ~40 ms to import: loaded by the notification job only, not by every web process.
    import httpx

    try:
        answer = httpx.post(address, json=payload, timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as exc:
        raise MailError(f"the webhook could not be reached ({type(exc).__name__})") from None
    if answer.status_code >= 400:
        raise MailError(f"the webhook answered {answer.status_code}")


def deliver(now: datetime | None = None) -> dict[str, int]:
    """Send every recipient its pending events (see the module doc). Returns ``sent``,
    ``failed``, ``waiting`` (recipients inside their window) and ``events``."""
    now = now or utcnow()
    with state_store().read() as con:
        recipients = _recipients(con)
        deliveries = model.get_deliveries(con)
        starts = [
            deliveries[r].last_event_at if r in deliveries and deliveries[r].last_event_at else now - FIRST_LOOKBACK
            for r in recipients
        ]
        events = model.events_after(con, min(starts)) if starts else []
    totals = {"sent": 0, "failed": 0, "waiting": 0, "events": len(events)}
    updates: list[Delivery] = []
    for recipient, address in recipients.items():
        previous = deliveries.get(recipient) or Delivery(recipient, now - FIRST_LOOKBACK, None, 0, None, None)
        pending = [e for e in events if previous.last_event_at is None or e.created_at > previous.last_event_at]
        if not pending:
            continue
        if previous.last_sent_at is not None and now - previous.last_sent_at < WINDOW:
            totals["waiting"] += 1
            continue
        try:
            _send(recipient, address, pending)
        except MailError as exc:
            reason = redact_text(str(exc)).replace(current_app.config["AGNES_NOTIFY_WEBHOOK_URL"] or "\0", "[webhook]")
            log.warning("notification to %s failed: %s", "the webhook" if recipient == WEBHOOK else address, reason)
            updates.append(Delivery(recipient, previous.last_event_at, now, previous.sent, reason[:500], now))
            totals["failed"] += 1
            _audit_failure(recipient, reason, len(pending))
            continue
        updates.append(Delivery(recipient, pending[-1].created_at, now, previous.sent + 1, None, None))
        totals["sent"] += 1
    if updates:
        with state_store().write() as con:
            for update in updates:
                model.put_delivery(con, update)
    return totals


def _audit_failure(recipient: str, reason: str, events: int) -> None:
    try:
        write_audit(
            "notify.failed",
            resource=f"notify:{recipient}",
            params={"error": reason, "events": events},
            result="failed",
            client_kind="job",
        )
    except Exception:  # the failure is logged above; a lost audit row must not stop the others
        log.exception("could not audit a failed notification")


def watch_health(status: str, sentence: str) -> bool:
    """Record a ``health`` event when the pulse turned red since the last call; True if recorded."""
    cache = shared_cache()
    previous = cache.get(HEALTH_KEY)
    cache.set(HEALTH_KEY, status)
    if status != "red" or previous == "red":
        return False
    with state_store().write() as con:
        record_event(con, "health", "Health turned red", sentence, "/admin/activity")
    return True
