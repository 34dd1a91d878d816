"""Remote tables from the command line: ``agnes sample``, ``agnes snapshot ...`` and ``agnes disk-info``
(``agnes query --remote``, ``schema`` and ``describe`` live in :mod:`cli.commands.data`).

A snapshot is a filtered slice of a remote table fetched once as parquet into
``<workspace>/data/snapshots/<name>.parquet`` (written to a ``.part`` file, checked, renamed) with
a view ``<name>`` in the workspace database, so ``agnes query "SELECT ... FROM <name>"`` reads it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click

from cli.commands.data import WORKSPACE_HELP, _echo, _render, _size

SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.I)
AGE_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.I)
# Seconds between plain progress lines (not a terminal).
PLAIN_EVERY = 2.0


def parse_size(text: str) -> int:
    """``1GB``, ``500MB``, ``2GiB``, ``1000`` → bytes (kB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)."""
    match = SIZE_RE.match(text or "")
    if not match:
        raise click.BadParameter(f"{text!r} is not a size like 500MB or 1GB")
    number, unit = float(match.group(1)), match.group(2).lower()
    letter = unit.replace("i", "").replace("b", "")
    base = 1024 if "i" in unit else 1000
    return int(number * base ** {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[letter])


def parse_age(text: str) -> float:
    """``30d``, ``12h``, ``2w``, ``45m``, ``10s`` → seconds."""
    match = AGE_RE.match(text or "")
    if not match:
        raise click.BadParameter(f"{text!r} is not an age like 30d, 12h or 2w")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2).lower()]


def _age(created: str | None) -> str:
    if not created:
        return "?"
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(0.0, (datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


# -- sample ----------------------------------------------------------------------------------------


@click.command()
@click.argument("table")
@click.option("-n", "count", type=click.IntRange(1, 100), default=10, show_default=True, help="Rows (at most 100).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sample(table: str, count: int, as_json: bool) -> None:
    """A few rows of a table, read on the server (at the source for remote tables)."""
    from urllib.parse import quote

    from cli.client import from_config

    answer = from_config().get(f"/api/v2/sample/{quote(table, safe='')}", n=count)
    if as_json:
        from cli.output import print_json

        print_json(answer)
        return
    names = [c["name"] for c in answer["columns"]]
    _render([tuple(row) for row in answer["rows"]], names, "table")


# -- snapshots -------------------------------------------------------------------------------------


class _Progress:
    """Bytes received against the server's estimate: a rich bar on a terminal, else a line at the
    first bytes and every :data:`PLAIN_EVERY` seconds."""

    def __init__(self, name: str, expected: int, quiet: bool, rows: int = 0) -> None:
        self.name, self.expected, self.quiet = name, expected, quiet
        self.received = 0
        self.started = self.last = time.monotonic()
        self.bar: Any = None
        if not quiet and not sys.stdout.isatty():
            about = f": about {rows:,} rows, {_size(expected)} expected" if expected else ""
            _echo(f"snapshot {name}: the source is running the query{about}")
        if not quiet and sys.stdout.isatty():
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            self.bar = Progress(TextColumn(f"snapshot {name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            self.bar.start()
            self.task = self.bar.add_task(name, total=expected or None)

    def advance(self, nbytes: int) -> None:
        first = self.received == 0
        self.received += nbytes
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=self.received, total=max(self.expected, self.received) or None)
            return
        now = time.monotonic()
        if first or now - self.last >= PLAIN_EVERY:
            self.last = now
            rate = self.received / max(now - self.started, 1e-6)
            about = f" of about {_size(self.expected)}" if self.expected else ""
            _echo(f"snapshot {self.name}: {_size(self.received)}{about}, {_size(rate)}/s")

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _spec(table: str, select: str | None, where: str | None, limit: int | None, order_by: str | None) -> dict:
    return {"table": table, "select": select or None, "where": where or None, "limit": limit, "order_by": order_by}


def _print_estimate(estimate: dict[str, Any]) -> None:
    _echo(f"table:           {estimate['table']}")
    _echo(f"rows (estimate): {estimate['rows']:,}")
    _echo(f"source reads:    {_size(estimate['bytes_scanned'])}")
    _echo(f"local size:      about {_size(estimate['expected_local_bytes'])} (parquet)")
    _echo(f"runs at source:  {estimate['sql']}")


def _parquet_rows(path: Any) -> int:
    """Rows of a complete parquet file; raises click.ClickException for a cut or corrupt one."""
    import duckdb

    try:
        con = duckdb.connect(":memory:")
        try:
            found = con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", [str(path)]).fetchone()
        finally:
            con.close()
    except duckdb.Error as exc:
        raise click.ClickException(f"the snapshot arrived incomplete ({str(exc).splitlines()[0]})") from None
    return int(found[0] or 0) if found else 0


def fetch_snapshot(ws: Any, name: str, spec: dict[str, Any], *, quiet: bool = False) -> dict[str, Any]:
    """Stream the slice into ``data/snapshots/<name>.parquet`` (atomically), record it in the index and
    create or replace its view. Returns the index entry. Raises ApiError (e.g. 403 after a revoked
    grant: the previous file stays) or click.ClickException."""
    from cli.client import Response as ApiResponse
    from cli.client import error_from, from_config

    client = from_config()
    body = json.dumps({k: v for k, v in spec.items() if v is not None}).encode()
    raw = client.open("POST", "/api/v2/scan", body=body, headers={"Content-Type": "application/json"})
    if raw.status >= 400:
        raise error_from(ApiResponse(raw.status, {}, raw.read()))
    expected = int(raw.getheader("X-Agnes-Estimated-Bytes") or 0)
    estimated_rows = int(raw.getheader("X-Agnes-Estimated-Rows") or 0)
    ws.snapshots.mkdir(parents=True, exist_ok=True)
    part = ws.snapshots / f".{name}.{os.getpid()}.part"
    progress = _Progress(name, expected, quiet, estimated_rows)
    try:
        with part.open("wb") as fh:
            while block := raw.read(1 << 20):
                fh.write(block)
                progress.advance(len(block))
            fh.flush()
            os.fsync(fh.fileno())
        progress.finish()
        rows = _parquet_rows(part)
        os.replace(part, ws.snapshot_path(name))
    except BaseException:
        progress.finish()
        client.close()
        part.unlink(missing_ok=True)
        raise
    entry = {
        **{k: spec.get(k) for k in ("table", "select", "where", "limit", "order_by")},
        "rows": rows,
        "size_bytes": ws.snapshot_path(name).stat().st_size,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "server": client.server,
    }
    with ws.pull_lock():
        snapshots = ws.load_snapshots()
        snapshots[name] = entry
        ws.save_snapshots(snapshots)
        ws.update_views([name], [])
    return entry


@click.group()
def snapshot() -> None:
    """Local slices of remote tables: estimate, fetch, list, refresh, drop, prune."""


@snapshot.command("create")
@click.argument("table")
@click.option("--select", help="Columns, comma separated (default: all).")
@click.option("--where", help="A filter in the source's SQL dialect over the table's own columns.")
@click.option("--limit", type=click.IntRange(1), help="Most rows.")
@click.option("--order-by", "order_by", help="Columns to order by, e.g. 'placed DESC'.")
@click.option("--as", "name", help="Name of the snapshot and its view (default: the table id).")
@click.option("--estimate", "estimate_only", is_flag=True, help="Print the source's estimate; fetch nothing.")
@click.option("--force", is_flag=True, help="Replace a snapshot with the same name.")
@click.option("--quiet", "-q", is_flag=True, help="No progress.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def create(
    table: str,
    select: str | None,
    where: str | None,
    limit: int | None,
    order_by: str | None,
    name: str | None,
    estimate_only: bool,
    force: bool,
    quiet: bool,
    workspace: str | None,
) -> None:
    """Fetch a filtered slice of a remote table into the workspace as a view NAME."""
    from cli.client import from_config
    from cli.workspace import TABLE_ID_RE, Workspace

    spec = _spec(table, select, where, limit, order_by)
    if estimate_only:
        _print_estimate(from_config().post("/api/v2/scan/estimate", {k: v for k, v in spec.items() if v is not None}))
        return
    name = name or table
    if not TABLE_ID_RE.match(name):
        raise click.BadParameter("a name is lower-case letters, digits and _", param_hint="--as")
    ws = Workspace(workspace)
    if name in ws.local_tables():
        raise click.ClickException(f"'{name}' is a pulled table in this workspace; choose another name with --as")
    if name in ws.load_snapshots() and not force:
        raise click.ClickException(f"a snapshot '{name}' exists: 'agnes snapshot refresh {name}' or --force")
    started = time.monotonic()
    entry = fetch_snapshot(ws, name, spec, quiet=quiet)
    if not quiet:
        _echo(
            f"snapshot {name}: {entry['rows']:,} rows, {_size(entry['size_bytes'])} in"
            f' {time.monotonic() - started:.1f}s -> agnes query "SELECT ... FROM {name}"'
        )


def _granted_tables() -> set[str] | None:
    """Tables the server lets this user read (None when it cannot be asked)."""
    from cli.client import ApiError, ConfigError, from_config

    try:
        return {t["id"] for t in from_config().get("/api/catalog")["tables"]}
    except (ApiError, ConfigError):
        return None


@snapshot.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def list_snapshots(as_json: bool, workspace: str | None) -> None:
    """Snapshots in the workspace: name, table, filter, rows, size, age; orphaned when no longer granted."""
    from cli.output import print_json, print_table
    from cli.workspace import Workspace

    snapshots = Workspace(workspace).load_snapshots()
    granted = _granted_tables() if snapshots else set()
    listed = [
        {
            "name": name,
            **entry,
            "age": _age(entry.get("created_at")),
            "orphaned": None if granted is None else entry.get("table") not in granted,
        }
        for name, entry in sorted(snapshots.items())
    ]
    if as_json:
        print_json(listed)
        return
    print_table(
        [
            (
                s["name"],
                s["table"],
                (s.get("where") or "")[:40],
                s.get("rows"),
                _size(s.get("size_bytes") or 0),
                s["age"],
                "orphaned" if s["orphaned"] else ("?" if s["orphaned"] is None else ""),
            )
            for s in listed
        ],
        ["NAME", "TABLE", "FILTER", "ROWS", "SIZE", "AGE", "STATUS"],
    )


def _drop(ws: Any, names: list[str]) -> None:
    with ws.pull_lock():
        snapshots = ws.load_snapshots()
        for name in names:
            ws.snapshot_path(name).unlink(missing_ok=True)
            snapshots.pop(name, None)
        ws.save_snapshots(snapshots)
        ws.update_views([], names)


@snapshot.command("drop")
@click.argument("name")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def drop(name: str, workspace: str | None) -> None:
    """Delete a snapshot and its view."""
    from cli.workspace import Workspace

    ws = Workspace(workspace)
    if name not in ws.load_snapshots():
        raise click.ClickException(f"no snapshot '{name}' (agnes snapshot list)")
    _drop(ws, [name])
    _echo(f"snapshot {name} dropped")


@snapshot.command("refresh")
@click.argument("name")
@click.option("--quiet", "-q", is_flag=True, help="No progress.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def refresh(name: str, quiet: bool, workspace: str | None) -> None:
    """Fetch a snapshot again with the same table, columns and filter."""
    from cli.client import ApiError
    from cli.workspace import Workspace

    ws = Workspace(workspace)
    entry = ws.load_snapshots().get(name)
    if entry is None:
        raise click.ClickException(f"no snapshot '{name}' (agnes snapshot list)")
    spec = _spec(entry["table"], entry.get("select"), entry.get("where"), entry.get("limit"), entry.get("order_by"))
    try:
        done = fetch_snapshot(ws, name, spec, quiet=quiet)
    except ApiError as exc:
        if exc.status == 403:
            raise click.ClickException(
                f"refused: {exc} (snapshot '{name}' is orphaned; it stays as it was until you drop it)"
            ) from None
        raise
    if not quiet:
        _echo(f"snapshot {name}: {done['rows']:,} rows, {_size(done['size_bytes'])}")


@snapshot.command("prune")
@click.option("--older-than", "older_than", help="Age, e.g. 30d, 12h, 2w.")
@click.option("--larger-than", "larger_than", help="Size, e.g. 500MB, 1GB.")
@click.option("--dry-run", is_flag=True, help="Say what would go; delete nothing.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def prune(older_than: str | None, larger_than: str | None, dry_run: bool, workspace: str | None) -> None:
    """Delete the snapshots that meet every criterion given (older than AGE and/or larger than SIZE)."""
    from cli.workspace import Workspace

    if not older_than and not larger_than:
        raise click.UsageError("say --older-than and/or --larger-than")
    max_age = parse_age(older_than) if older_than else None
    min_size = parse_size(larger_than) if larger_than else None
    ws = Workspace(workspace)
    now = datetime.now(UTC)
    chosen = []
    for name, entry in sorted(ws.load_snapshots().items()):
        try:
            created = datetime.fromisoformat(str(entry.get("created_at")).replace("Z", "+00:00"))
            age = (now - created).total_seconds()
        except ValueError:
            age = float("inf")
        size = int(entry.get("size_bytes") or 0)
        if (max_age is None or age > max_age) and (min_size is None or size > min_size):
            chosen.append((name, size))
    freed = sum(size for _, size in chosen)
    for name, size in chosen:
        _echo(f"{'would drop' if dry_run else 'dropped'} {name} ({_size(size)})")
    if chosen and not dry_run:
        _drop(ws, [name for name, _ in chosen])
    _echo(f"{len(chosen)} snapshot(s), {_size(freed)}{' (dry run)' if dry_run else ''}")


@click.command("disk-info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def disk_info(as_json: bool, workspace: str | None) -> None:
    """What the workspace holds on disk: pulled tables, snapshots, the database, leftovers, free space."""
    import shutil

    from cli.workspace import Workspace

    ws = Workspace(workspace)

    def total(paths: list[Any]) -> int:
        return sum(p.stat().st_size for p in paths if p.is_file())

    tables = [ws.parquet(t) for t in ws.local_tables()]
    snapshots = [ws.snapshot_path(n) for n in ws.load_snapshots()]
    leftovers = [*ws.tables.glob(".*.part"), *ws.snapshots.glob(".*.part")] if ws.data.is_dir() else []
    database = [ws.database] if ws.database.is_file() else []
    free = shutil.disk_usage(ws.root if ws.root.exists() else ws.root.parent).free
    info = {
        "workspace": str(ws.root),
        "tables": {"count": len(tables), "bytes": total(tables)},
        "snapshots": {"count": len(snapshots), "bytes": total(snapshots)},
        "database_bytes": total(database),
        "partial_downloads": {"count": len(leftovers), "bytes": total(leftovers)},
        "free_bytes": free,
    }
    if as_json:
        from cli.output import print_json

        print_json(info)
        return
    _echo(f"workspace:  {info['workspace']}")
    _echo(f"tables:     {len(tables)} pulled, {_size(info['tables']['bytes'])}")
    _echo(f"snapshots:  {len(snapshots)}, {_size(info['snapshots']['bytes'])}")
    _echo(f"database:   {_size(info['database_bytes'])}")
    if leftovers:
        _echo(f"partial:    {len(leftovers)} unfinished download(s), {_size(info['partial_downloads']['bytes'])}")
    _echo(f"free space: {_size(free)}")
