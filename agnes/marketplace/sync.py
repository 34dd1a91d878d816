"""Syncing one curated marketplace: fetch, parse, write plugin checkouts, record the result.

Layout under ``<data>/marketplaces/<slug>/``:

* ``repo.git`` — bare repository the marketplace is fetched into (dulwich, shallow);
* ``sources/<hash>.git`` — bare repositories of remote plugin sources (``url``, ``git-subdir``,
  ``github``);
* ``checkouts/<commit>-<id>/<plugin>/`` — the files served for each available plugin (a
  checkout of the commit; older releases wrote ``snapshots/``, pruned the same way).

All the heavy work (network, parsing, writing files) happens outside the state store. The
result is written in one short unit that also points the marketplace row at the new checkout,
so a sync either fully replaces the previous good state or (on failure) leaves it untouched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from flask import current_app

from agnes import markers
from agnes.errors import NotFound, human_message
from agnes.files import file_lock
from agnes.marketplace import overlay
from agnes.marketplace.curated import working_dir
from agnes.marketplace.gitfetch import FetchError, fetch, read_file, redact, rewrite_url, write_tree
from agnes.marketplace.manifest import Entry, ManifestError, parse_marketplace, read_plugin, served_paths
from agnes.models import marketplaces, new_id, utcnow
from agnes.models.marketplace_history import SyncRecord
from agnes.models.marketplaces import PluginRecord
from agnes.progress import Progress, no_progress
from agnes.state import state_store

log = logging.getLogger(__name__)

MANIFEST_PATH = ".claude-plugin/marketplace.json"
# Checkouts kept besides the current one, so a request that resolved the previous state a
# moment ago can still read its files.
KEEP_PREVIOUS_CHECKOUTS = 1
# Folder of the checkouts under ``marketplaces/<slug>/``, and the one releases before 0.2 used.
CHECKOUTS = "checkouts"
LEGACY_CHECKOUTS = "snapshots"


class SyncError(RuntimeError):
    """A sync failed; the message is safe to show (tokens removed)."""


@dataclass(frozen=True)
class SyncResult:
    marketplace_id: str
    commit_sha: str
    plugin_count: int
    history: SyncRecord

    def to_dict(self) -> dict[str, object]:
        h = self.history
        return {
            "id": self.marketplace_id,
            "commit": self.commit_sha,
            "plugin_count": self.plugin_count,
            "added": h.added,
            "removed": h.removed,
            "changed": h.changed,
            "unavailable": h.unavailable,
            "warnings": h.warnings,
            "skipped": h.skipped,
            "summary": h.summary,
        }


def sync_marketplace(marketplace_id: str, *, progress: Progress = no_progress) -> SyncResult:
    """Fetch and re-read one marketplace; returns what changed.

    ``progress`` hears "plugins read of N" (a job passes :func:`agnes.jobs.set_progress`).

    Raises:
        NotFound: the marketplace is not registered.
        SyncError: the fetch or the manifest failed (recorded on the registry row and in the
            history; the previous plugins and files stay as they were).
    """
    with state_store().read() as con:
        mp = marketplaces.get_marketplace(con, marketplace_id)
    if mp is None:
        raise NotFound("marketplace_not_found", f"No marketplace '{marketplace_id}'.")
    started = utcnow()
    base = working_dir(mp.id)
    token = overlay.read_secret(mp.token_env) or None
    staging = base / CHECKOUTS / f".tmp-{new_id()}"
    skipped: list[dict[str, str]] = []
    # One sync per marketplace on this machine at a time (the job id guards the queue).
    with file_lock(base / ".sync.lock"):
        try:
            progress(0, None, "Fetching the marketplace repository")
            url = rewrite_url(mp.url, current_app.config["AGNES_GIT_URL_REWRITES"])
            commit = fetch(base / "repo.git", url, ref=mp.branch, token=token, timeout=_timeout())
            parsed = parse_marketplace(read_file(base / "repo.git", commit, MANIFEST_PATH))
            skipped = parsed.skipped
            if skipped:  # once per sync, all of them on one line
                log.warning(
                    "marketplace %s: %d manifest entries skipped: %s",
                    mp.id,
                    len(skipped),
                    "; ".join(f"{s['name']!r}: {s['reason']}" for s in skipped),
                )
            if skipped and not parsed.entries:
                raise ManifestError(
                    f"every entry of marketplace.json was skipped ({len(skipped)}); the previous plugins are kept"
                )
            records = _materialize(base, commit, parsed.entries, staging, progress)
            final = base / CHECKOUTS / f"{commit[:12]}-{new_id()[:8]}"
            os.rename(staging, final)
        except Exception as exc:  # fetch, manifest, disk or unexpected: keep the previous state
            shutil.rmtree(staging, ignore_errors=True)
            known = isinstance(exc, FetchError | ManifestError | OSError)
            message = redact(str(exc) if known else human_message(exc), token)
            with state_store().write() as con:
                if marketplaces.get_marketplace(con, mp.id) is not None:
                    marketplaces.record_sync_failure(con, mp.id, error=message, started_at=started, skipped=skipped)
            log.warning("sync of marketplace %s failed: %s", mp.id, message)
            raise SyncError(message) from None
        data_dir = Path(current_app.config["AGNES_DATA_DIR"])
        records = [_relocate(r, staging, final, data_dir) for r in records]
        with state_store().write() as con:
            if marketplaces.get_marketplace(con, mp.id) is None:  # deleted while we fetched
                shutil.rmtree(final, ignore_errors=True)
                raise NotFound("marketplace_not_found", f"Marketplace '{mp.id}' was deleted during the sync.")
            history = marketplaces.apply_sync(
                con,
                mp.id,
                commit_sha=commit,
                checkout_dir=str(final.relative_to(data_dir)),
                records=records,
                started_at=started,
                skipped=skipped,
            )
            markers.MARKETPLACE.bump()
        for warning in history.warnings:
            log.warning("marketplace %s: %s", mp.id, warning)
        _prune_checkouts(base, keep=final)
    progress(len(records), len(records), "Done")
    return SyncResult(mp.id, commit, len(records), history)


def _timeout() -> float:
    return float(current_app.config["AGNES_GIT_TIMEOUT"])


def _materialize(
    base: Path, commit: str, entries: list[Entry], staging: Path, progress: Progress
) -> list[PluginRecord]:
    """Write each plugin's files under ``staging/<name>`` and read what it contains."""
    staging.mkdir(parents=True)
    rewrites = current_app.config["AGNES_GIT_URL_REWRITES"]
    fetched: dict[tuple[str, str | None, str | None], tuple[Path, str] | str] = {}
    records = []
    for index, entry in enumerate(entries):
        progress(index, len(entries), f"Reading {entry.name}")
        src = entry.source
        spec = entry.raw.get("source")
        if src.error:
            records.append(_unavailable(entry, src.error))
            continue
        if src.remote:
            assert src.url is not None
            key = (src.url, src.ref, src.sha)
            if key not in fetched:
                cache = base / "sources" / (hashlib.sha256(src.url.encode()).hexdigest()[:16] + ".git")
                try:
                    fetched[key] = (
                        cache,
                        fetch(cache, rewrite_url(src.url, rewrites), ref=src.ref, sha=src.sha, timeout=_timeout()),
                    )
                except FetchError as exc:
                    fetched[key] = str(exc)
            got = fetched[key]
            if isinstance(got, str):
                records.append(_unavailable(entry, got))
                continue
            repo_dir, source_commit = got
        else:
            repo_dir, source_commit = base / "repo.git", commit
        target = staging / entry.name
        try:
            files, size, content_hash = write_tree(
                repo_dir,
                source_commit,
                src.path,
                target,
                include=served_paths(entry),
                max_files=int(current_app.config["AGNES_PLUGIN_MAX_FILES"]),
                max_bytes=int(current_app.config["AGNES_PLUGIN_MAX_MB"]) * 1024 * 1024,
            )
        except FetchError as exc:
            shutil.rmtree(target, ignore_errors=True)
            records.append(_unavailable(entry, str(exc)))
            continue
        info = read_plugin(target, entry)
        records.append(
            PluginRecord(
                name=entry.name,
                manifest_name=info.manifest_name,
                source_kind=src.kind,
                source_spec=spec,
                raw=entry.raw,
                description=info.description,
                version=info.version,
                author_name=info.author_name,
                homepage=info.homepage,
                category=info.category,
                skill_count=info.skills,
                agent_count=info.agents,
                command_count=info.commands,
                available=True,
                content_dir=str(target),
                content_hash=content_hash,
                file_count=files,
                size_bytes=size,
            )
        )
    return records


