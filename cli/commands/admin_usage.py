"""``agnes admin usage export|prune|reprocess`` and ``agnes admin ask`` (an admin's token)."""

from __future__ import annotations

import sys
import time
from urllib.parse import urlencode

import click

from cli.client import error_from, from_config
from cli.output import print_json, print_table

POLL_SECONDS = 0.5
WAIT_LIMIT = 4 * 3600


@click.group()
def usage() -> None:
    """Telemetry: export usage, prune old events, reprocess sessions."""


@usage.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default="csv", show_default=True)
@click.option("--what", type=click.Choice(["events", "sessions"]), default="events", show_default=True)
@click.option("--since", help="Start: a date (2026-05-01), a time, or 7d / 12h ago.")
@click.option("--until", help="End (exclusive; a bare date includes that day).")
@click.option("--user", help="Only this user (email or id).")
@click.option("--source", type=click.Choice(["curated", "flea", "builtin", "unattributed"]), help="Only this source.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to FILE (default: standard output).")
def export(
    fmt: str, what: str, since: str | None, until: str | None, user: str | None, source: str | None, out: str | None
) -> None:
    """Download usage events (or session summaries) as CSV, NDJSON or Parquet."""
    import os

    params = {
        k: v
        for k, v in {
            "format": fmt,
            "what": what,
            "since": since,
            "until": until,
            "user": user,
            "source": source,
        }.items()
        if v
    }
    client = from_config()
    meta, chunks = client.stream(f"/api/admin/usage/export?{urlencode(params)}")
    if out:
        tmp = f"{out}.part"
        with open(tmp, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, out)
        click.echo(f"{meta.headers.get('x-agnes-rows', '?')} rows written to {out}", err=True)
    else:
        if fmt == "parquet" and sys.stdout.isatty():
            raise click.ClickException("Parquet is binary: give --out FILE")
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()


@usage.command("prune")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def prune(as_json: bool) -> None:
    """Delete usage events older than AGNES_USAGE_RETENTION_DAYS (rollups stay)."""
    result = from_config().post("/api/admin/usage/prune")
    if as_json:
        print_json(result)
    elif result.get("status") == "skipped":
        click.echo(f"Nothing pruned: {result.get('reason')}")
    else:
        click.echo(f"Deleted {result.get('events')} events older than {result.get('cutoff')}.")


@usage.command("reprocess")
@click.option("--wait", is_flag=True, help="Wait until it finishes, showing files done.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
def reprocess(wait: bool, as_json: bool) -> None:
    """Process every uploaded session again (new tables swapped in at the end)."""
    client = from_config()
    job = client.post("/api/admin/usage/reprocess")["job"]
    if wait:
        deadline = time.monotonic() + WAIT_LIMIT
        shown = None
        while job["state"] in ("queued", "running"):
            if time.monotonic() > deadline:
                raise click.ClickException(f"gave up waiting for job {job['id']}")
            progress = job.get("progress") or {}
            line = progress.get("message")
            if line and line != shown and not as_json:
                click.echo(line, err=True)
                shown = line
            time.sleep(POLL_SECONDS)
            job = client.get(f"/api/jobs/{job['id']}")
        if job["state"] == "failed":
            raise click.ClickException(f"reprocess failed: {job.get('error')}")
    if as_json:
        print_json(job)
    elif wait:
        result = job.get("result") or {}
        click.echo(
            f"Reprocessed {result.get('files', 0)} files: {result.get('events', 0)} events,"
            f" {result.get('failed', 0)} failed."
        )
    else:
        click.echo(f"Reprocess started (job {job['id']}).")


@click.command("ask")
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ask(question: str, as_json: bool) -> None:
    """Ask the telemetry a question in plain language (read-only SQL, at most 1,000 rows)."""
    client = from_config()
    response = client.request("POST", "/api/admin/usage/ask", json_body={"question": question}, expect=(200, 422))
    answer = response.json() or {}
    if response.status == 422:
        if as_json:
            print_json(answer)
        else:
            if answer.get("sql"):
                click.echo(answer["sql"])
        raise error_from(response)
    if as_json:
        print_json(answer)
        return
    click.echo(answer.get("sql", ""))
    if answer.get("rationale"):
        click.echo(f"-- {answer['rationale']}")
    print_table(answer.get("rows") or [], answer.get("columns") or [])
    if answer.get("truncated"):
        click.echo("(first 1,000 rows)", err=True)
