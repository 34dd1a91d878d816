"""Which plugins a user is served, and the content ETag of that set.

served set = (plugins granted to any of the user's groups ∩ the user's subscriptions)
             ∪ system plugins          (DESIGN.md, "The served marketplace")

The rows come from :mod:`agnes.models.served` (the same grant rules as
:func:`agnes.access.is_granted`, set-based: one query per user, or one for everyone).

The Admin group gets no shortcut. Unavailable plugins (a source that could not be fetched)
are never served. The ETag is computed from what each sync recorded (per-plugin content
hashes), so no file is read or hashed at request time; resolved sets are cached per process
under the change marker of ``agnes.markers.MARKETPLACE``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duckdb import DuckDBPyConnection
from flask import current_app

from agnes import markers
from agnes.models import served
from agnes.models.flea import MARKETPLACE_ID as FLEA_MARKETPLACE_ID
from agnes.state import state_store

# Bump when the served layout changes, so every ETag (and cached artifact) changes with it.
LAYOUT_VERSION = "agnes-served-1"
# Name of the merged marketplace as Claude Code sees it (``<plugin>@agnes``).
MARKETPLACE_NAME = "agnes"
# Resolved sets kept per process (distinct users × recent change markers).
CACHE_SIZE = 2048


@dataclass(frozen=True)
class ServedPlugin:
    """One plugin in a user's served marketplace.

    Attributes:
        prefixed_name: ``<slug>-<plugin>``, its directory under ``plugins/``.
        served_name: the name in the merged marketplace.json: the plugin's own plugin.json
            name, or ``prefixed_name`` when an earlier marketplace already serves that name.
        renamed: True when ``served_name`` differs from plugin.json's name (the packager then
            rewrites the served plugin.json so Claude Code links the two). Always True for a
            flea-market plugin (``marketplace_id`` ``flea``): its plugin.json is written (or
            generated, for a single skill, agent or command) with the served name and version.
        content_dir: absolute path of the plugin's files.
    """

    marketplace_id: str
    name: str
    manifest_name: str
    served_name: str
    prefixed_name: str
    version: str | None
    description: str
    content_dir: str
    content_hash: str
    raw: dict[str, Any]
    renamed: bool

    def info(self) -> dict[str, Any]:
        return {
            "name": self.served_name,
            "original_name": self.name,
            "prefixed_name": self.prefixed_name,
            "marketplace": self.marketplace_id,
            "version": self.version,
            "description": self.description,
        }


@dataclass(frozen=True)
class ServedSet:
    etag: str
    plugins: tuple[ServedPlugin, ...]


def compute(con: DuckDBPyConnection, user_id: str, group_ids: list[str], data_dir: Path) -> ServedSet:
    """Resolve a user's served set from the state store (no file access)."""
    return _served_set(served.served_plugin_rows(con, user_id, list(group_ids)), data_dir)


def system_set(con: DuckDBPyConnection, data_dir: Path) -> ServedSet:
    """The system plugins alone, named as a served marketplace names them (every user is served
    these; a user served an earlier plugin of the same name sees the prefixed name instead)."""
    return _served_set(served.system_plugin_rows(con), data_dir)


def served_set_of(rows: list[tuple[Any, ...]], data_dir: Path) -> ServedSet:
    """A served set from rows of :mod:`agnes.models.served` (e.g. one user's from
    ``all_served_plugin_rows``), named as the served marketplace names them."""
    return _served_set(rows, data_dir)


def _served_set(rows: list[tuple[Any, ...]], data_dir: Path) -> ServedSet:
    """Build a set from ordered plugin rows; later same-named plugins get their prefixed name."""
    plugins: list[ServedPlugin] = []
    used: set[str] = set()
    for mp_id, name, manifest_name, version, description, content_dir, content_hash, raw in rows:
        prefixed = f"{mp_id}-{name}"
        served_name = manifest_name if manifest_name not in used else prefixed
        used.add(served_name)
        plugins.append(
            ServedPlugin(
                marketplace_id=mp_id,
                name=name,
                manifest_name=manifest_name,
                served_name=served_name,
                prefixed_name=prefixed,
                version=version,
                description=description or "",
                content_dir=str(data_dir / content_dir),
                content_hash=content_hash or "",
                raw=json.loads(raw) if isinstance(raw, str) else (raw or {}),
                renamed=served_name != manifest_name or mp_id == FLEA_MARKETPLACE_ID,
            )
        )
    return ServedSet(etag_of(plugins), tuple(plugins))


def etag_of(plugins: list[ServedPlugin]) -> str:
    """Content ETag: a hash of what would be served (names, versions, file hashes, entries)."""
    payload = json.dumps(
        [LAYOUT_VERSION, [[p.prefixed_name, p.served_name, p.version, p.content_hash, p.raw] for p in plugins]],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[Any, ...], ServedSet] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> ServedSet | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: ServedSet) -> None:
        with self.lock:
            self.entries[key] = value
            while len(self.entries) > CACHE_SIZE:
                self.entries.popitem(last=False)


def _cache() -> _Cache:
    return current_app.extensions.setdefault("agnes_served_cache", _Cache())


def cached(user_id: str, group_ids: tuple[str, ...] | list[str], marker: str) -> ServedSet | None:
    """The cached set for this user, groups and change marker, without touching the store."""
    return _cache().get((user_id, tuple(sorted(group_ids)), marker))


def resolve(user_id: str, group_ids: tuple[str, ...] | list[str], *, marker: str | None = None) -> ServedSet:
    """The user's served set, from the per-process cache when nothing changed since.

    ``marker`` is the change marker the caller read *before* calling (read here otherwise).
    """
    marker = markers.MARKETPLACE.current() if marker is None else marker
    found = cached(user_id, group_ids, marker)
    if found is not None:
        return found
    data_dir = Path(current_app.config["AGNES_DATA_DIR"])
    with state_store().read() as con:
        found = compute(con, user_id, list(group_ids), data_dir)
    _cache().put((user_id, tuple(sorted(group_ids)), marker), found)
    return found


def all_served_etags(con: DuckDBPyConnection, data_dir: Path) -> set[str]:
    """ETags of every active user's served set right now (for pruning caches), in one query."""
    by_user = served.all_served_plugin_rows(con)
    etags = {_served_set(rows, data_dir).etag for rows in by_user.values()}
    if served.count_active_users(con) > len(by_user):  # users served nothing share the empty set
        etags.add(etag_of([]))
    return etags


def served_names_by_user(con: DuckDBPyConnection, data_dir: Path) -> dict[str, dict[str, tuple[str, str]]]:
    """Every active user's served plugin names: ``{user_id: {served_name: (marketplace_id, plugin)}}``.

    The served name is what Claude Code prefixes a plugin's skills, agents and commands with
    (``<served_name>:<item>``), so telemetry attributes a use to the right marketplace even when
    two marketplaces have a plugin of the same name (one query for everyone). Flea-market
    plugins are left out: the flea market's own resolver attributes them.
    """
    return {
        user_id: {
            p.served_name: (p.marketplace_id, p.name)
            for p in _served_set(rows, data_dir).plugins
            if p.marketplace_id != FLEA_MARKETPLACE_ID
        }
        for user_id, rows in served.all_served_plugin_rows(con).items()
    }
