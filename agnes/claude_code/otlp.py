"""OTLP/HTTP payloads from Claude Code: decoded with ``opentelemetry-proto`` and mapped to events.

Claude Code (2.1.x) exports with ``CLAUDE_CODE_ENABLE_TELEMETRY=1``:

* **logs** (``/v1/logs``): one log record per event, body ``claude_code.<name>``, attribute
  ``event.name`` (``skill_activated``, ``tool_result``, ``plugin_loaded``,
  ``hook_execution_complete``, ``api_request``, ``api_error``, ``user_prompt``, ...), plus
  ``session.id``, ``prompt.id``, ``event.timestamp``, ``event.sequence`` and ``user.id`` (an id of
  the Claude Code installation, not a person);
* **metrics** (``/v1/metrics``): ``claude_code.cost.usage`` (USD) and ``claude_code.token.usage``
  (attribute ``type``: input, output, cacheRead, cacheCreation), counters with delta temporality,
  and a few activity counters.

Bodies are OTLP protobuf (``application/x-protobuf``) or OTLP JSON (``application/json``),
optionally gzip-compressed. :func:`decode` raises :class:`Malformed` for anything else; nothing is
half-read. The payload's ``user.email`` is never used: the caller is the access token's owner.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

LOGS = "logs"
METRICS = "metrics"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Attributes never stored: who the payload claims to be (the token says who it is), and values
# that only repeat columns.
DROPPED_ATTRIBUTES = frozenset({"user.email", "user.account_uuid", "user.account_id", "organization.id"})
# Longest attribute value kept in the ``attributes`` column (characters); tool inputs can be large.
MAX_ATTRIBUTE_CHARS = 2000
# A plugin hook's command names its plugin through the plugin cache path.
PLUGIN_CACHE_RE = re.compile(r"plugins/cache/([^/\s\"']+)/([^/\s\"']+)/")


class Malformed(Exception):
    """The body is not an OTLP request this intake reads; the message says why."""


class TooLarge(Exception):
    """The body, once decompressed, is larger than allowed."""


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body with ``Content-Encoding`` undone (``gzip``, ``deflate`` or none), at most ``limit`` bytes.

    Raises:
        TooLarge: the decompressed body exceeds ``limit``.
        Malformed: an unknown encoding, or bytes that do not decompress.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(body) > limit:
            raise TooLarge
        return body
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise Malformed(f"Content-Encoding {encoding!r} is not supported (send gzip or none).")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise TooLarge
        if not inflater.eof:
            raise Malformed("The compressed body is truncated.")
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise Malformed(f"The body does not decompress: {exc}.") from None
    return out


def decode(signal: str, body: bytes, content_type: str) -> Message:
    """Parse an OTLP export request of ``signal`` (:data:`LOGS` or :data:`METRICS`).

    Raises:
        Malformed: wrong content type, corrupt protobuf, invalid JSON or JSON that is not OTLP.
    """
    message: Message = ExportLogsServiceRequest() if signal == LOGS else ExportMetricsServiceRequest()
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise Malformed(f"The body is not an OTLP {signal} protobuf message ({exc}).") from None
    elif kind == JSON:
        try:
            json_format.Parse(body.decode("utf-8"), message, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
            raise Malformed(f"The body is not OTLP {signal} JSON ({str(exc)[:200]}).") from None
    else:
        raise Malformed(f"Content-Type must be {PROTOBUF} or {JSON}.")
    return message


def count(signal: str, message: Message) -> int:
    """Log records, or metric data points, in a request."""
    if signal == LOGS:
        return sum(len(s.log_records) for r in message.resource_logs for s in r.scope_logs)  # type: ignore[attr-defined]
    return sum(
        len(_points(metric)[1])
        for r in message.resource_metrics  # type: ignore[attr-defined]
        for s in r.scope_metrics
        for metric in s.metrics
    )


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kv in pairs:  # the hot path: most values are strings, read without a call
        value = kv.value
        found[kv.key] = value.string_value if value.WhichOneof("value") == "string_value" else _value(value)
    return found


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _time(attrs: dict[str, Any], nanos: int, fallback: datetime) -> datetime:
    stamp = attrs.get("event.timestamp")
    if isinstance(stamp, str):
        try:
            parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
        except ValueError:
            pass
    if nanos:
        return datetime.fromtimestamp(nanos / 1e9, UTC).replace(tzinfo=None)
    return fallback


def _key(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def _kept(attrs: dict[str, Any]) -> str:
    kept = {}
    for key, value in attrs.items():
        if key in DROPPED_ATTRIBUTES:
            continue
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_CHARS:
            value = value[:MAX_ATTRIBUTE_CHARS] + "…"
        kept[key] = value
    return orjson.dumps(kept, default=str).decode()


@dataclass(slots=True)
class Event:
    """One row of ``otel_events`` before attribution (``ref_*`` are filled by the intake)."""

    event_key: str
    session_id: str | None
    prompt_id: str | None
    event_name: str
    occurred_at: datetime
    installation: str | None
    host: str | None
    app_version: str | None
    skill_name: str | None = None
    invocation_trigger: str | None = None
    tool_name: str | None = None
    tool_use_id: str | None = None
    success: bool | None = None
    duration_ms: float | None = None
    error: str | None = None
    plugin_name: str | None = None
    plugin_version: str | None = None
    marketplace_name: str | None = None
    ref_marketplace: str | None = None
    ref_plugin: str | None = None
    hook_event: str | None = None
    hook_failures: int | None = None
    model: str | None = None
    status_code: str | None = None
    cost_usd: float | None = None
    tokens: int | None = None
    token_type: str | None = None
    attributes: str = "{}"
    enabled_via: str | None = None  # plugin_loaded only; kept on the plugin's load row


def _hook_plugin(definitions: Any) -> tuple[str | None, str | None]:
    """(marketplace, plugin) named by a plugin hook's command path, or (None, None)."""
    text = definitions if isinstance(definitions, str) else json.dumps(definitions or "")
    match = PLUGIN_CACHE_RE.search(text)
    return (match.group(1), match.group(2)) if match else (None, None)


