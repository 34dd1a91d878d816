"""``agnes pull``: fetch the granted tables that changed, in parallel, resumably, verified.

Standard library only, imported lazily (start-up time matters: a SessionStart hook runs this
every session, and a pull with nothing to fetch should cost little more than the manifest).
Steps: manifest → plan (MD5 per table against the workspace state) → prune tables no longer
granted → download changed files into ``.part`` files (resuming with ``Range``/``If-Range``),
hashing each block as it is written (SHA-256 when the server offers it, MD5 from older servers)
→ verify, rename into place → save state → change only the views whose table was added, removed
or changed schema (DuckDB is imported only then).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cli.client import ApiError, Client, network_reason
from cli.workspace import TABLE_ID_RE, ViewError, Workspace

# Downloads at once (``--jobs``, else AGNES_PULL_PARALLELISM). bench/pull.py, 20 tables on 2 cores:
# loopback 1/2/4/8 streams 740/1025/1021/638 MB/s (8 threads fight over 2 cores); through a 50 ms
# round trip 41/70/119/157 MB/s, capped to 1 Gbit/s 64/74/80 MB/s for 2/4/8. 4 is never far off.
DEFAULT_PARALLELISM = 4
# Bytes read from the socket per step, into one reused buffer that is hashed in place: large blocks
# mean few Python-level steps per file (the per-byte work is in C and drops the GIL).
BLOCK = 1 << 20
# Bytes per write() of that block. The kernel sizes page-cache folios after the write, and large
# folios can come from memory the machine has not touched yet, which costs far more to fill: on a
# 2-core VM, writing 500 MB took 0.15 s of kernel time in 16 KiB writes and 0.5-1.2 s in 1 MiB
# writes (curl also writes 16 KiB at a time).
WRITE_SLICE = 16 << 10


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
    remote_new: list[str] = field(default_factory=list)  # remote tables this workspace has not been told of

    def summary(self) -> dict[str, Any]:
        return {
            "downloaded": sorted(self.downloaded),
            "resumed": sorted(self.resumed),
            "unchanged": sorted(self.plan.unchanged),
            "removed": sorted(self.plan.remove),
            "remote": sorted(self.plan.remote),
            "remote_new": sorted(self.remote_new),
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


def _download_all(
    client: Client,
    workspace: Workspace,
    tables: list[str],
    listed: dict[str, Any],
    reporter: Reporter,
    parallelism: int,
) -> Iterator[tuple[str, Fetched | Exception]]:
    """Download ``tables`` on ``parallelism`` threads; yields ``(table, Fetched or the error)`` as
    each one ends, on the caller's thread.

    Each thread keeps its keep-alive connection from one file to the next (a new connection costs
    a round trip, and more with TLS, on a distant server) and closes it when the queue is empty or
    a transfer failed (a half-read response cannot carry the next request). Largest files go first,
    so no stream is left with a big file at the end.
    """
    import queue
    import threading

    pending: queue.SimpleQueue[str] = queue.SimpleQueue()
    for table_id in sorted(tables, key=lambda t: -int(listed[t].get("size_bytes") or 0)):
        pending.put(table_id)
    results: queue.SimpleQueue[tuple[str, Fetched | Exception]] = queue.SimpleQueue()

    def work() -> None:
        try:
            while True:
                try:
                    table_id = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    results.put((table_id, _download(client, workspace, table_id, listed[table_id], reporter)))
                except Exception as exc:  # the caller reports it (or re-raises what is not ApiError/OSError)
                    client.close()
                    results.put((table_id, exc))
        finally:
            client.close()  # this thread's connection: never left open

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(parallelism, len(tables))))]
    for thread in threads:
        thread.start()
    for _ in tables:
        yield results.get()
    for thread in threads:
        thread.join()


@dataclass(frozen=True)
class Fetched:
    """One verified download: the MD5 the server states for it (the plan compares it with the
    manifest next time), bytes fetched this run, whether it continued a ``.part`` file, and
    whether its schema fingerprint is trustworthy (False when the file is newer than the manifest)."""

    md5: str
    fetched: int
    resumed: bool
    schema_known: bool


def _expected_digest(raw: Any, entry: dict[str, Any]) -> tuple[str, str]:
    """``(algorithm, hex digest)`` the body must match: SHA-256 when the server offers it, else MD5.

    The headers describe exactly the bytes served; the manifest is the fallback (a file published
    after the server read its state gets neither header, and then fails against the manifest,
    which is right: the next pull fetches it again). ``("", "")`` when nothing is known.
    """
    sha256 = raw.getheader("X-Content-SHA256") or ""
    md5 = raw.getheader("X-Content-MD5") or ""
    if not sha256 and not md5:
        sha256, md5 = entry.get("sha256") or "", entry.get("hash") or ""
    if sha256:
        return "sha256", sha256.lower()
    return ("md5", md5.lower()) if md5 else ("", "")


def _download(
    client: Client, workspace: Workspace, table_id: str, entry: dict[str, Any], reporter: Reporter
) -> Fetched:
    """Fetch one table into place, verified. Raises ApiError (HTTP error, dropped connection,
    digest mismatch) or OSError; a mismatching file is deleted, an interrupted one kept to resume."""
    import hashlib
    import http.client

    final = workspace.parquet(table_id)
    expected = entry.get("hash") or ""
    # The part file is named after the version it holds, so bytes of an older version are never
    # continued with a newer one (If-Range guards the server side of the same rule).
    part = final.with_name(f".{table_id}.{expected[:16] or 'unknown'}.part")
    for stale in final.parent.glob(f".{table_id}.*.part"):
        if stale != part:
            stale.unlink(missing_ok=True)
    offset = part.stat().st_size if part.exists() and expected else 0
    headers: dict[str, str] = {}
    if 0 < offset < int(entry.get("size_bytes") or 0):
        headers = {"Range": f"bytes={offset}-", "If-Range": f'"{expected}"'}
    raw = client.open("GET", f"/api/data/{table_id}/download", headers=headers)
    if raw.status >= 400:
        from cli.client import Response, error_from

        raise error_from(Response(raw.status, {}, raw.read()))
    resumed = raw.status == 206
    if not resumed:
        offset = 0
    algorithm, want = _expected_digest(raw, entry)
    digest = hashlib.new(algorithm or "md5", usedforsecurity=False)
    buffer = bytearray(BLOCK)  # one buffer per download, reused for every read
    view = memoryview(buffer)
    fetched = 0
    with part.open("r+b" if resumed else "wb", buffering=0) as out:
        if resumed:  # the bytes already here count towards the digest
            while count := out.readinto(buffer):
                digest.update(view[:count])
            out.seek(offset)
            out.truncate()
            reporter.advance(table_id, offset)
        try:
            while count := raw.readinto(buffer):
                block = view[:count]
                digest.update(block)
                for start in range(0, count, WRITE_SLICE):
                    piece = block[start : start + WRITE_SLICE]
                    if out.write(piece) != len(piece):  # unbuffered: a full disk may write less
                        raise OSError(f"short write to {part} (is the disk full?)")
                fetched += count
                reporter.advance(table_id, count)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            raw.close()
            # Keep the .part: the next pull continues from here with a Range request.
            raise ApiError(
                0,
                f"download interrupted after {offset + fetched} bytes ({network_reason(exc)});"
                " run pull again to resume",
            ) from None
    length = raw.getheader("Content-Length")
    if length is not None and fetched != int(length):
        raise ApiError(0, f"the connection dropped after {fetched} of {length} bytes (run pull again to resume)")
    actual = digest.hexdigest()
    if want and actual != want:
        part.unlink(missing_ok=True)
        name = "SHA-256" if algorithm == "sha256" else "MD5"
        raise ApiError(0, f"{name} mismatch (got {actual}, expected {want}); the file was discarded")
    os.replace(part, final)
    served_md5 = raw.getheader("X-Content-MD5") or ""
    md5 = actual if algorithm == "md5" else served_md5 or expected
    return Fetched(md5, fetched, resumed, schema_known=not served_md5 or served_md5 == expected)


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

    Args:
        parallelism: downloads at once (``--jobs``); None takes ``AGNES_PULL_PARALLELISM`` or
            :data:`DEFAULT_PARALLELISM`.

    Raises WorkspaceBusy (from :mod:`cli.workspace`) when another pull is changing the workspace,
    ConfigError for a malformed ``AGNES_PULL_PARALLELISM``.
    """
    parallelism = parallelism or _default_parallelism()
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
    parallelism: int,
    skip_materialized: bool,
) -> Outcome:
    started = time.perf_counter()
    reporter = reporter or Reporter()
    manifest = client.get("/api/sync/manifest")
    state = workspace.load_state()
    plan = make_plan(manifest, workspace, state, only, skip_materialized)
    outcome = Outcome(plan)
    announced = workspace.load_remote()
    outcome.remote_new = [t for t in plan.remote if t not in announced]
    if dry_run:
        outcome.seconds = time.perf_counter() - started
        return outcome
    # Remote tables are announced once per workspace (a hook runs this every session).
    remote_now = sorted(set(announced) | set(plan.remote)) if only else sorted(plan.remote)
    changed = remote_now != sorted(announced)
    for table_id in plan.remove:
        workspace.parquet(table_id).unlink(missing_ok=True)
        for stale in workspace.tables.glob(f".{table_id}.*.part"):
            stale.unlink(missing_ok=True)
        state.pop(table_id, None)
        changed = True
    listed = manifest.get("tables") or {}
    fetched: set[str] = set()
    if plan.download:
        workspace.tables.mkdir(parents=True, exist_ok=True)
        reporter.start([(t, int(listed[t].get("size_bytes") or 0)) for t in plan.download])
        for table_id, done in _download_all(client, workspace, plan.download, listed, reporter, parallelism):
            if not isinstance(done, Fetched):
                if not isinstance(done, ApiError | OSError):
                    raise done
                outcome.errors[table_id] = str(done)
                reporter.done(table_id, False, str(done))
                continue
            entry = listed[table_id]
            state[table_id] = {
                "hash": done.md5,
                "size_bytes": int(entry.get("size_bytes") or 0),
                "updated": entry.get("updated"),
                "schema": (entry.get("schema") or "") if done.schema_known else "",
            }
            outcome.downloaded[table_id] = done.fetched
            if done.resumed:
                outcome.resumed.append(table_id)
            fetched.add(table_id)
            changed = True
            reporter.done(table_id, True)
        reporter.finish()
    views = workspace.load_views()
    change = _view_changes(workspace, state, fetched, views)
    if changed or change is not None:
        try:
            if change is not None:
                views = _apply_view_changes(workspace, state, change, outcome)
        finally:  # the files are in place whatever happens to the views
            workspace.save_state(state, client.server, views, remote=remote_now)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _default_parallelism() -> int:
    """AGNES_PULL_PARALLELISM or :data:`DEFAULT_PARALLELISM`. Raises ConfigError for a bad value."""
    raw = os.environ.get("AGNES_PULL_PARALLELISM", "").strip()
    if not raw:
        return DEFAULT_PARALLELISM
    if not raw.isdigit() or int(raw) < 1:
        from cli.client import ConfigError

        raise ConfigError(f"AGNES_PULL_PARALLELISM must be a whole number of at least 1, got {raw!r}")
    return int(raw)


