"""``agnes pull``, ``query``, ``catalog``, ``schema``, ``describe`` and ``init``: data tables on your machine."""

from __future__ import annotations

import sys
from typing import Any

import click

# Seconds between overall progress lines when output is not a terminal.
PLAIN_EVERY = 5.0
WORKSPACE_HELP = "Workspace directory (default: $AGNES_WORKSPACE or the current directory)."


def _size(num: float) -> str:
    """Bytes in IEC units (KiB, MiB, GiB), the one system the server's pages use too (agnes/units.py)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if num < 1024 or unit == "TiB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    raise AssertionError("unreachable")


def _echo(text: str, err: bool = False) -> None:
    """Print, replacing what the console cannot encode (cs-CZ code pages, ASCII pipes)."""
    stream = sys.stderr if err else sys.stdout
    encoding = getattr(stream, "encoding", None) or "ascii"
    click.echo(text.encode(encoding, errors="replace").decode(encoding, errors="replace"), err=err)


# -- progress ----------------------------------------------------------------------------------


class PlainReporter:
    """Non-TTY progress (hooks, CI, pipes), ASCII only: the plan, one line per finished table, and
    an overall line at most every :data:`PLAIN_EVERY` seconds while bytes flow, so a long first
    pull is never silent."""

    def __init__(self, every: float | None = None) -> None:
        import threading
        import time

        self.clock = time.monotonic
        self.every = PLAIN_EVERY if every is None else every
        self.sizes: dict[str, int] = {}
        self.count = 0
        self.received = 0
        self.total = 0
        self.started = self.last = self.clock()
        self.lock = threading.Lock()

    def start(self, tables: list[tuple[str, int]]) -> None:
        self.sizes = dict(tables)
        self.total = sum(self.sizes.values())
        self.started = self.last = self.clock()
        _echo(f"agnes pull: downloading {len(tables)} table(s), {_size(self.total)}")

    def advance(self, table: str, nbytes: int) -> None:
        with self.lock:
            self.received += nbytes
            now = self.clock()
            if now - self.last < self.every or self.received >= self.total:
                return
            self.last = now
            rate = self.received / max(now - self.started, 1e-6)
            left = (self.total - self.received) / rate if rate else 0
            percent = 100 * self.received // max(self.total, 1)
            _echo(
                f"  {_size(self.received)} of {_size(self.total)} ({percent}%), {_size(rate)}/s,"
                f" about {int(left // 60)}m{int(left % 60):02d}s left"
            )

    def done(self, table: str, ok: bool, message: str = "") -> None:
        with self.lock:
            self.count += 1
            status = "ok" if ok else f"FAILED: {message}"
            _echo(f"[{self.count}/{len(self.sizes)}] {table} {_size(self.sizes.get(table, 0))} {status}", err=not ok)

    def finish(self) -> None:
        pass


class RichReporter:
    """A progress bar with sizes, speed and ETA (terminals)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),  # KiB/MiB, as everywhere else
            TextColumn("{task.fields[speed]}"),
            TimeRemainingColumn(),
            console=Console(stderr=False),
            transient=False,
        )
        self.total_task: Any = None
        self.tasks: dict[str, Any] = {}

    def start(self, tables: list[tuple[str, int]]) -> None:
        self.progress.start()
        total = sum(size for _, size in tables)
        self.total_task = self.progress.add_task(f"{len(tables)} table(s)", total=total, speed="")

    def advance(self, table: str, nbytes: int) -> None:
        self.progress.advance(self.total_task, nbytes)
        task = next(t for t in self.progress.tasks if t.id == self.total_task)
        speed = task.speed  # rich's own estimate, shown in IEC units
        self.progress.update(self.total_task, speed=f"{_size(speed)}/s" if speed else "")

    def done(self, table: str, ok: bool, message: str = "") -> None:
        self.progress.console.print(f"{table}: {'ok' if ok else 'failed: ' + message}", markup=False)

    def finish(self) -> None:
        self.progress.stop()


def _reporter(quiet: bool, as_json: bool):  # type: ignore[no-untyped-def]
    from cli.pull import Reporter

    if quiet or as_json:
        return Reporter()
    if sys.stdout.isatty():
        try:
            return RichReporter()
        except Exception:  # a console rich cannot drive still gets plain lines
            return PlainReporter()
    return PlainReporter()


# -- commands ----------------------------------------------------------------------------------


