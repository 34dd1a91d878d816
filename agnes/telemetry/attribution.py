"""Which plugin a used skill, agent or command came from (DESIGN.md, "Telemetry").

Claude Code names a plugin's items ``<plugin>:<item>`` (``handgemacht:commit``,
``/handgemacht:create-beads``, subagent type ``elixir:docs-agent``). The identifier is split on
the first ``:`` and the prefix resolved, in order:

1. in the user's **served set**: the served name → marketplace and plugin, so two marketplaces'
   same-named plugins keep separate figures;
2. a curated plugin whose name (plugin.json name, then marketplace entry name) is **unique**
   across marketplaces;
3. **flea-market** plugins, through the resolvers registered with :func:`register_flea_resolver`
   (the flea market registers one: ``<name>-by-<handle>`` → its entity; transcripts written
   before per-entity plugins may carry ``agnes-store-bundle:<name>``).

No ``:`` → ``builtin`` (``Bash``, ``/compact``, ``Explore``). A prefix nothing resolves →
``unattributed``, the prefix kept (``usage_events.prefix``) so a later reprocess can attribute it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from duckdb import DuckDBPyConnection

from agnes.marketplace import resolver
from agnes.models import marketplaces

BUILTIN = "builtin"
CURATED = "curated"
FLEA = "flea"
UNATTRIBUTED = "unattributed"
SOURCES = (CURATED, FLEA, BUILTIN, UNATTRIBUTED)
# The prefix of the original's single per-user flea plugin.
LEGACY_BUNDLE = "agnes-store-bundle"


@dataclass(frozen=True)
class Attribution:
    """Where a use came from.

    Attributes:
        source: ``curated``, ``flea``, ``builtin`` or ``unattributed``.
        parent: curated ``<marketplace>/<plugin>`` (the plugin's resource id), a flea entity id,
            or '' (builtin, unattributed).
        parent_name: the plugin's name as its pages show it ('' for builtin; the prefix for
            unattributed uses).
        item_name: the name without the prefix (and without a command's slash).
        prefix: the ``<plugin>`` part as written, '' when there is none.
    """

    source: str
    parent: str
    parent_name: str
    item_name: str
    prefix: str


# A flea resolver answers (prefix, item name) with (entity id, plugin name), or None.
FleaLookup = Callable[[str, str], tuple[str, str] | None]
# Built once per processing run from a read cursor.
FleaResolverFactory = Callable[[DuckDBPyConnection], FleaLookup]
_FLEA_RESOLVERS: list[FleaResolverFactory] = []


def register_flea_resolver(factory: FleaResolverFactory) -> None:
    """Let the flea market attribute prefixes (called from its ``init_app``; idempotent)."""
    if factory not in _FLEA_RESOLVERS:
        _FLEA_RESOLVERS.append(factory)


def split_identifier(name: str) -> tuple[str, str]:
    """``("plugin", "item")`` of ``plugin:item`` / ``/plugin:item``; ``("", name)`` without a colon."""
    bare = name[1:] if name.startswith("/") else name
    prefix, sep, item = bare.partition(":")
    if not sep or not prefix or not item:
        return "", bare
    return prefix, item


class Attributor:
    """Resolves identifiers for every user of one processing run (built by :func:`load`)."""

    def __init__(
        self,
        served: dict[str, dict[str, tuple[str, str]]],
        curated_unique: dict[str, tuple[str, str]],
        flea: list[FleaLookup],
    ) -> None:
        self.served = served
        self.curated_unique = curated_unique
        self.flea = flea
        self._memo: dict[tuple[str, str], Attribution] = {}

    def attribute(self, user_id: str, name: str) -> Attribution:
        """Attribution of a skill, agent or command identifier used by ``user_id``."""
        key = (user_id, name)
        found = self._memo.get(key)
        if found is None:
            found = self._resolve(user_id, name)
            if len(self._memo) > 100_000:
                self._memo.clear()
            self._memo[key] = found
        return found

    def _resolve(self, user_id: str, name: str) -> Attribution:
        prefix, item = split_identifier(name)
        if not prefix:
            return Attribution(BUILTIN, "", "", item, "")
        hit = self.served.get(user_id, {}).get(prefix) or self.curated_unique.get(prefix)
        if hit is not None:
            marketplace_id, plugin = hit
            return Attribution(CURATED, f"{marketplace_id}/{plugin}", plugin, item, prefix)
        for lookup in self.flea:
            entity = lookup(prefix, item)
            if entity is not None:
                return Attribution(FLEA, entity[0], entity[1], item, prefix)
        return Attribution(UNATTRIBUTED, "", prefix, item, prefix)


def curated_unique_names(con: DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """Curated plugin names that identify one plugin: plugin.json names first, then entry names."""
    by_manifest: dict[str, set[tuple[str, str]]] = {}
    by_entry: dict[str, set[tuple[str, str]]] = {}
    for plugin in marketplaces.list_plugins(con):
        ref = (plugin.marketplace_id, plugin.name)
        by_manifest.setdefault(plugin.manifest_name, set()).add(ref)
        by_entry.setdefault(plugin.name, set()).add(ref)
    unique = {name: next(iter(refs)) for name, refs in by_entry.items() if len(refs) == 1}
    unique.update({name: next(iter(refs)) for name, refs in by_manifest.items() if len(refs) == 1})
    return unique


def load(con: DuckDBPyConnection, data_dir: Path) -> Attributor:
    """An attributor for the current served sets, curated plugins and flea entities."""
    return Attributor(
        resolver.served_names_by_user(con, data_dir),
        curated_unique_names(con),
        [factory(con) for factory in _FLEA_RESOLVERS],
    )
