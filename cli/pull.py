"""``agnes pull``: fetch the granted tables that changed, in parallel, resumably, verified.

Standard library only, imported lazily (start-up time matters: a SessionStart hook runs this
every session, and a pull with nothing to fetch should cost little more than the manifest).
Steps: manifest → plan (MD5 per table against the workspace state) → prune tables no longer
granted → download changed files into ``.part`` files (resuming with ``Range``/``If-Range``),
verify MD5, rename into place → save state → rebuild the workspace's views if anything changed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from cli.client import ApiError, Client
from cli.workspace import TABLE_ID_RE, Workspace

# Parallel downloads (AGNES_PULL_PARALLELISM overrides).
DEFAULT_PARALLELISM = 4
# Bytes read from the socket per step. Small enough that the block is still in the CPU cache when it
# is written and hashed: 64 KiB used a third of the kernel time of 1-4 MiB blocks here.
BLOCK = 64 << 10


@dataclass
class Plan:
    download: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # materialized tables left out on request


@dataclass
class Outcome:
    plan: Plan
    downloaded: dict[str, int] = field(default_factory=dict)  # table -> bytes fetched this run
    resumed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    views: list[str] | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "downloaded": sorted(self.downloaded),
            "resumed": sorted(self.resumed),
            "unchanged": sorted(self.plan.unchanged),
            "removed": sorted(self.plan.remove),
            "remote": sorted(self.plan.remote),
            "skipped": sorted(self.plan.skipped),
            "errors": self.errors,
            "warnings": self.warnings,
            "bytes": sum(self.downloaded.values()),
            "seconds": round(self.seconds, 3),
        }


class Reporter:
    """Progress sink; the CLI picks a rich bar, plain lines or nothing."""

    def start(self, tables: list[tuple[str, int]]) -> None: ...
    def advance(self, table: str, nbytes: int) -> None: ...
    def done(self, table: str, ok: bool, message: str = "") -> None: ...
    def finish(self) -> None: ...


def make_plan(
    manifest: dict[str, Any],
    workspace: Workspace,
    state: dict[str, dict[str, Any]],
    only: list[str] | None,
    skip_materialized: bool = False,
) -> Plan:
    plan = Plan()
    listed = manifest.get("tables") or {}
    for table_id in sorted(listed):
        entry = listed[table_id]
        if not TABLE_ID_RE.match(table_id):
            continue
        if only and table_id not in only:
            continue
        if entry.get("query_mode") == "remote":
            plan.remote.append(table_id)
            continue
        if skip_materialized and entry.get("query_mode") == "materialized":
            plan.skipped.append(table_id)
            continue
        local = state.get(table_id) or {}
        path = workspace.parquet(table_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = -1
        server_hash = entry.get("hash") or ""
        if server_hash and local.get("hash") == server_hash and size == entry.get("size_bytes"):
            plan.unchanged.append(table_id)
        else:
            plan.download.append(table_id)
    if not only:
        granted = {t for t in listed if TABLE_ID_RE.match(t) and listed[t].get("query_mode") != "remote"}
        # A skipped table is still granted: its local copy stays.
        plan.remove = sorted((set(workspace.local_tables()) | set(state)) - granted)
    return plan


def _download_and_close(
    client: Client, workspace: Workspace, table_id: str, entry: dict[str, Any], reporter: Reporter
) -> tuple[str, int, bool]:
    try:
        return _download(client, workspace, table_id, entry, reporter)
    finally:
        client.close()  # this pool thread's connection: never left half-read or open


def _download(
    client: Client, workspace: Workspace, table_id: str, entry: dict[str, Any], reporter: Reporter
) -> tuple[str, int, bool]:
    """Fetch one table into place. Returns ``(md5, bytes fetched, resumed)``. Raises on failure."""
    import hashlib

    final = workspace.parquet(table_id)
    expected = entry.get("hash") or ""
    # The part file is named after the version it holds, so bytes of an older version are never
    # continued with a newer one (If-Range guards the server side of the same rule).
    part = final.with_name(f".{table_id}.{expected[:16] or 'unknown'}.part")
    for stale in final.parent.glob(f".{table_id}.*.part"):
        if stale != part:
            stale.unlink(missing_ok=True)
    digest = hashlib.md5(usedforsecurity=False)
    offset = 0
    headers: dict[str, str] = {}
    if part.exists() and expected:
        offset = part.stat().st_size
        if 0 < offset < int(entry.get("size_bytes") or 0):
            with part.open("rb") as fh:
                while block := fh.read(BLOCK):
                    digest.update(block)
            headers = {"Range": f"bytes={offset}-", "If-Range": f'"{expected}"'}
        else:
            offset = 0
    raw = client.open("GET", f"/api/data/{table_id}/download", headers=headers)
    if raw.status >= 400:
        from cli.client import Response, error_from

        raise error_from(Response(raw.status, {}, raw.read()))
    resumed = raw.status == 206
    if not resumed:
        offset = 0
        digest = hashlib.md5(usedforsecurity=False)
    server_md5 = raw.getheader("X-Content-MD5") or expected
    fetched = 0
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    if offset:
        reporter.advance(table_id, offset)
    import http.client

    with part.open("r+b" if resumed else "wb") as out:
        if resumed:
            out.seek(offset)
            out.truncate()
        try:
            while True:
                count = raw.readinto(buffer)
                if not count:
                    break
                chunk = view[:count]
                out.write(chunk)
                digest.update(chunk)
                fetched += count
                reporter.advance(table_id, count)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            raw.close()
            # Keep the .part: the next pull continues from here with a Range request.
            raise ApiError(
                0,
                f"{table_id}: download interrupted after {offset + fetched} bytes"
                f" ({type(exc).__name__}); run pull again to resume",
            ) from None
    length = raw.getheader("Content-Length")
    if length is not None and fetched != int(length):
        raise ApiError(
            0, f"{table_id}: the connection dropped after {fetched} of {length} bytes (run pull again to resume)"
        )
    actual = digest.hexdigest()
    if server_md5 and actual != server_md5:
        part.unlink(missing_ok=True)
        raise ApiError(0, f"{table_id}: MD5 mismatch (got {actual}, expected {server_md5}); the file was discarded")
    os.replace(part, final)
    return actual, fetched, resumed


def run_pull(
    client: Client,
    workspace: Workspace,
    *,
    only: list[str] | None = None,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    parallelism: int | None = None,
    skip_materialized: bool = False,
) -> Outcome:
    """Pull the workspace up to date with the server's manifest (see module docstring).

    Raises WorkspaceBusy (from :mod:`cli.workspace`) when another pull is changing the workspace.
    """
    if dry_run:
        return _run_pull(client, workspace, only, True, reporter, parallelism, skip_materialized)
    with workspace.pull_lock():
        return _run_pull(client, workspace, only, False, reporter, parallelism, skip_materialized)


def _run_pull(
    client: Client,
    workspace: Workspace,
    only: list[str] | None,
    dry_run: bool,
    reporter: Reporter | None,
    parallelism: int | None,
    skip_materialized: bool,
) -> Outcome:
    started = time.perf_counter()
    reporter = reporter or Reporter()
    manifest = client.get("/api/sync/manifest")
    state = workspace.load_state()
    plan = make_plan(manifest, workspace, state, only, skip_materialized)
    outcome = Outcome(plan)
    if dry_run:
        outcome.seconds = time.perf_counter() - started
        return outcome
    changed = False
    for table_id in plan.remove:
        workspace.parquet(table_id).unlink(missing_ok=True)
        for stale in workspace.tables.glob(f".{table_id}.*.part"):
            stale.unlink(missing_ok=True)
        state.pop(table_id, None)
        changed = True
    listed = manifest.get("tables") or {}
    if plan.download:
        # Imported here: a pull with nothing to fetch (every session start) skips their cost.
        import threading
        from concurrent.futures import ThreadPoolExecutor, as_completed

        workspace.tables.mkdir(parents=True, exist_ok=True)
        reporter.start([(t, int(listed[t].get("size_bytes") or 0)) for t in plan.download])
        workers = parallelism or int(os.environ.get("AGNES_PULL_PARALLELISM") or DEFAULT_PARALLELISM)
        lock = threading.Lock()
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(plan.download)))) as pool:
            futures = {
                pool.submit(_download_and_close, client, workspace, t, listed[t], reporter): t for t in plan.download
            }
            for future in as_completed(futures):
                table_id = futures[future]
                try:
                    digest, fetched, resumed = future.result()
                except (ApiError, OSError) as exc:
                    outcome.errors[table_id] = str(exc)
                    reporter.done(table_id, False, str(exc))
                    continue
                with lock:
                    state[table_id] = {
                        "hash": digest,
                        "size_bytes": int(listed[table_id].get("size_bytes") or 0),
                        "updated": listed[table_id].get("updated"),
                    }
                    outcome.downloaded[table_id] = fetched
                    if resumed:
                        outcome.resumed.append(table_id)
                changed = True
                reporter.done(table_id, True)
        reporter.finish()
    stale_marker = workspace.data / ".views-stale"
    if changed or plan.remove or not workspace.database.exists() or stale_marker.exists():
        workspace.save_state(state, client.server)
        try:
            outcome.views = workspace.rebuild_views()
            stale_marker.unlink(missing_ok=True)
        except (OSError, ImportError) as exc:
            stale_marker.touch()
            # e.g. Windows refuses to replace a database another program has open; the files are in place.
            outcome.warnings.append(f"local views not rebuilt ({exc}); close other DuckDB sessions and pull again")
    outcome.seconds = time.perf_counter() - started
    return outcome