def _unavailable(entry: Entry, reason: str) -> PluginRecord:
    raw = entry.raw
    author = raw.get("author")
    return PluginRecord(
        name=entry.name,
        manifest_name=entry.name,
        source_kind=entry.source.kind,
        source_spec=raw.get("source"),
        raw=raw,
        description=str(raw.get("description") or ""),
        version=str(raw["version"]) if raw.get("version") is not None else None,
        author_name=author.get("name") if isinstance(author, dict) else None,
        category=raw.get("category") if isinstance(raw.get("category"), str) else None,
        available=False,
        unavailable_reason=reason[:500],
    )


def _relocate(record: PluginRecord, staging: Path, final: Path, data_dir: Path) -> PluginRecord:
    """Point a record at the renamed checkout, relative to the data dir."""
    if record.content_dir is None:
        return record
    moved = final / Path(record.content_dir).relative_to(staging)
    return replace(record, content_dir=str(moved.relative_to(data_dir)))


def _prune_checkouts(base: Path, *, keep: Path) -> None:
    """Delete older checkouts (and stale staging dirs), keeping the newest few besides ``keep``."""
    entries = []
    for folder in (base / CHECKOUTS, base / LEGACY_CHECKOUTS):
        try:
            entries += [p for p in folder.iterdir() if p.is_dir() and p != keep]
        except FileNotFoundError:
            continue
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    finished = [p for p in entries if not p.name.startswith(".tmp-")]
    for old in finished[KEEP_PREVIOUS_CHECKOUTS:]:
        shutil.rmtree(old, ignore_errors=True)
    for tmp in (p for p in entries if p.name.startswith(".tmp-")):
        shutil.rmtree(tmp, ignore_errors=True)


