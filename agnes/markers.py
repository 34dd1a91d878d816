"""Change markers: tiny files that tell every process "something a cache depends on changed".

Agnes keeps three per-process caches that would otherwise cost a state-store unit per request:
resolved callers (:mod:`agnes.auth.cache`), served marketplaces and plugin cards
(:mod:`agnes.marketplace.resolver`, :mod:`agnes.pages.plugin_cards`), and the table index behind
the data manifest (:mod:`agnes.data.table_index`). Each cache entry is stored with the marker it
was built under; a writer that changes what the cache depends on replaces the marker, so every
process (web threads, RQ work-horses, CLI commands) sees the change on its next read of the file.

A writer calls :meth:`ChangeMarker.bump` *inside* its state-store write unit. The unit holds the
store's inter-process lock, so a reader in another process that sees the new marker can only read
the database after the unit committed. Threads of the writing process share the unit's attachment,
so one of them could read the new marker *and* the rows from before the commit and cache them under
it; the marker is therefore replaced once more after the commit.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from agnes.files import atomic_write_text
from agnes.models import new_id
from agnes.models.db import StateStoreError
from agnes.state import state_store


class ChangeMarker:
    """One marker file under the data directory.

    Args:
        relpath: the file, relative to ``AGNES_DATA_DIR``.
        description: what bumps it (for the docs and ``repr``).
    """

    def __init__(self, relpath: str, description: str) -> None:
        self.relpath = relpath
        self.description = description

    def __repr__(self) -> str:
        return f"ChangeMarker({self.relpath!r})"

    def path(self) -> Path:
        return Path(current_app.config["AGNES_DATA_DIR"]) / self.relpath

    def current(self) -> str:
        """The marker's value ('' before the first change); one small file read."""
        try:
            with open(self.path(), encoding="ascii") as fh:
                return fh.read().strip()
        except FileNotFoundError:
            return ""

    def bump(self) -> str:
        """Replace the marker with a fresh random value (and again after the current write
        unit commits, when called inside one). Returns the first new value."""
        value = self._replace()
        try:
            state_store().after_commit(self._replace)
        except StateStoreError:  # not inside a write unit: nothing can be read before a commit
            pass
        return value

    def _replace(self) -> str:
        value = new_id()
        atomic_write_text(self.path(), value)
        return value


# Grants, subscriptions, memberships, syncs, system flags: anything a served marketplace or a
# plugin card shows.
MARKETPLACE = ChangeMarker("marketplaces/.generation", "served marketplaces and plugin cards")
# Tables registered, changed, synced or granted: the data manifest and downloads.
TABLES = ChangeMarker("analytics/.generation", "the data manifest and table downloads")
# A usage processing run changed the figures (or a session went private): popularity on the pages.
USAGE = ChangeMarker("state/usage-generation", "usage figures on the marketplace pages")
# Flea-market entries, versions, decisions and installs: the flea tab's per-process catalog.
FLEA = ChangeMarker("flea/.generation", "the flea-market listing")
# Tokens revoked, users deactivated, memberships changed: cached callers.
ACCESS = ChangeMarker("state/access-marker", "resolved callers (sessions and tokens)")
