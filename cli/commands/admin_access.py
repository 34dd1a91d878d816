"""``agnes admin access``: why a user can or cannot reach a resource, and everything they reach."""

from __future__ import annotations

from urllib.parse import quote

import click

from cli.client import from_config
from cli.output import print_json, print_table


@click.group()
def access() -> None:
    """Explain access: "why can't she see that?"."""


@access.command("explain")
@click.argument("email")
@click.argument("resource_type")
@click.argument("resource_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(email: str, resource_type: str, resource_id: str, as_json: bool) -> None:
    """Whether EMAIL can reach RESOURCE_TYPE RESOURCE_ID (table orders, marketplace_plugin acme/sql), and why.

    Exits 0 when allowed, 3 when not (so scripts can test it).
    """
    found = from_config().get(
        "/api/admin/access/explain", user=email, resource_type=resource_type, resource_id=resource_id
    )
    if as_json:
        print_json(found)
    else:
        click.echo(found["summary"])
        for reason in found["reasons"]:
            via = f" ({', '.join(reason['sources'])})" if reason["sources"] else ""
            when = f", granted {reason['granted_at'][:10]}" if reason["granted_at"] else ""
            by = f" by {reason['granted_by']}" if reason["granted_by"] else ""
            click.echo(f"  through {reason['group']}{via}{when}{by}")
        for note in found["notes"]:
            click.echo(f"  - {note}")
    if not found["allowed"]:
        raise SystemExit(3)


@access.command("user")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user(email: str, as_json: bool) -> None:
    """Everything EMAIL's groups are granted, with the groups, and what Claude Code is served."""
    client = from_config()
    found = client.get(f"/api/admin/users/{quote(email, safe='@')}/effective-access")
    if as_json:
        print_json(found["access"])
        return
    print_table(
        [(a["resource_type"], a["resource_id"], ", ".join(a["via_groups"])) for a in found["access"]],
        ["TYPE", "RESOURCE", "THROUGH"],
    )
