"""``notification_events`` and ``notification_deliveries``: what admins are told, and what each
recipient got."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id


@dataclass(frozen=True)
class NotificationEvent(Record):
    id: str
    created_at: datetime
    kind: str
    subject: str
    body: str
    link: str | None


@dataclass(frozen=True)
class Delivery(Record):
    recipient: str
    last_event_at: datetime | None
    last_sent_at: datetime | None
    sent: int
    last_error: str | None
    last_error_at: datetime | None


def insert_event(con: DuckDBPyConnection, kind: str, subject: str, body: str, link: str | None = None) -> str:
    event_id = new_id()
    con.execute(
        "INSERT INTO notification_events (id, kind, subject, body, link) VALUES (?, ?, ?, ?, ?)",
        [event_id, kind, subject, body, link],
    )
    return event_id


def events_after(con: DuckDBPyConnection, after: datetime, *, limit: int = 200) -> list[NotificationEvent]:
    rows = con.execute(
        "SELECT id, created_at, kind, subject, body, link FROM notification_events WHERE created_at > ?"
        " ORDER BY created_at, id LIMIT ?",
        [after, limit],
    ).fetchall()
    return [NotificationEvent(*r) for r in rows]


def get_deliveries(con: DuckDBPyConnection) -> dict[str, Delivery]:
    rows = con.execute(
        "SELECT recipient, last_event_at, last_sent_at, sent, last_error, last_error_at FROM notification_deliveries"
    ).fetchall()
    return {r[0]: Delivery(*r) for r in rows}


def put_delivery(con: DuckDBPyConnection, delivery: Delivery) -> None:
    con.execute("DELETE FROM notification_deliveries WHERE recipient = ?", [delivery.recipient])
    con.execute(
        "INSERT INTO notification_deliveries (recipient, last_event_at, last_sent_at, sent, last_error, last_error_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            delivery.recipient,
            delivery.last_event_at,
            delivery.last_sent_at,
            delivery.sent,
            delivery.last_error,
            delivery.last_error_at,
        ],
    )