@click.command()
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--dry-run", is_flag=True, help="Show what would change; download nothing.")
@click.option("--table", "tables", multiple=True, help="Only this table (repeatable); nothing is removed.")
@click.option(
    "--skip-materialized",
    is_flag=True,
    help="Leave materialized (query result) tables out of this pull; local copies are kept.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 64),
    help="Downloads at once (default: $AGNES_PULL_PARALLELISM or 4).",
)
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def pull(
    quiet: bool,
    as_json: bool,
    dry_run: bool,
    tables: tuple[str, ...],
    skip_materialized: bool,
    jobs: int | None,
    workspace: str | None,
) -> None:
    """Download the tables you are granted that changed, and rebuild local views."""
    from cli.client import from_config
    from cli.pull import run_pull
    from cli.workspace import Workspace, WorkspaceBusy

    ws = Workspace(workspace)
    try:
        outcome = run_pull(
            from_config(),
            ws,
            only=list(tables) or None,
            dry_run=dry_run,
            reporter=_reporter(quiet, as_json),
            parallelism=jobs,
            skip_materialized=skip_materialized,
        )
    except WorkspaceBusy as exc:
        raise click.ClickException(str(exc)) from None
    summary = outcome.summary()
    if as_json:
        from cli.output import print_json

        print_json(
            {
                **summary,
                "dry_run": dry_run,
                "workspace": str(ws.root),
                "would_download": outcome.plan.download if dry_run else [],
            }
        )
    elif dry_run and not quiet:
        _echo(f"would download: {', '.join(outcome.plan.download) or 'nothing'}")
        _echo(f"would remove:   {', '.join(outcome.plan.remove) or 'nothing'}")
    elif not quiet:
        parts = [
            f"{len(summary['downloaded'])} downloaded ({_size(summary['bytes'])})",
            f"{len(summary['unchanged'])} unchanged",
        ]
        if summary["removed"]:
            parts.append(f"{len(summary['removed'])} removed")
        _echo(f"agnes pull: {', '.join(parts)} in {summary['seconds']:.1f}s -> {ws.data}")
    if outcome.remote_new and not quiet and not as_json:
        names = ", ".join(outcome.remote_new)
        _echo(
            f"agnes pull: not downloaded, kept at their source (remote): {names}. Look with 'agnes schema' or"
            " 'agnes sample', query with 'agnes query --remote', fetch a slice with 'agnes snapshot create'."
        )
    for table_id, error in outcome.errors.items():
        if not as_json:
            _echo(f"error: {table_id}: {error}", err=True)
    for warning in outcome.warnings:
        if not as_json:
            _echo(f"warning: {warning}", err=True)
    if outcome.errors:
        sys.exit(1)