def _fill(event: Event, name: str, attrs: dict[str, Any]) -> None:
    """The event-specific columns (names as Claude Code 2.1.x sends them)."""
    if name == "skill_activated":
        event.skill_name = _text(attrs.get("skill.name"))
        event.invocation_trigger = _text(attrs.get("invocation_trigger"))
        event.plugin_name = _text(attrs.get("plugin.name"))
        event.marketplace_name = _text(attrs.get("marketplace.name"))
    elif name == "tool_result":
        event.tool_name = _text(attrs.get("tool_name"))
        event.tool_use_id = _text(attrs.get("tool_use_id"))
        event.success = _bool(attrs.get("success"))
        event.duration_ms = _number(attrs.get("duration_ms"))
        event.error = _text(attrs.get("error"))
    elif name == "plugin_loaded":
        event.plugin_name = _text(attrs.get("plugin.name"))
        event.plugin_version = _text(attrs.get("plugin.version"))
        event.marketplace_name = _text(attrs.get("marketplace.name"))
        event.enabled_via = _text(attrs.get("enabled_via"))
    elif name == "hook_execution_complete":
        event.hook_event = _text(attrs.get("hook_event"))
        event.tool_name = _text(attrs.get("hook_name"))
        failures = _number(attrs.get("num_non_blocking_error"))
        event.hook_failures = int(failures) if failures is not None else None
        event.duration_ms = _number(attrs.get("total_duration_ms"))
        event.marketplace_name, event.plugin_name = _hook_plugin(attrs.get("hook_definitions"))
    elif name in ("api_request", "api_error"):
        event.model = _text(attrs.get("model"))
        event.duration_ms = _number(attrs.get("duration_ms"))
        event.status_code = _text(attrs.get("status_code"))
        event.error = _text(attrs.get("error"))
        event.cost_usd = _number(attrs.get("cost_usd"))
        tokens = [_number(attrs.get(k)) for k in ("input_tokens", "output_tokens")]
        event.tokens = int(sum(t for t in tokens if t is not None)) if any(t is not None for t in tokens) else None


