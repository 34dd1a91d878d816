"""``agnes admin claude-code``: the managed settings Agnes writes for Claude Code; and
``agnes otel-headers``, the ``otelHeadersHelper`` those settings name.

``otel-headers`` prints ``{"Authorization": "Bearer <token>"}`` from the token ``agnes login``
stored, so the managed-settings file itself never holds a credential. Claude Code runs it when
it starts exporting OpenTelemetry and again when the headers are stale.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from cli.client import from_config


@click.group("claude-code")
def claude_code() -> None:
    """Claude Code across the fleet: managed settings."""


@claude_code.command("settings")
@click.option("--group", "group_ref", required=True, help="The group (name or id) the file is for.")
@click.option("--strict", is_flag=True, help="Allow only marketplaces from this server (strictKnownMarketplaces).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write the file here.")
def settings(group_ref: str, strict: bool, out: Path | None) -> None:
    """Print the group's managed-settings.json (recorded as its latest download)."""
    from cli.commands.admin import resolve_group

    client = from_config()
    group = resolve_group(client, group_ref)
    params = {"group": group["id"], "strict": "1" if strict else None}
    text = client.request("GET", "/api/admin/claude-code/managed-settings", params=params).body.decode()
    if out is None:
        click.echo(text, nl=False)
        return
    partial = out.with_name(out.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, out)
    click.echo(f"Wrote {out} for {group['name']}.", err=True)


@click.command("otel-headers")
def otel_headers() -> None:
    """Print the OpenTelemetry Authorization header as JSON (Claude Code's otelHeadersHelper)."""
    from cli import config

    settings = config.load()
    if not settings.token:
        click.echo("error: not logged in: run 'agnes login --server https://your-agnes-host'", err=True)
        sys.exit(1)
    click.echo(json.dumps({"Authorization": f"Bearer {settings.token}"}))
