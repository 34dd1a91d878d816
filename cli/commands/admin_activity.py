"""``agnes admin activity``: the audit timeline and the health pulse (needs an admin's token)."""

from __future__ import annotations

from typing import Any

import click

from cli.client import from_config
from cli.output import print_json, print_table

# Rows asked per request while reading a longer timeline (the server's largest page).
PAGE = 200
# Marks of each health colour (plain ASCII: any console, any pipe).
MARKS = {"green": "ok ", "yellow": "?? ", "red": "!! "}


def _rows(path: str, params: dict[str, Any], limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` rows of a keyset-paged activity API (``{rows, next_cursor}``), newest first,
    and whether more rows remain."""
    client = from_config()
    rows: list[dict[str, Any]] = []
    cursor = None
    while len(rows) < limit:
        page = client.get(path, **params, limit=min(PAGE, limit - len(rows)), cursor=cursor)
        rows.extend(page["rows"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    return rows, bool(cursor)


@click.group(invoke_without_command=True)
@click.option("--since", default="24h", show_default=True, help="Start: 30m, 24h, 7d or an ISO 8601 date/time (UTC).")
@click.option("--until", default=None, help="End (exclusive), same forms as --since.")
@click.option("--user", "-u", default=None, help="Rows of this user (email or id).")
@click.option("--action", default=None, help="Actions starting with this (job., marketplace.sync).")
@click.option("--resource", default=None, help="Resources starting with this (table:orders, job:).")
@click.option("--result", default=None, help="Exact result (ok, failed, 403).")
@click.option("--client-kind", default=None, help="web, cli, api, job, system, server-cli.")
@click.option("--correlation-id", default=None, help="Every row of one request or job.")
@click.option("--search", "q", default=None, help="Text the row's params contain.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="Rows to print.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
@click.pass_context
def activity(ctx: click.Context, limit: int, as_json: bool, **filters: Any) -> None:
    """The audit timeline, newest first (subcommands: health, sync, changes)."""
    if ctx.invoked_subcommand is not None:
        return
    rows, more = _rows("/api/admin/activity", {k: v for k, v in filters.items() if v}, limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            (
                r["timestamp"][:19].replace("T", " "),
                r["user_email"] or r["user_id"] or "system",
                r["action"],
                r["resource"] or "",
                r["result"] or "",
                r["client_kind"] or "",
            )
            for r in rows
        ],
        ["TIME (UTC)", "USER", "ACTION", "RESOURCE", "RESULT", "CLIENT"],
    )
    if more:
        click.echo(f"(more rows: raise --limit, now {limit})", err=True)


@activity.command("health")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def health(as_json: bool) -> None:
    """The health pulse: each check green, yellow or red, and one sentence.

    Exits 0 unless a check is red (3), so a monitor can run it.
    """
    pulse = from_config().get("/api/admin/activity/health")
    if as_json:
        print_json(pulse)
    else:
        click.echo(f"{pulse['status'].upper()}: {pulse['sentence']}")
        for field in pulse["fields"]:
            click.echo(f"  {MARKS.get(field['status'], '   ')}{field['label']}: {field['value']} - {field['detail']}")
    if pulse["status"] == "red":
        raise SystemExit(3)


@activity.command("sync")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sync(as_json: bool) -> None:
    """Tables and marketplaces: last sync, status, next due, last error and running syncs."""
    found = from_config().get("/api/admin/activity/sync")
    if as_json:
        print_json(found)
        return
    print_table(
        [
            (
                t["id"],
                (t["last_attempt"] or "never")[:16].replace("T", " "),
                t["status"] or "",
                t["rows"] if t["rows"] is not None else "",
                (t["next_due"] or "on demand")[:16].replace("T", " "),
                t["job"]["state"] if t["job"] else "",
                (t["error"] or "")[:60],
            )
            for t in found["tables"]
        ],
        ["TABLE", "LAST SYNC (UTC)", "STATUS", "ROWS", "NEXT DUE", "JOB", "LAST ERROR"],
    )
    click.echo()
    print_table(
        [
            (
                m["id"],
                (m["last_synced_at"] or "never")[:16].replace("T", " "),
                m["plugins"],
                (m["last_change_at"] or "")[:16].replace("T", " "),
                m["job"]["state"] if m["job"] else "",
                (m["error"] or "")[:60],
            )
            for m in found["marketplaces"]
        ],
        ["MARKETPLACE", "LAST SYNC (UTC)", "PLUGINS", "LAST CHANGE", "JOB", "LAST ERROR"],
    )


@activity.command("changes")
@click.option("--since", default="7d", show_default=True, help="Start: 30m, 24h, 7d or an ISO 8601 date/time (UTC).")
@click.option("--until", default=None, help="End (exclusive), same forms as --since.")
@click.option("--user", "-u", default=None, help="Changes made by this user (email or id).")
@click.option(
    "--type",
    "type_",
    default=None,
    type=click.Choice(["group", "member", "grant", "system", "marketplace", "table", "token"]),
    help="Only changes of this kind of thing.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="Rows to print.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
def changes(since: str, until: str | None, user: str | None, type_: str | None, limit: int, as_json: bool) -> None:
    """What changed in the registries: fields before and after, plugins a marketplace sync
    changed, table row counts."""
    params = {k: v for k, v in {"since": since, "until": until, "user": user, "type": type_}.items() if v}
    rows, more = _rows("/api/admin/activity/changes", params, limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            (
                r["timestamp"][:19].replace("T", " "),
                r["user_email"] or r["user_id"] or "system",
                r["action"],
                r["subject"],
                _what_changed(r),
            )
            for r in rows
        ],
        ["TIME (UTC)", "USER", "ACTION", "SUBJECT", "CHANGE"],
    )
    if more:
        click.echo(f"(more rows: raise --limit, now {limit})", err=True)


def _what_changed(row: dict[str, Any]) -> str:
    """One line: ``name: a -> b; ...``, ``+added -removed x 1.0->1.1``, ``rows 10 -> 12``."""
    if row["rows"] is not None:
        counts = row["rows"]
        return f"rows {counts['before'] if counts['before'] is not None else '-'} -> {counts['after']}"
    if row["plugins"] is not None:
        plugins = row["plugins"]
        parts = [f"+{n}" for n in plugins["added"]] + [f"-{n}" for n in plugins["removed"]]
        parts += [f"{c.get('name')} {c.get('from')}->{c.get('to')}" for c in plugins["changed"]]
        return " ".join(parts)
    shown = [f"{f['field']}: {_short(f['before'])} -> {_short(f['after'])}" for f in row["fields"]]
    return "; ".join(shown)[:160]


def _short(value: Any) -> str:
    return "-" if value is None else str(value)[:40]
