"""The OpenTelemetry intake: limits, attribution and storage of one OTLP request.

Each request is checked whole before anything is written: content type (415), size after
decompression (``AGNES_OTLP_MAX_KB``, 413 ``body_too_large``), well-formed OTLP (400
``malformed_otlp``), events per request (``AGNES_OTLP_MAX_EVENTS``, 413 ``too_many_events``) and
the token's rate (``AGNES_OTLP_RATE`` events per second, 429 with ``Retry-After``). Then every
event is stored under the token's owner (``source = 'otel'``), attributed to the served plugin
it names the way transcripts are: the user's served set maps a served name (``<name>@agnes``,
or the ``<plugin>:`` prefix of a skill) to its marketplace and plugin. A request is answered once
its events are on disk in the spool (:mod:`agnes.claude_code.spool`), which is committed to the
state store in one write unit for all the requests of the last ``AGNES_OTLP_FLUSH_MS``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from flask import current_app

from agnes.access import Principal
from agnes.claude_code import otlp
from agnes.claude_code.otlp import Event
from agnes.claude_code.spool import spool
from agnes.errors import AppError, Invalid
from agnes.marketplace import resolver
from agnes.models import otel_events, utcnow
from agnes.models.otel_events import EVENT_COLUMNS, PluginLoad

# Seconds of the per-token rate a burst may use at once.
BURST_SECONDS = 30
# Token buckets kept per process before the oldest are forgotten (forgetting one refills it).
MAX_BUCKETS = 10_000

log = logging.getLogger(__name__)


class RateLimited(AppError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "rate_limited",
            f"This token sends more OpenTelemetry events than allowed; retry in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


class RateLimiter:
    """Token buckets per access token: ``rate`` events per second, ``rate × BURST_SECONDS`` at once.

    Per process: with several web processes each allows the rate (the limit protects the
    state store from one runaway exporter, it is not a quota).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)

    def take(self, key: str, events: int, rate: int) -> int:
        """Take ``events`` from ``key``'s bucket; 0 when allowed, else the seconds to wait."""
        capacity = float(rate * BURST_SECONDS)
        now = time.monotonic()
        with self.lock:
            tokens, then = self.buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - then) * rate)
            if events > tokens:
                self.buckets[key] = (tokens, now)
                return max(1, math.ceil((events - tokens) / rate))
            if len(self.buckets) >= MAX_BUCKETS and key not in self.buckets:
                self.buckets.clear()
            self.buckets[key] = (tokens - events, now)
            return 0


@dataclass(frozen=True)
class IngestResult:
    """``received``: events in the request (all committed, or already stored from a resent batch)."""

    received: int

    def to_dict(self) -> dict[str, int]:
        return {"received": self.received}


def _limiter() -> RateLimiter:
    return current_app.extensions.setdefault("agnes_otlp_rate", RateLimiter())


def _attribute(events: list[Event], served: resolver.ServedSet) -> None:
    """Fill ``ref_marketplace``/``ref_plugin`` from the served plugin each event names."""
    by_name = {p.served_name: p for p in served.plugins}
    for event in events:
        plugin = None
        if event.plugin_name and event.marketplace_name == resolver.MARKETPLACE_NAME:
            plugin = by_name.get(event.plugin_name)
        elif event.skill_name and ":" in event.skill_name:
            plugin = by_name.get(event.skill_name.split(":", 1)[0])
        if plugin is not None:
            event.ref_marketplace, event.ref_plugin = plugin.marketplace_id, plugin.name


def _table(events: list[Event], user_id: str, received_at: Any) -> pa.Table:
    """The events as one Arrow table in ``otel_events`` column order."""
    columns: dict[str, list[Any]] = {}
    for name, _ in EVENT_COLUMNS:
        if name == "user_id":
            columns[name] = [user_id] * len(events)
        elif name == "received_at":
            columns[name] = [received_at] * len(events)
        else:
            columns[name] = [getattr(event, name) for event in events]
    return pa.Table.from_pydict(columns, schema=otel_events.EVENT_SCHEMA)


def _loads(events: list[Event], user_id: str) -> list[PluginLoad]:
    """The batch's plugin_loaded events as load rows (the writer keeps the newest per key)."""
    return [
        PluginLoad(
            user_id,
            e.installation or "",
            e.marketplace_name,
            e.plugin_name,
            e.plugin_version,
            e.host,
            e.enabled_via,
            e.occurred_at,
            e.occurred_at,
        )
        for e in events
        if e.event_name == "plugin_loaded" and e.plugin_name and e.marketplace_name
    ]


def ingest(signal: str, body: bytes, *, content_type: str, content_encoding: str, principal: Principal) -> IngestResult:
    """Check, decode, attribute and store one OTLP request of ``signal`` (``logs`` or ``metrics``).

    Raises:
        AppError: 415 ``unsupported_media_type``; 413 ``body_too_large`` or ``too_many_events``;
            400 ``malformed_otlp``; 429 ``rate_limited`` (with ``Retry-After``). Nothing is
            written in any of these cases. 503 ``intake_unavailable`` when the spool could not
            take the events (the exporter sends them again).
    """
    config = current_app.config
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in (otlp.PROTOBUF, otlp.JSON):
        raise AppError(
            415, "unsupported_media_type", f"Send OTLP as {otlp.PROTOBUF} or {otlp.JSON}.", field="Content-Type"
        )
    limit = int(config["AGNES_OTLP_MAX_KB"]) * 1024
    try:
        raw = otlp.inflate(body, content_encoding, limit)
        message = otlp.decode(signal, raw, kind)
    except otlp.TooLarge:
        raise AppError(413, "body_too_large", f"The request is larger than {limit // 1024} KiB.") from None
    except otlp.Malformed as exc:
        raise Invalid("malformed_otlp", str(exc)) from None
    received = otlp.count(signal, message)
    most = int(config["AGNES_OTLP_MAX_EVENTS"])
    if received > most:
        raise AppError(413, "too_many_events", f"The request carries {received} events; at most {most} are accepted.")
    key = principal.token_id or principal.user.id
    wait = _limiter().take(key, received, int(config["AGNES_OTLP_RATE"]))
    if wait:
        raise RateLimited(wait)
    user_id = principal.user.id
    now = utcnow()
    events = otlp.events(signal, message, user_id, now)
    if events:
        _attribute(events, resolver.resolve(user_id, principal.group_ids))
        spool().submit(_table(events, user_id, now), _loads(events, user_id))
    return IngestResult(received)