# Present while the views may not match the files (a rebuild failed): the next pull rebuilds them all.
STALE_MARKER = ".views-stale"


def _view_changes(
    workspace: Workspace, state: dict[str, dict[str, Any]], fetched: set[str], views: dict[str, str] | None
) -> tuple[list[str], list[str]] | None:
    """``(create or replace, drop)`` for the views, ``([], [])`` for a full rebuild, None for nothing.

    A view changes when its table was added or removed, or was downloaded with a different (or
    unknown: an older server) schema fingerprint. Decided from the state file alone: no DuckDB.
    """
    if views is None or not workspace.database.is_file() or (workspace.data / STALE_MARKER).exists():
        return [], []
    wanted = {t: (state.get(t) or {}).get("schema") or "" for t in workspace.local_tables()}
    for name in workspace.load_snapshots():  # views of snapshots stay (agnes snapshot manages them)
        wanted.setdefault(name, "")
    drop = sorted(set(views) - set(wanted))
    replace = sorted(
        t for t, schema in wanted.items() if t not in views or (t in fetched and (not schema or schema != views[t]))
    )
    return (replace, drop) if replace or drop else None


def _apply_view_changes(
    workspace: Workspace, state: dict[str, dict[str, Any]], change: tuple[list[str], list[str]], outcome: Outcome
) -> dict[str, str] | None:
    """Change the views (imports DuckDB); returns the views now recorded, None when that failed."""
    stale_marker = workspace.data / STALE_MARKER
    replace, drop = change
    try:
        if replace or drop:
            outcome.views = workspace.update_views(replace, drop)
        else:
            outcome.views = workspace.rebuild_views()
        stale_marker.unlink(missing_ok=True)
    except (OSError, ViewError) as exc:
        workspace.data.mkdir(parents=True, exist_ok=True)
        stale_marker.touch()
        # e.g. Windows refuses to replace a database another program has open; the files are in place.
        outcome.warnings.append(f"local views not rebuilt ({exc}); close other DuckDB sessions and pull again")
        return None
    return {t: (state.get(t) or {}).get("schema") or "" for t in outcome.views}