def _render(rows: list[tuple[Any, ...]], names: list[str], fmt: str) -> None:
    if fmt == "json":
        from cli.output import print_json

        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    if fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
        return
    cells = [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    import shutil

    if sum(widths) + 2 * len(widths) > shutil.get_terminal_size((120, 24)).columns and len(names) > 1:
        # Wide tables: one record per block, so every column stays readable.
        label = max(len(n) for n in names)
        for index, row in enumerate(cells, 1):
            _echo(f"-[ row {index} ]" + "-" * 20)
            for name, value in zip(names, row, strict=True):
                _echo(f"{name.ljust(label)} | {value}")
    else:
        _echo("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip())
        _echo("  ".join("-" * w for w in widths))
        for row in cells:
            _echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    _echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def _open(workspace: str | None):  # type: ignore[no-untyped-def]
    from cli.workspace import Workspace

    try:
        return Workspace(workspace).connect()
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


def _sql_error(exc: Exception, workspace: str | None) -> click.ClickException:
    """The DuckDB error's first line; a missing table gets a hint (remote tables: query --remote or a snapshot)."""
    import re

    from cli.workspace import Workspace

    message = str(exc).splitlines()[0]
    if "does not exist" in message:
        named = re.search(r"with name (\w+) does not exist", message)
        remote = Workspace(workspace).load_remote()
        if named and named.group(1).lower() in remote:
            table = named.group(1).lower()
            message += (
                f" ({table} is a remote table: run the query on the server with 'agnes query --remote',"
                f" or fetch a slice with 'agnes snapshot create {table} --where ...')"
            )
        else:
            message += " (tables you can query: 'agnes catalog'; pull them with 'agnes pull')"
    return click.ClickException(message)


def _run_sql(workspace: str | None, sql: str, limit: int | None) -> tuple[list[tuple[Any, ...]], list[str], int]:
    """``(rows, column names, total rows)``: at most ``limit`` rows (None: all); the rest of the
    result is counted, not kept."""
    import duckdb

    con = _open(workspace)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description or []]
        if not limit:
            rows = cursor.fetchall()
            return rows, names, len(rows)
        rows = cursor.fetchmany(limit + 1)
        total = len(rows)
        while len(rows) > limit and (more := cursor.fetchmany(100_000)):
            total += len(more)
        return rows[:limit], names, total
    except duckdb.Error as exc:
        raise _sql_error(exc, workspace) from None
    finally:
        con.close()


# File formats --output writes, by the file name's extension.
OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


def _write_output(workspace: str | None, sql: str, output: str) -> int:
    """Write every row of ``sql`` to ``output`` (CSV, Parquet or JSON by extension), streaming in
    batches through a temporary file renamed into place; returns the row count."""
    import json
    import os
    from pathlib import Path

    import duckdb

    target = Path(output)
    kind = OUTPUT_FORMATS.get(target.suffix.lower())
    if kind is None:
        raise click.ClickException(f"--output: name a .csv, .parquet or .json file (not '{target.name}')")
    if not target.parent.is_dir():
        raise click.ClickException(f"--output: the folder {target.parent} does not exist")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    con = _open(workspace)
    rows = 0
    try:
        relation = con.sql(sql)
        # Streaming Arrow batches: to_arrow_reader in DuckDB 2, fetch_arrow_reader in 1.x.
        reader = (getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader)(100_000)
        if kind == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetWriter(tmp, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        elif kind == "csv":
            import pyarrow.csv as pacsv

            with pacsv.CSVWriter(str(tmp), reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    rows += batch.num_rows
        else:
            with open(tmp, "w", encoding="utf-8") as out:
                out.write("[")
                for batch in reader:
                    for record in batch.to_pylist():
                        out.write(("," if rows else "") + "\n" + json.dumps(record, default=str, ensure_ascii=False))
                        rows += 1
                out.write("\n]\n")
        os.replace(tmp, target)
    except duckdb.Error as exc:
        raise _sql_error(exc, workspace) from None
    finally:
        tmp.unlink(missing_ok=True)
        con.close()
    return rows


def _run_remote(sql: str, limit: int) -> tuple[list[tuple[Any, ...]], list[str]]:
    """POST /api/query: run on the server (remote tables at their source). Prints a note when cut."""
    from cli.client import from_config

    answer = from_config().post("/api/query", {"sql": sql, "limit": limit or 1000})
    if answer.get("truncated"):
        _echo(f"(showing the first {answer['limit']:,} rows; use --limit, max 100,000)", err=True)
    return [tuple(row) for row in answer["rows"]], [c["name"] for c in answer["columns"]]


@click.command()
@click.argument("sql")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--limit", type=int, default=1000, show_default=True, help="Most rows printed (0 = all).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write every row to FILE instead of printing: .csv, .parquet or .json.",
)
@click.option(
    "--remote",
    is_flag=True,
    help="Run on the server: remote tables at their source, others on the server's copy (max 100,000 rows).",
)
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def query(sql: str, fmt: str, limit: int, output: str | None, remote: bool, workspace: str | None) -> None:
    """Run read-only SQL (DuckDB) over the pulled tables and snapshots, or on the server with --remote.

    One statement that reads (SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN); COPY, ATTACH,
    INSTALL/LOAD, SET and writes are refused (exit 1). Files outside the workspace cannot be read.
    With --remote the server checks the statement and the tables it names.
    """
    from cli.readonly import refusal

    if remote:
        if output:
            raise click.ClickException("--output: not with --remote; fetch a slice with 'agnes snapshot create'")
        remote_rows, remote_names = _run_remote(sql, limit)
        _render(remote_rows, remote_names, fmt)
        return
    reason = refusal(sql)
    if reason:
        raise click.ClickException(reason)
    if output:
        written = _write_output(workspace, sql, output)
        _echo(f"wrote {written:,} row{'s' if written != 1 else ''} to {output}", err=True)
        return
    rows, names, total = _run_sql(workspace, sql, limit or None)
    _render(rows, names, fmt)
    if total > len(rows):
        _echo(
            f"showing {len(rows):,} of {total:,} rows; use --limit N (0 = all) or --output file.parquet",
            err=True,
        )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--metrics", is_flag=True, help="List business metrics instead of tables.")
@click.option("--show", "show", metavar="CATEGORY/NAME", help="Show one metric in full.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def catalog(as_json: bool, metrics: bool, show: str | None, workspace: str | None) -> None:
    """The tables you can pull (or the business metrics), with sizes and whether they are pulled."""
    from cli.client import from_config
    from cli.output import print_json, print_table
    from cli.workspace import Workspace

    client = from_config()
    if show:
        from urllib.parse import quote

        metric = client.get(f"/api/metrics/{quote(show)}")
        if as_json:
            print_json(metric)
            return
        for key, value in metric.items():
            if value not in (None, "", [], {}):
                _echo(f"{key}: {value}")
        return
    if metrics:
        found = client.get("/api/metrics")["metrics"]
        if as_json:
            print_json(found)
            return
        print_table(
            [(m["id"], m["display_name"] or m["name"], m["table"], m["description"][:60]) for m in found],
            ["METRIC", "NAME", "TABLE", "DESCRIPTION"],
        )
        return
    found = client.get("/api/catalog")["tables"]
    local = set(Workspace(workspace).local_tables())
    if as_json:
        print_json([{**t, "pulled": t["id"] in local} for t in found])
        return
    print_table(
        [
            (
                t["id"],
                t["query_mode"],
                t["rows"],
                _size(t["size_bytes"] or 0),
                "yes" if t["id"] in local else "",
                (t["description"] or "")[:50],
            )
            for t in found
        ],
        ["TABLE", "MODE", "ROWS", "SIZE", "PULLED", "DESCRIPTION"],
    )


def _columns(table: str, workspace: str | None) -> list[tuple[str, str]]:
    from cli.workspace import TABLE_ID_RE

    if not TABLE_ID_RE.match(table):
        raise click.ClickException(f"'{table}' is not a table id")
    rows, _, _ = _run_sql(workspace, f'DESCRIBE "{table}"', None)
    return [(r[0], r[1]) for r in rows]


def _server_schema(table: str, workspace: str | None) -> dict[str, Any] | None:
    """The server's catalog data for a table not in the workspace (remote tables): no scan. None
    when the table is pulled or a snapshot here."""
    from cli.client import from_config
    from cli.workspace import Workspace

    ws = Workspace(workspace)
    if table in ws.local_tables() or table in ws.load_snapshots():
        return None
    from urllib.parse import quote

    return from_config().get(f"/api/v2/schema/{quote(table, safe='')}")


@click.command()
@click.argument("table")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def schema(table: str, as_json: bool, workspace: str | None) -> None:
    """Columns and types of a pulled table or snapshot, or (from the server's catalog) a remote table."""
    from cli.output import print_json, print_table

    server = _server_schema(table, workspace)
    columns = [(c["name"], c["type"]) for c in server["columns"]] if server else _columns(table, workspace)
    if as_json:
        print_json([{"name": n, "type": t} for n, t in columns])
        return
    print_table(columns, ["COLUMN", "TYPE"])


@click.command()
@click.argument("table")
@click.option("--rows", "-n", "count", type=int, default=5, show_default=True, help="Sample rows to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def describe(table: str, count: int, as_json: bool, workspace: str | None) -> None:
    """Columns, row count and a few sample rows of a pulled table; for a remote table the source's
    catalog (row estimate, size) and a sample read at the source (at most 100 rows)."""
    server = _server_schema(table, workspace)
    if server is not None:
        from urllib.parse import quote

        from cli.client import from_config

        sampled = from_config().get(f"/api/v2/sample/{quote(table, safe='')}", n=max(1, min(count, 100)))
        if as_json:
            from cli.output import print_json

            print_json({**server, "sample": sampled["rows"], "sample_columns": sampled["columns"]})
            return
        about = "about " if server.get("rows_estimated") else ""
        size = _size(server.get("size_bytes") or 0)
        _echo(f"{table}: {about}{server.get('rows') or 0:,} rows, {size} at the source ({server['query_mode']})")
        for column in server["columns"]:
            _echo(f"  {column['name']}  {column['type']}")
        _echo("")
        _render([tuple(r) for r in sampled["rows"]], [c["name"] for c in sampled["columns"]], "table")
        return
    columns = _columns(table, workspace)
    total = _run_sql(workspace, f'SELECT count(*) FROM "{table}"', None)[0][0][0]
    rows, names, _ = _run_sql(workspace, f'SELECT * FROM "{table}" LIMIT {max(0, count)}', None)
    if as_json:
        from cli.output import print_json

        print_json(
            {
                "table": table,
                "rows": total,
                "columns": [{"name": n, "type": t} for n, t in columns],
                "sample": [dict(zip(names, r, strict=True)) for r in rows],
            }
        )
        return
    _echo(f"{table}: {total} rows, {len(columns)} columns")
    for name, type_name in columns:
        _echo(f"  {name}  {type_name}")
    _echo("")
    _render(rows, names, "table")
