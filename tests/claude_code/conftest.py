"""Claude Code fleet fixtures: a synced marketplace with a system plugin, an admin token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import bearer
from tests.marketplace.conftest import register, small_marketplace, sync_now


def synced_marketplace(
    client: Any, admin_token: str, repo: Path, *, slug: str = "acme", version: str = "1.0.0"
) -> None:
    """Register (first time) and sync a marketplace with plugins ``alpha`` and ``beta`` at ``version``."""
    small_marketplace(repo, version=version)
    if not (repo / ".registered").exists():
        register(client, bearer(admin_token), slug, repo)
        (repo / ".registered").touch()
    sync_now(slug)


@pytest.fixture
def admin_token(auth) -> str:  # type: ignore[no-untyped-def]
    return auth.token("admin@example.com", admin=True)


@pytest.fixture
def fleet(client, admin_token, tmp_path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """``acme`` synced with ``alpha`` (marked system) and ``beta``."""
    from agnes.marketplace import system

    repo = tmp_path / "acme-repo"
    synced_marketplace(client, admin_token, repo)
    system.set_system("acme", "alpha", True, actor_id=None)
    return {"repo": repo, "admin_token": admin_token}


# -- OTLP payloads as Claude Code 2.1 sends them -------------------------------------------------

SESSION = "5f0c43e0-8c59-4c4e-9c1b-6c0d2b7f4a10"
INSTALLATION = "d1f0c0ffee"  # Claude Code's attribute user.id: an installation id, not a person


def _any(value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def log_request(
    events: list[dict[str, Any]], *, host: str = "laptop-1", version: str = "2.1.197", start: Any = None
) -> Any:
    """An ``ExportLogsServiceRequest`` with one record per ``{"event.name": ..., attrs...}``.

    Common attributes Claude Code adds (session.id, user.id, event.sequence, event.timestamp,
    user.email) are filled in unless given; event ``i`` happens ``i`` seconds after ``start``
    (default: an hour ago, so the last-30-days windows see it).
    """
    from datetime import UTC, datetime, timedelta

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    for key, value in (("service.name", "claude-code"), ("service.version", version), ("host.name", host)):
        resource_logs.resource.attributes.append(KeyValue(key=key, value=_any(value)))
    scope = resource_logs.scope_logs.add()
    scope.scope.name = "com.anthropic.claude_code.events"
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for sequence, event in enumerate(events):
        when = start + timedelta(seconds=sequence)
        attrs = {
            "session.id": SESSION,
            "user.id": INSTALLATION,
            "user.email": "someone-else@example.com",
            "event.sequence": sequence,
            "event.timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            **event,
        }
        record = scope.log_records.add()
        record.time_unix_nano = int(when.timestamp()) * 1_000_000_000
        record.body.string_value = f"claude_code.{attrs['event.name']}"
        for key, value in attrs.items():
            record.attributes.append(KeyValue(key=key, value=_any(value)))
    return request


def metric_request(points: list[tuple[str, float, dict[str, Any]]]) -> Any:
    """An ``ExportMetricsServiceRequest``: ``(metric name, value, attributes)`` sum points."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    for i, (name, value, attrs) in enumerate(points):
        metric = scope.metrics.add()
        metric.name = name
        point = metric.sum.data_points.add()
        point.as_double = value
        point.time_unix_nano = 1_796_551_200_000_000_000 + i
        for key, v in {"session.id": SESSION, "user.id": INSTALLATION, **attrs}.items():
            point.attributes.append(KeyValue(key=key, value=_any(v)))
    return request


def skill_events(plugin: str = "alpha", version: str = "1.0.0") -> list[dict[str, Any]]:
    """A session's events: the plugin loaded, its skill invoked by Claude, the Skill tool's result,
    a failing plugin hook, an API request."""
    return [
        {
            "event.name": "plugin_loaded",
            "plugin.name": plugin,
            "marketplace.name": "agnes",
            "plugin.version": version,
            "plugin.scope": "user",
            "enabled_via": "managed",
        },
        {
            "event.name": "skill_activated",
            "skill.name": f"{plugin}:{plugin}-skill",
            "invocation_trigger": "claude-proactive",
            "skill.source": "plugin",
            "plugin.name": plugin,
            "marketplace.name": "agnes",
            "prompt.id": "p-1",
        },
        {
            "event.name": "tool_result",
            "tool_name": "Skill",
            "tool_use_id": "toolu_01",
            "success": "true",
            "duration_ms": "12",
            "prompt.id": "p-1",
        },
        {
            "event.name": "hook_execution_complete",
            "hook_event": "PostToolUse",
            "hook_name": "PostToolUse:Skill",
            "num_hooks": "1",
            "num_success": "0",
            "num_non_blocking_error": "1",
            "total_duration_ms": "30",
            "hook_definitions": json.dumps(
                [{"type": "command", "command": f"/home/a/.claude/plugins/cache/agnes/{plugin}/{version}/hooks/x.sh"}]
            ),
        },
        {
            "event.name": "api_request",
            "model": "claude-sonnet-4-5",
            "cost_usd": "0.0123",
            "input_tokens": "100",
            "output_tokens": "20",
            "duration_ms": "800",
        },
    ]
