"""``agnes admin marketplace``: register, list, sync and remove curated marketplaces."""

from __future__ import annotations

import sys
import time
from urllib.parse import quote

import click

from cli.client import from_config
from cli.output import print_json, print_listing, print_table

# How often ``sync --wait`` polls the job (seconds) and how long it waits at most.
POLL_SECONDS = 0.5
WAIT_LIMIT = 3600


@click.group()
def marketplace() -> None:
    """Curated marketplaces (git repositories with .claude-plugin/marketplace.json)."""


@marketplace.command("add")
@click.argument("slug")
@click.argument("url")
@click.option("--name", help="Display name (default: the slug).")
@click.option("--branch", help="Branch to follow (default: the repository's default branch).")
@click.option("--token-stdin", is_flag=True, help="Read an access token for a private repository from stdin.")
@click.option("--curator-name", help="Who curates it (default: you).")
@click.option("--curator-email", help="Curator's email (default: yours).")
@click.option("--description", default="", help="What it offers.")
@click.option("--no-sync", is_flag=True, help="Register only; do not start the first sync.")
def add(
    slug: str,
    url: str,
    name: str | None,
    branch: str | None,
    token_stdin: bool,
    curator_name: str | None,
    curator_email: str | None,
    description: str,
    no_sync: bool,
) -> None:
    """Register a marketplace (URL: https://..., or a local path / file:// mirror) and sync it."""
    body = {
        "slug": slug,
        "url": url,
        "name": name or slug,
        "branch": branch,
        "description": description,
        "curator_name": curator_name,
        "curator_email": curator_email,
        "sync": not no_sync,
    }
    if token_stdin:
        body["token"] = sys.stdin.readline().strip()
    created = from_config().post("/api/marketplaces", {k: v for k, v in body.items() if v is not None})
    click.echo(f"Registered {created['name']} ({created['id']}).")
    if created.get("job"):
        click.echo(f"Sync started (job {created['job']['id']}); follow it with 'agnes admin marketplace list'.")


@marketplace.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_marketplaces(as_json: bool) -> None:
    """Registered marketplaces with their last sync."""
    print_listing(
        from_config().get("/api/marketplaces")["marketplaces"],
        as_json,
        lambda m: (
            m["id"],
            m["name"],
            m["plugin_count"],
            (m["last_commit_sha"] or "")[:10],
            m["last_synced_at"] or "never",
            "error: " + m["last_error"] if m["last_error"] else "ok",
        ),
        ["SLUG", "NAME", "PLUGINS", "COMMIT", "LAST SYNC", "STATUS"],
    )


@marketplace.command("plugins")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(slug: str, as_json: bool) -> None:
    """Plugins of one marketplace (after its last good sync)."""
    found = from_config().get(f"/api/marketplaces/{slug}/plugins")["plugins"]
    if as_json:
        print_json(found)
        return
    print_table(
        [
            (
                p["id"],
                p["version"] or "",
                p["source_kind"],
                p["skills"],
                p["agents"],
                p["commands"],
                "yes" if p["available"] else f"no: {p['unavailable_reason']}",
            )
            for p in found
        ],
        ["PLUGIN", "VERSION", "SOURCE", "SKILLS", "AGENTS", "COMMANDS", "AVAILABLE"],
    )


@marketplace.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(slug: str, as_json: bool) -> None:
    """One marketplace: repository, last sync and its result, skipped entries, recent history."""
    found = from_config().get(f"/api/marketplaces/{quote(slug, safe='')}")
    if as_json:
        print_json(found)
        return
    click.echo(f"{found['name']} ({found['id']})")
    click.echo(f"  repository:  {found['url']}" + (f" @ {found['branch']}" if found["branch"] else ""))
    click.echo(f"  curator:     {found['curator_name']} <{found['curator_email']}>")
    commit = (found["last_commit_sha"] or "")[:10]
    click.echo(f"  last sync:   {found['last_synced_at'] or 'never'}" + (f" at {commit}" if commit else ""))
    if found.get("last_result"):
        click.echo(f"  last result: {found['last_result']}")
    if found["last_error"]:
        click.echo(f"  last error:  {found['last_error']}")
    skipped = found.get("skipped") or []
    if skipped:
        click.echo(f"{len(skipped)} manifest {'entry' if len(skipped) == 1 else 'entries'} skipped (not served):")
        for entry in skipped:
            click.echo(f"  {entry['name']}: {entry['reason']}")
    if found["history"]:
        click.echo("history:")
        for h in found["history"][:10]:
            click.echo(f"  {h['finished_at']}  {h['summary']}")


