"""The ``managed-settings.json`` Agnes writes for a group's Claude Code installations.

Claude Code 2.1 reads organization policy from a managed settings file (or MDM); users cannot
override it. For a group Agnes produces:

* ``extraKnownMarketplaces.agnes``: this server's ``/marketplace.git`` as a ``git`` source with
  ``autoUpdate: true`` (Claude Code refreshes the marketplace and its plugins at start-up; its
  own default is off for third-party marketplaces);
* ``enabledPlugins``: ``<served name>@agnes: true`` for every plugin the group must have (the
  system plugins, which every user is served);
* ``strictKnownMarketplaces`` (optional): a ``hostPattern`` source allowing marketplaces from
  this host only;
* ``otelHeadersHelper`` and ``env``: OpenTelemetry export (logs and metrics, OTLP over HTTP
  protobuf) to this server's ``/v1/logs`` and ``/v1/metrics``, with tool details so skills are
  named.

No credential is written into the file: git authenticates with the credential helper
``agnes login`` installs, and OTLP with the header ``agnes otel-headers`` prints from the CLI's
stored token (Claude Code runs the helper itself, and again when it is stale).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from duckdb import DuckDBPyConnection
from flask import current_app

from agnes import audit
from agnes.errors import NotFound
from agnes.marketplace import resolver
from agnes.models import claude_code, groups
from agnes.models.claude_code import SettingsDownload
from agnes.models.groups import Group
from agnes.state import state_store
from agnes.urls import base_url

# The marketplace name Claude Code knows Agnes by (``<plugin>@agnes``).
MARKETPLACE_NAME = resolver.MARKETPLACE_NAME
# Where Claude Code reads the file on each system (Claude Code 2.1.x; MDM delivers the same keys
# as a configuration profile or registry policy).
LOCATIONS: tuple[tuple[str, str], ...] = (
    ("macOS", "/Library/Application Support/ClaudeCode/managed-settings.json"),
    ("Linux and WSL", "/etc/claude-code/managed-settings.json"),
    ("Windows", r"C:\Program Files\ClaudeCode\managed-settings.json"),
)
# MDM: the same JSON delivered as policy instead of a file.
MDM_LOCATIONS: tuple[tuple[str, str], ...] = (
    ("macOS (Jamf, Kandji, ...)", "a configuration profile for the preference domain com.anthropic.claudecode"),
    ("Windows (Intune, GPO)", r"the registry key HKLM\SOFTWARE\Policies\ClaudeCode, value Settings (the JSON)"),
)


@dataclass(frozen=True)
class ManagedSettings:
    """One group's file.

    Attributes:
        settings: the file's JSON object.
        text: the file as served (2-space indented, keys in a stable order, final newline).
        plugins: ``[{"id": "<slug>/<plugin>", "enabled_as": "<served>@agnes", "version": ...}]``.
    """

    group: Group
    strict: bool
    settings: dict[str, Any]
    text: str
    plugins: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": {"id": self.group.id, "name": self.group.name},
            "strict": self.strict,
            "settings": self.settings,
            "plugins": self.plugins,
        }


def settings_env(server: str) -> dict[str, str]:
    """The ``env`` block: plugin auto-update kept on, OpenTelemetry export to ``server`` (no credentials)."""
    return {
        # DISABLE_AUTOUPDATER (common where IT manages Claude Code's own updates) also stops plugin
        # auto-update, silently; this keeps plugins updating whatever it is set to.
        "FORCE_AUTOUPDATE_PLUGINS": "1",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # The SDK appends /v1/logs and /v1/metrics to this base URL.
        "OTEL_EXPORTER_OTLP_ENDPOINT": server,
        # Names skills and plugins in skill_activated and plugin_loaded (otherwise redacted).
        "OTEL_LOG_TOOL_DETAILS": "1",
    }


def host_pattern(server: str) -> str:
    """The ``hostPattern`` regex matching exactly the host of ``server`` (no port: Claude Code
    matches the host it extracts from a marketplace URL)."""
    return "^" + re.escape(urlsplit(server).hostname or "") + "$"


def build(con: DuckDBPyConnection, group: Group, *, strict: bool, server: str, data_dir: Path) -> ManagedSettings:
    """The file for ``group`` as this server at ``server`` (``scheme://host[:port]``) serves it."""
    system = resolver.system_set(con, data_dir)
    source = {"source": "git", "url": f"{server}/marketplace.git"}
    settings: dict[str, Any] = {
        "extraKnownMarketplaces": {MARKETPLACE_NAME: {"source": source, "autoUpdate": True}},
        "enabledPlugins": {f"{p.served_name}@{MARKETPLACE_NAME}": True for p in system.plugins},
    }
    if strict:
        settings["strictKnownMarketplaces"] = [{"source": "hostPattern", "hostPattern": host_pattern(server)}]
    settings["otelHeadersHelper"] = current_app.config["AGNES_OTEL_HEADERS_HELPER"]
    settings["env"] = settings_env(server)
    plugins = [
        {
            "id": f"{p.marketplace_id}/{p.name}",
            "enabled_as": f"{p.served_name}@{MARKETPLACE_NAME}",
            "version": p.version,
        }
        for p in system.plugins
    ]
    text = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    return ManagedSettings(group, strict, settings, text, plugins)


def _group(con: DuckDBPyConnection, group_id: str) -> Group:
    group = groups.get_group(con, group_id) if group_id else None
    if group is None:
        raise NotFound("group_not_found", f"No group with id '{group_id}'.", field="group")
    return group


def managed_settings(group_id: str, *, strict: bool = False) -> ManagedSettings:
    """The file for a group (read only). Raises NotFound (``group_not_found``, field ``group``)."""
    data_dir = Path(current_app.config["AGNES_DATA_DIR"])
    with state_store().read() as con:
        return build(con, _group(con, group_id), strict=strict, server=base_url(), data_dir=data_dir)


def last_download(group_id: str) -> SettingsDownload | None:
    """The group's previous download (None: never downloaded)."""
    with state_store().read() as con:
        return claude_code.get_last_settings_download(con, group_id)


def diff(previous: SettingsDownload | None, current: ManagedSettings) -> list[str]:
    """Unified diff lines from the previous download to ``current`` (empty when unchanged or
    never downloaded)."""
    if previous is None or previous.content == current.text:
        return []
    return list(
        difflib.unified_diff(
            previous.content.splitlines(),
            current.text.splitlines(),
            fromfile=f"downloaded {previous.downloaded_at:%Y-%m-%d %H:%M} UTC",
            tofile="now",
            lineterm="",
        )
    )


def download(group_id: str, *, strict: bool, actor_id: str | None) -> ManagedSettings:
    """The file for a group, recorded as its latest download with the audit row
    ``claude_code.settings_download`` in one unit. Raises NotFound (``group_not_found``)."""
    data_dir = Path(current_app.config["AGNES_DATA_DIR"])
    server = base_url()
    with state_store().write() as con:
        current = build(con, _group(con, group_id), strict=strict, server=server, data_dir=data_dir)
        previous = claude_code.get_last_settings_download(con, group_id)
        if previous is None or previous.content != current.text or previous.strict != strict:
            claude_code.create_settings_download(con, group_id, current.text, strict=strict, downloaded_by=actor_id)
        audit.record(
            con,
            "claude_code.settings_download",
            f"group:{group_id}",
            strict=strict,
            plugins=len(current.plugins),
            changed=previous is not None and previous.content != current.text,
        )
    return current