def log_events(message: ExportLogsServiceRequest, user_id: str, received_at: datetime) -> Iterator[Event]:
    """The events of a logs request, keyed so a resent batch maps to the same keys."""
    for resource_logs in message.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        host = _text(resource.get("host.name"))
        app_version = _text(resource.get("service.version"))
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                attrs = _attributes(record.attributes)
                body = record.body.string_value if record.body.WhichOneof("value") == "string_value" else ""
                name = _text(attrs.get("event.name")) or body.removeprefix("claude_code.") or "unknown"
                occurred = _time(attrs, record.time_unix_nano or record.observed_time_unix_nano, received_at)
                session_id = _text(attrs.get("session.id"))
                installation = _text(attrs.get("user.id"))
                event = Event(
                    event_key=_key(
                        user_id,
                        installation,
                        session_id,
                        name,
                        attrs.get("event.sequence"),
                        record.time_unix_nano,
                        attrs.get("event.timestamp"),
                    ),
                    session_id=session_id,
                    prompt_id=_text(attrs.get("prompt.id")),
                    event_name=name,
                    occurred_at=occurred,
                    installation=installation,
                    host=host,
                    app_version=_text(attrs.get("app.version")) or app_version,
                    attributes=_kept(attrs),
                )
                _fill(event, name, attrs)
                yield event


def _points(metric: Any) -> tuple[str, Any]:
    kind = metric.WhichOneof("data")
    if kind in ("sum", "gauge"):
        return kind, getattr(metric, kind).data_points
    return kind or "", ()


def metric_events(message: ExportMetricsServiceRequest, user_id: str, received_at: datetime) -> Iterator[Event]:
    """The data points of a metrics request as events: ``metric.cost`` (``cost_usd``),
    ``metric.tokens`` (``tokens``, ``token_type``) and ``metric.<name>`` (value in ``attributes``)."""
    for resource_metrics in message.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        host = _text(resource.get("host.name"))
        app_version = _text(resource.get("service.version"))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _, points = _points(metric)
                short = metric.name.removeprefix("claude_code.")
                name = {"cost.usage": "metric.cost", "token.usage": "metric.tokens"}.get(short, f"metric.{short}")
                for point in points:
                    attrs = _attributes(point.attributes)
                    value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
                    session_id = _text(attrs.get("session.id"))
                    installation = _text(attrs.get("user.id"))
                    event = Event(
                        event_key=_key(
                            user_id, installation, session_id, metric.name, _kept(attrs), point.time_unix_nano
                        ),
                        session_id=session_id,
                        prompt_id=None,
                        event_name=name,
                        occurred_at=_time({}, point.time_unix_nano, received_at),
                        installation=installation,
                        host=host,
                        app_version=_text(attrs.get("app.version")) or app_version,
                        model=_text(attrs.get("model")),
                        attributes=_kept({**attrs, "value": value}),
                    )
                    if name == "metric.cost":
                        event.cost_usd = value
                    elif name == "metric.tokens":
                        event.tokens = int(value)
                        event.token_type = _text(attrs.get("type"))
                    yield event


def events(signal: str, message: Message, user_id: str, received_at: datetime) -> list[Event]:
    """Every event of a decoded request (:func:`log_events` or :func:`metric_events`)."""
    if signal == LOGS:
        return list(log_events(message, user_id, received_at))  # type: ignore[arg-type]
    return list(metric_events(message, user_id, received_at))  # type: ignore[arg-type]