@marketplace.command("sync")
@click.argument("slug", required=False)
@click.option("--all", "sync_all", is_flag=True, help="Sync every marketplace.")
@click.option("--wait", is_flag=True, help="Wait for the sync to finish and print its result.")
def sync(slug: str | None, sync_all: bool, wait: bool) -> None:
    """Start a sync of one marketplace (or --all); exit 1 if a waited-for sync fails."""
    if bool(slug) == sync_all:
        raise click.UsageError("give a SLUG or --all")
    client = from_config()
    path = "/api/marketplaces/sync-all" if sync_all else f"/api/marketplaces/{slug}/sync"
    job = client.post(path)["job"]
    if not wait:
        click.echo(f"Sync started (job {job['id']}).")
        return
    deadline = time.monotonic() + WAIT_LIMIT
    while job["state"] in ("queued", "running"):
        if time.monotonic() > deadline:
            raise click.ClickException(f"gave up waiting for job {job['id']}")
        time.sleep(POLL_SECONDS)
        job = client.get(f"/api/jobs/{job['id']}")
    if job["state"] == "failed":
        raise click.ClickException(f"sync failed: {job['error']}")
    result = job.get("result") or {}
    for entry in result.get("synced", [result]) if sync_all else [result]:
        _print_result(entry)
    for error in result.get("errors", []) if sync_all else []:
        click.echo(f"error: {error['id']}: {error['error']}", err=True)
    if sync_all and result.get("errors"):
        sys.exit(1)


def _print_result(result: dict) -> None:  # type: ignore[type-arg]
    """``<slug>: <summary> at <commit> (added a, b; updated c 1.0→2.0)``, then each skipped entry."""
    head = result.get("summary") or f"{result.get('plugin_count')} plugins"
    line = f"{result.get('id')}: {head} at {str(result.get('commit'))[:10]}"
    parts = []
    for key in ("added", "removed"):
        if result.get(key):
            parts.append(f"{key} {', '.join(result[key])}")
    if result.get("changed"):
        parts.append("updated " + ", ".join(f"{c['name']} {c['from']}→{c['to']}" for c in result["changed"]))
    if result.get("unavailable"):
        parts.append("unavailable " + ", ".join(u["name"] for u in result["unavailable"]))
    click.echo(line + (f" ({'; '.join(parts)})" if parts else ""))
    for entry in result.get("skipped") or []:
        click.echo(f"  skipped {entry['name']}: {entry['reason']}")


@marketplace.command("remove")
@click.argument("slug")
@click.option("--purge", is_flag=True, help="Also delete the working copy on the server.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(slug: str, purge: bool, yes: bool) -> None:
    """Unregister a marketplace (its plugins, grants and subscriptions go with it)."""
    if not yes:
        click.confirm(f"Remove marketplace {slug} with its grants and subscriptions?", abort=True)
    from_config().delete(f"/api/marketplaces/{slug}", purge="true" if purge else None)
    click.echo(f"Removed marketplace {slug}.")


@marketplace.command("system")
@click.argument("plugin_ref", metavar="SLUG/PLUGIN")
@click.option("--mark/--unmark", "mark", default=None, help="Make it a system plugin, or stop it being one.")
@click.option(
    "--revoke-fanout", is_flag=True, help="With --unmark: also revoke the grants and subscriptions the mark added."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def system(plugin_ref: str, mark: bool | None, revoke_fanout: bool, yes: bool) -> None:
    """Mark a plugin system (every group granted, every user subscribed, no opt-out) or unmark it.

    A plain --unmark only flips the mark; --revoke-fanout also deletes what the fan-out added,
    never rows made by hand.
    """
    if mark is None:
        raise click.UsageError("give --mark or --unmark")
    if mark and revoke_fanout:
        raise click.UsageError("--revoke-fanout goes with --unmark")
    slug, _, name = plugin_ref.partition("/")
    if not slug or not name:
        raise click.UsageError("name the plugin as SLUG/PLUGIN (see 'agnes admin marketplace plugins SLUG')")
    client = from_config()
    path = f"/api/marketplaces/{slug}/plugins/{quote(name, safe='')}/system"
    preview = client.get(path)
    if mark:
        question = (
            f"Make {plugin_ref} a system plugin? {preview['mark']['groups']} groups are granted it and"
            f" {preview['mark']['users']} users subscribed."
        )
    else:
        unmark = preview["unmark"]
        question = (
            f"Unmark {plugin_ref}? The fan-out added {unmark['fanout_grants']} grants and"
            f" {unmark['fanout_subscriptions']} subscriptions; "
            + ("they are revoked." if revoke_fanout else "they stay.")
        )
    if not yes:
        click.confirm(question, abort=True)
    if mark:
        done = client.post(path)
        click.echo(
            f"{plugin_ref} is a system plugin: {done['affected_groups']} groups granted,"
            f" {done['affected_users']} users subscribed."
        )
    else:
        done = client.delete(path, revoke_fanout="1" if revoke_fanout else None)
        click.echo(
            f"{plugin_ref} unmarked: {done['revoked_grants']} grants and"
            f" {done['revoked_subscriptions']} subscriptions revoked."
        )
