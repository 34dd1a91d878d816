"""The flea market: skills, agents, commands and plugins that analysts publish themselves.

Nothing here starts a job or renders a page (``agnes.jobs.flea`` and ``agnes.views`` do):

* :mod:`~agnes.flea.checks` — what an upload must be (ZIP safety, layout, frontmatter), turned
  into a :class:`~agnes.flea.checks.Bundle` in the plugin layout it will be stored in;
* :mod:`~agnes.flea.scan` — the static scan of every file for secrets and dangerous commands;
* :mod:`~agnes.flea.service` — publishing (preview, v1, new versions), rollback, archive,
  delete, install; :mod:`~agnes.flea.store` — the immutable version folders;
* :mod:`~agnes.flea.review` — the reviewer's verdict and administrators' decisions, with
  :mod:`~agnes.flea.reviewer` (the Messages API call);
* :mod:`~agnes.flea.visibility` — who sees an entity and which versions (the ``flea_entity``
  resource type).
"""

from __future__ import annotations

from duckdb import DuckDBPyConnection
from flask import Flask

from agnes.access import ResourceItem, ResourceType, register_resource_type
from agnes.flea import visibility
from agnes.models import flea as flea_model
from agnes.telemetry.attribution import LEGACY_BUNDLE, FleaLookup, register_flea_resolver


def _no_items(con: DuckDBPyConnection) -> list[ResourceItem]:
    """Flea entries are not granted to groups: visibility follows review, not grants."""
    return []


def flea_lookup(con: DuckDBPyConnection) -> FleaLookup:
    """Telemetry: ``<name>-by-<handle>:<item>`` → (entity id, name), read once per processing run.
    The original's single bundle plugin named its items ``agnes-store-bundle:<name>-by-<user>``:
    those resolve by the item's name."""
    names = flea_model.plugin_names(con)

    def lookup(prefix: str, item: str) -> tuple[str, str] | None:
        if prefix == LEGACY_BUNDLE:
            return names.get(item)
        return names.get(prefix)

    return lookup


def init_app(app: Flask) -> None:
    """Register the ``flea_entity`` resource type and the telemetry resolver."""
    register_resource_type(
        ResourceType.FLEA_ENTITY,
        list_items=_no_items,
        is_granted=visibility.is_granted,
        exists=lambda principal, entity_id: False,  # a hidden entity is "not found", never "forbidden"
    )
    register_flea_resolver(flea_lookup)
