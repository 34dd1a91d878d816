"""``agnes admin register-table | update-table | unregister-table | list-tables | sync-tables`` and
``agnes admin metrics import`` (needs an admin's token)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import from_config
from cli.output import print_json, print_table


def _spec(options: tuple[str, ...], spec_json: str | None) -> dict[str, Any]:
    """Connector options from ``--spec JSON`` and repeated ``-o key=value`` (value JSON when it parses)."""
    spec: dict[str, Any] = {}
    if spec_json:
        try:
            loaded = json.loads(spec_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--spec") from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--spec")
        spec.update(loaded)
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--option")
        parsed: Any = value
        if value[:1] in "[{" or value in ("true", "false"):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
        spec[key.strip()] = parsed
    return spec


def _fields(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


TABLE_OPTIONS = [
    click.option("--description", help="What the table holds (shown to analysts)."),
    click.option(
        "--query-mode", type=click.Choice(["local", "materialized", "remote"]), help="Default: the connector's."
    ),
    click.option("--schedule", help="'every 15m', 'every 2h', 'daily 03:00' or a cron expression (UTC)."),
    click.option("--primary-key", help="Column(s) identifying a row."),
    click.option(
        "--option",
        "-o",
        "options",
        multiple=True,
        metavar="KEY=VALUE",
        help="Connector option, repeatable (e.g. -o location=/data/x.csv -o null_strings=NA).",
    ),
    click.option("--spec", "spec_json", metavar="JSON", help="Connector options as a JSON object."),
]


def _table_options(func):  # type: ignore[no-untyped-def]
    for option in reversed(TABLE_OPTIONS):
        func = option(func)
    return func


@click.command("register-table")
@click.argument("name")
@click.option("--source-type", required=True, help="csv, parquet, json, sql or postgres.")
@click.option("--id", "table_id", help="Table id / view name (default: derived from NAME).")
@click.option("--source-name", help="Extract directory shared by several tables (default: the source type).")
@_table_options
@click.option("--json", "as_json", is_flag=True, help="Print the registered table as JSON.")
def register_table(
    name: str,
    source_type: str,
    table_id: str | None,
    source_name: str | None,
    description: str | None,
    query_mode: str | None,
    schedule: str | None,
    primary_key: str | None,
    options: tuple[str, ...],
    spec_json: str | None,
    as_json: bool,
) -> None:
    """Register a table (then grant it and run 'agnes admin sync-tables ID')."""
    body = _fields(
        name=name,
        source_type=source_type,
        id=table_id,
        source_name=source_name,
        description=description,
        query_mode=query_mode,
        schedule=schedule,
        primary_key=primary_key,
        source_spec=_spec(options, spec_json),
    )
    created = from_config().post("/api/admin/register-table", body)
    if as_json:
        print_json(created)
        return
    click.echo(f"Registered table {created['id']} ({created['source_type']}, {created['query_mode']}).")
    click.echo(f"Next: agnes admin grant create GROUP table {created['id']}; agnes admin sync-tables {created['id']}")


@click.command("update-table")
@click.argument("table_id")
@click.option("--name", help="Display name.")
@_table_options
def update_table(
    table_id: str,
    name: str | None,
    description: str | None,
    query_mode: str | None,
    schedule: str | None,
    primary_key: str | None,
    options: tuple[str, ...],
    spec_json: str | None,
) -> None:
    """Change a table's name, description, mode, schedule or connector options (merged into the current ones)."""
    client = from_config()
    body = _fields(
        name=name, description=description, query_mode=query_mode, schedule=schedule, primary_key=primary_key
    )
    if options or spec_json:
        current = client.get(f"/api/admin/registry/{table_id}")["source_spec"]
        body["source_spec"] = {**current, **_spec(options, spec_json)}
    updated = client.put(f"/api/admin/registry/{table_id}", body)
    click.echo(f"Updated table {updated['id']}.")


@click.command("unregister-table")
@click.argument("table_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def unregister_table(table_id: str, yes: bool) -> None:
    """Remove a table, its files and its grants."""
    if not yes:
        click.confirm(f"Unregister {table_id}, delete its extract and revoke its grants?", abort=True)
    from_config().delete(f"/api/admin/registry/{table_id}")
    click.echo(f"Unregistered table {table_id}.")


@click.command("list-tables")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_tables(as_json: bool) -> None:
    """Registered tables with their last sync."""
    found = from_config().get("/api/admin/registry")["tables"]
    if as_json:
        print_json(found)
        return
    rows = []
    for t in found:
        sync = t.get("sync") or {}
        rows.append(
            (
                t["id"],
                t["source_type"],
                t["query_mode"],
                t["schedule"] or "on demand",
                sync.get("status") or "never",
                sync.get("rows"),
                (sync.get("error") or "")[:40],
            )
        )
    print_table(rows, ["TABLE", "SOURCE", "MODE", "SCHEDULE", "LAST SYNC", "ROWS", "ERROR"])


# How often ``sync-tables --wait`` polls the jobs (seconds) and how long it waits at most.
WAIT_POLL = 0.5
WAIT_MAX = 3600


@click.command("sync-tables")
@click.argument("table_ids", nargs=-1)
@click.option("--wait", is_flag=True, help="Wait for the syncs to finish; exit 1 if one fails.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sync_tables(table_ids: tuple[str, ...], wait: bool, as_json: bool) -> None:
    """Sync the given tables now (no ids: every table that is due or has no schedule)."""
    import time
    from urllib.parse import quote

    client = from_config()
    result = client.post("/api/sync/trigger", {"tables": list(table_ids)} if table_ids else None)
    jobs = result["jobs"]
    if wait:
        deadline = time.monotonic() + WAIT_MAX
        while any(j["state"] in ("queued", "running") for j in jobs):
            if time.monotonic() > deadline:
                raise click.ClickException("gave up waiting for the syncs")
            time.sleep(WAIT_POLL)
            jobs = [client.get(f"/api/jobs/{quote(j['id'], safe='')}") | {"table": j["table"]} for j in jobs]
    if as_json:
        print_json({**result, "jobs": jobs})
    else:
        for job in jobs:
            click.echo(f"{job['table']}: {job['state']} (job {job['id']})")
            if job["state"] == "failed":
                click.echo(f"error: {job['table']}: {job['error']}", err=True)
        if result["skipped"]:
            click.echo(f"not due: {', '.join(result['skipped'])}")
    if wait and any(j["state"] == "failed" for j in jobs):
        raise SystemExit(1)


@click.group()
def metrics() -> None:
    """Business metric definitions."""


@metrics.command("import")
@click.argument("path", type=click.Path(exists=True))
def metrics_import(path: str) -> None:
    """Import metrics from a YAML file or a directory of <category>/<name>.yml files."""
    root = Path(path)
    files = [root] if root.is_file() else sorted([*root.rglob("*.yml"), *root.rglob("*.yaml")])
    if not files:
        raise click.ClickException(f"no .yml files under {root}")
    base = root.parent if root.is_file() else root
    documents = [{"path": str(f.relative_to(base)), "text": f.read_text(encoding="utf-8")} for f in files]
    result = from_config().post("/api/admin/metrics/import", {"documents": documents})
    click.echo(f"Imported {result['count']} metric(s): {', '.join(result['imported'])}")