def record_interrupted(marketplace_id: str, message: str) -> bool:
    """A sync of this marketplace was interrupted (its worker died, or the embedded server restarted):
    remove its ``checkouts/.tmp-*`` staging folders and record ``interrupted`` on the registry row
    and in the sync history. The previous checkout keeps being served.

    Returns False (nothing done) when the marketplace is gone or a sync holds its lock right now
    (that sync removes stale staging folders itself).
    """
    with state_store().read() as con:
        if marketplaces.get_marketplace(con, marketplace_id) is None:
            return False
    base = working_dir(marketplace_id)
    try:
        with file_lock(base / ".sync.lock", blocking=False):
            for tmp in (base / CHECKOUTS).glob(".tmp-*"):
                shutil.rmtree(tmp, ignore_errors=True)
            with state_store().write() as con:
                marketplaces.record_sync_failure(
                    con, marketplace_id, error=message, started_at=utcnow(), status="interrupted"
                )
    except BlockingIOError:
        return False
    log.warning("sync of marketplace %s was interrupted: %s", marketplace_id, message)
    return True


def sync_all(*, progress: Progress = no_progress) -> dict[str, list]:
    """Sync every marketplace; one failure does not stop the rest.

    Returns ``{"synced": [result dicts], "errors": [{"id", "error"}], "summary": text}``.
    """
    with state_store().read() as con:
        ids = [m.id for m in marketplaces.list_marketplaces(con)]
    synced, errors = [], []
    for index, mp_id in enumerate(ids):
        progress(index, len(ids), f"Syncing {mp_id}")
        try:
            synced.append(sync_marketplace(mp_id).to_dict())
        except (SyncError, NotFound) as exc:
            errors.append({"id": mp_id, "error": str(exc)})
        except Exception as exc:  # an unexpected bug in one marketplace must not stop the others
            log.exception("sync of marketplace %s crashed", mp_id)
            errors.append({"id": mp_id, "error": redact(human_message(exc))})
    progress(len(ids), len(ids), "Done")
    summary = f"{len(synced)} of {len(ids)} marketplaces synced"
    if errors:
        summary += f"; failed: {', '.join(e['id'] for e in errors)}"
    return {"synced": synced, "errors": errors, "summary": summary}
