"""``agnes admin sessions list|show``: processed sessions with their failure findings (admin token)."""

from __future__ import annotations

from urllib.parse import quote

import click

from cli.client import from_config
from cli.output import print_json, print_table

FINDING_TYPES = ("tool_error", "permission_denied", "user_rejection", "loop", "interrupted", "abrupt_end")


@click.group()
def sessions() -> None:
    """Processed Claude Code sessions and what went wrong in them."""


@sessions.command("list")
@click.option("--user", "-u", default=None, help="A user's sessions (email or id).")
@click.option("--since", default=None, help="Started since: 7d, 24h or an ISO 8601 date.")
@click.option("--until", default=None, help="Started before (same forms).")
@click.option("--type", "finding_type", type=click.Choice(FINDING_TYPES), default=None, help="With this finding.")
@click.option("--model", default=None, help="Primary model (claude-opus-4-6, ...).")
@click.option("--sort", type=click.Choice(["recent", "findings"]), default="recent", show_default=True)
@click.option("--page", default=1, show_default=True, type=click.IntRange(1), help="Page of 50.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_sessions(as_json: bool, finding_type: str | None, **filters: object) -> None:
    """Sessions with their findings by type, newest (or most findings) first."""
    params = {k: v for k, v in filters.items() if v not in (None, "")}
    if finding_type:
        params["type"] = finding_type
    page = from_config().get("/api/admin/sessions", **params)
    if as_json:
        print_json(page)
        return
    print_table(
        [
            (
                s["user_email"] or s["user_id"],
                s["session_id"],
                (s["started_at"] or "")[:16].replace("T", " "),
                f"{int(s['active_seconds'] // 60)} min",
                s["primary_model"],
                ", ".join(f"{k} {v}" for k, v in sorted(s["findings"].items())) or "-",
            )
            for s in page["sessions"]
        ],
        ["USER", "SESSION", "STARTED (UTC)", "ACTIVE", "MODEL", "FINDINGS"],
    )
    if page["pages"] > 1:
        click.echo(f"(page {page['page']} of {page['pages']}, {page['total']} sessions: --page N)", err=True)


@sessions.command("show")
@click.argument("user")
@click.argument("session_id")
@click.option("--subagent", default=None, help="A subagent transcript of the session (agent-<id>.jsonl).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (findings and the replayed entries).")
def show_session(user: str, session_id: str, subagent: str | None, as_json: bool) -> None:
    """One session's findings (USER is the user id shown by 'list')."""
    params = {"subagent": subagent} if subagent else {}
    found = from_config().get(f"/api/admin/sessions/{quote(user, safe='')}/{quote(session_id, safe='')}", **params)
    if as_json:
        print_json(found)
        return
    click.echo(f"{found['path']} ({found['user_email'] or found['user_id']})")
    subagents = [f["path"].rsplit("/", 1)[-1] for f in found["files"] if f["kind"] == "subagent"]
    if subagents:
        click.echo("subagents: " + ", ".join(subagents))
    print_table(
        [(f["turn_index"], f["finding_type"], f["severity"], f["excerpt"][:100]) for f in found["findings"]],
        ["LINE", "FINDING", "SEVERITY", "EXCERPT"],
    )
