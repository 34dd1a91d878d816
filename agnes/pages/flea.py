"""Page data of the flea market, shared by the pages, their fragments and the JSON twins:

* :func:`flea_tab` — ``/marketplace?tab=flea`` (twin ``GET /api/flea/entities``);
* :func:`entity_page` — one entry (twin ``GET /api/flea/entities/<id>``);
* :func:`version_page` — one version: files, findings, diff from the served version
  (twin ``GET /api/flea/entities/<id>/versions/<n>``);
* :func:`admin_queue` — ``/admin/flea``: status chips with counts, filters, sort, 50 a page
  (twin ``GET /api/admin/flea``).

Hidden entities and versions raise 404 (see :mod:`agnes.flea.visibility`).
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from agnes import markers
from agnes.access import Principal
from agnes.flea import store
from agnes.flea.service import CATEGORIES
from agnes.flea.visibility import can_see_version, sees_all_versions, visible_entity, visible_version
from agnes.models import flea as model
from agnes.models import flea_queue
from agnes.models.flea import KINDS, SORTS, VERSION_STATUSES, Entity, Version
from agnes.models.flea_queue import QUEUE_SORTS, QueueRow
from agnes.state import state_store
from agnes.units import page_count

PER_PAGE = 24
QUEUE_PER_PAGE = 50
# Largest file shown in a diff (bytes); larger or binary files are only named.
DIFF_MAX = 200 * 1024


def _int(value: Any, default: int = 1) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class TabFilters:
    q: str = ""
    kind: str = ""
    category: str = ""
    sort: str = "recent"
    mine: bool = False
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> TabFilters:
        """Unknown values fall back to "any" (a bookmark never fails)."""
        kind = str(args.get("type", "") or args.get("kind", "") or "")
        category = str(args.get("category", "") or "")
        sort = str(args.get("sort", "") or "recent")
        return cls(
            q=str(args.get("q", "") or "")[:200].strip(),
            kind=kind if kind in KINDS else "",
            category=category if category in CATEGORIES else "",
            sort=sort if sort in SORTS else "recent",
            mine=str(args.get("mine", "")) in ("1", "true", "yes"),
            page=_int(args.get("page", 1)),
        )


def card(
    entity: Entity, viewer: Principal, installed: set[str] | None = None, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One card: the entity (``base``: its ``to_dict()`` already made) with the viewer's badges
    (``under_review`` for the owner's newest upload in review, ``installed``, ``is_owner``)."""
    data = dict(base) if base is not None else entity.to_dict()
    is_owner = entity.owner_id == viewer.user.id
    data.update(
        is_owner=is_owner,
        installed=entity.id in (installed or set()),
        under_review=(is_owner or viewer.is_admin) and entity.latest_status == "in_review",
        owner_label=entity.owner_handle,
    )
    if not sees_all_versions(viewer, entity):
        data.pop("latest_status", None)
        data.pop("latest_version", None)
    return data


@dataclass(frozen=True)
class FleaTab:
    filters: TabFilters
    items: list[dict[str, Any]]
    total: int
    sorts: tuple[str, ...] = tuple(SORTS)
    kinds: tuple[str, ...] = KINDS
    categories: tuple[str, ...] = CATEGORIES

    @property
    def pages(self) -> int:
        return page_count(self.total, PER_PAGE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "total": self.total,
            "page": self.filters.page,
            "pages": self.pages,
            "page_size": PER_PAGE,
            "filters": self.filters.__dict__,
            "sorts": list(self.sorts),
            "kinds": list(self.kinds),
            "categories": list(self.categories),
        }


class _Catalog:
    """Every entity (and who installed what), cached per process under :data:`agnes.markers.FLEA`:
    a few thousand rows filtered, sorted and paged in Python cost less than a query per request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.marker: str | None = None
        self.entities: list[Entity] = []
        self.installs: dict[str, set[str]] = {}
        self.dicts: dict[str, dict[str, Any]] = {}
        self.text: dict[str, str] = {}  # lower-cased name, description, category and handle (search)
        self.orders: dict[str, list[Entity]] = {}  # the entities in each sort order

    def get(self) -> _Catalog:
        marker = markers.FLEA.current()  # read before loading: a later change bumps it again
        with self.lock:
            if marker == self.marker:
                return self
        with state_store().read() as con:
            entities = model.all_entities(con)
            installs = model.installs_by_user(con)
        with self.lock:
            self.marker, self.entities, self.installs = marker, entities, installs
            self.dicts = {e.id: e.to_dict() for e in entities}
            self.text = {e.id: "\n".join((e.name, e.description, e.category, e.owner_handle)).lower() for e in entities}
            self.orders = {sort: _sorted(entities, sort) for sort in SORTS}
        return self


def _catalog() -> _Catalog:
    return current_app.extensions.setdefault("agnes_flea_catalog", _Catalog()).get()


def _may_see(viewer: Principal, entity: Entity, installed: set[str]) -> bool:
    """The SQL rule of :func:`agnes.models.flea.is_visible`, over a catalog entry."""
    if viewer.is_admin or entity.owner_id == viewer.user.id:
        return True
    return entity.served_version is not None and (entity.state == "active" or entity.id in installed)


def _listed(viewer: Principal, entity: Entity) -> bool:
    """Archived entries are listed only for their owner and admins (installers keep them in My stack)."""
    return entity.state == "active" or viewer.is_admin or entity.owner_id == viewer.user.id


_SORT_KEYS: dict[str, Callable[[Entity], Any]] = {
    "name": lambda e: (e.name, e.id),
    "most_installed": lambda e: (-e.install_count, e.name, e.id),
}


def _sorted(entities: list[Entity], sort: str) -> list[Entity]:
    if sort == "recent":
        return entities  # the catalog's order
    if sort == "updated":
        return sorted(entities, key=lambda e: (e.updated_at, e.id), reverse=True)
    return sorted(entities, key=_SORT_KEYS[sort])


def flea_tab(viewer: Principal, filters: TabFilters) -> FleaTab:
    """The entries the viewer may browse (approved ones, plus their own; admins all)."""
    catalog = _catalog()
    installed = catalog.installs.get(viewer.user.id, set())
    q = filters.q.lower()
    found = [
        e
        for e in catalog.orders[filters.sort]
        if _may_see(viewer, e, installed)
        and _listed(viewer, e)
        and (not filters.kind or e.kind == filters.kind)
        and (not filters.category or e.category == filters.category)
        and (not filters.mine or e.owner_id == viewer.user.id)
        and (not q or q in catalog.text[e.id])
    ]
    start = (filters.page - 1) * PER_PAGE
    cards = [card(e, viewer, installed, catalog.dicts.get(e.id)) for e in found[start : start + PER_PAGE]]
    return FleaTab(filters, cards, len(found))


def my_installs(viewer: Principal) -> list[dict[str, Any]]:
    """Cards of the viewer's flea installs (My stack)."""
    catalog = _catalog()
    installed = catalog.installs.get(viewer.user.id, set())
    return [
        card(e, viewer, installed, catalog.dicts.get(e.id))
        for e in catalog.entities
        if e.id in installed and _may_see(viewer, e, installed)
    ]


def _version_summary(version: Version, viewer_sees_all: bool) -> dict[str, Any]:
    data = version.to_dict()
    if not viewer_sees_all:
        for key in ("note", "verdict", "decided_by", "uploaded_by"):
            data.pop(key, None)
    data["label"] = version.label
    return data


@dataclass(frozen=True)
class EntityPage:
    entity: Entity
    card: dict[str, Any]
    versions: list[dict[str, Any]]
    files: list[dict[str, Any]]
    installed: bool
    can_manage: bool
    can_install: bool
    install_refusal: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.card,
            "versions": self.versions,
            "files": self.files,
            "installed": self.installed,
            "can_manage": self.can_manage,
            "can_install": self.can_install,
            "install_refusal": self.install_refusal,
        }


def entity_page(viewer: Principal, entity_id: str) -> EntityPage:
    """One entry: versions the viewer may see (owner and admins: all, with status and the
    rejection reason; others: the served one), the served version's files, install state.

    Raises:
        NotFound: hidden or missing.
    """
    entity = visible_entity(viewer, entity_id)
    with state_store().read() as con:  # the entity again, in one unit with its versions (a review may commit between)
        entity = model.get_entity(con, entity.id) or entity
        all_versions = sees_all_versions(viewer, entity)
        versions = [v for v in model.list_versions(con, entity.id) if can_see_version(viewer, entity, v)]
        installed = model.is_installed(con, entity.id, viewer.user.id)
    shown = entity.served_version or (versions[0].number if versions and all_versions else None)
    files = [{"path": p, "size": s} for p, s in store.list_files(entity.id, shown)] if shown else []
    refusal = None
    if entity.state == "archived":
        refusal = "entity_archived"
    elif entity.served_version is None:
        refusal = "entity_not_approved"
    return EntityPage(
        entity=entity,
        card=card(entity, viewer, {entity.id} if installed else set()),
        versions=[_version_summary(v, all_versions) for v in versions],
        files=files,
        installed=installed,
        can_manage=all_versions,
        can_install=refusal is None and not installed,
        install_refusal=None if installed else refusal,
    )


@dataclass(frozen=True)
class VersionPage:
    entity: Entity
    version: Version
    files: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    diff: list[dict[str, Any]] = field(default_factory=list)
    diff_base: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity.to_dict(),
            "version": self.version.to_dict(),
            "files": self.files,
            "findings": self.findings,
            "diff_base": self.diff_base,
            "diff": self.diff,
        }


def _text(data: bytes) -> str | None:
    if len(data) > DIFF_MAX or b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def diff_files(old: dict[str, bytes], new: dict[str, bytes]) -> list[dict[str, Any]]:
    """Per changed file: ``{path, change: added|removed|changed, diff: unified text or None (binary)}``."""
    out: list[dict[str, Any]] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        change = "added" if before is None else "removed" if after is None else "changed"
        a, b = _text(before or b""), _text(after or b"")
        text = None
        if a is not None and b is not None:
            text = "".join(
                difflib.unified_diff(
                    a.splitlines(keepends=True),
                    b.splitlines(keepends=True),
                    fromfile=f"a/{path}",
                    tofile=f"b/{path}",
                )
            )
        out.append({"path": path, "change": change, "diff": text})
    return out


def version_page(viewer: Principal, entity_id: str, number: int) -> VersionPage:
    """One version: its files, findings at file and line, and the diff from the served version.

    Raises:
        NotFound: the entity or the version is hidden from the viewer, or missing.
    """
    entity = visible_entity(viewer, entity_id)
    version = visible_version(viewer, entity, number)
    files = [{"path": p, "size": s} for p, s in store.list_files(entity.id, number)]
    diff: list[dict[str, Any]] = []
    base = entity.served_version if entity.served_version not in (None, number) else None
    if base is not None and version.files_deleted_at is None:
        diff = diff_files(store.read_files(entity.id, base), store.read_files(entity.id, number))
    return VersionPage(entity, version, files, version.findings, diff, base)


def version_file(viewer: Principal, entity_id: str, number: int, path: str) -> bytes:
    """The bytes of one file of a version the viewer may see (404 otherwise)."""
    entity = visible_entity(viewer, entity_id)
    visible_version(viewer, entity, number)
    return store.read_file(entity.id, number, path)


@dataclass(frozen=True)
class QueueFilters:
    status: str = "in_review"
    kind: str = ""
    q: str = ""
    sort: str = "oldest"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> QueueFilters:
        """``status`` defaults to ``in_review``; ``all`` lists every status."""
        status = str(args.get("status", "in_review") or "in_review")
        kind = str(args.get("type", "") or args.get("kind", "") or "")
        sort = str(args.get("sort", "") or "oldest")
        return cls(
            status=status if status in (*VERSION_STATUSES, "all") else "in_review",
            kind=kind if kind in KINDS else "",
            q=str(args.get("q", "") or "")[:200].strip(),
            sort=sort if sort in QUEUE_SORTS else "oldest",
            page=_int(args.get("page", 1)),
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        values = {**self.__dict__, **changes}
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}


@dataclass(frozen=True)
class AdminQueue:
    filters: QueueFilters
    counts: dict[str, int]
    rows: list[QueueRow]
    total: int

    @property
    def pages(self) -> int:
        return page_count(self.total, QUEUE_PER_PAGE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "total": self.total,
            "page": self.filters.page,
            "pages": self.pages,
            "page_size": QUEUE_PER_PAGE,
            "filters": self.filters.__dict__,
            "sorts": list(QUEUE_SORTS),
            "rows": [r.to_dict() for r in self.rows],
        }


def admin_queue(filters: QueueFilters) -> AdminQueue:
    """The review queue: counts per status (the chips) and a page of versions (offset paging)."""
    with state_store().read() as con:
        counts = flea_queue.queue_counts(con)
        rows, total = flea_queue.list_queue(
            con,
            status="" if filters.status == "all" else filters.status,
            kind=filters.kind,
            q=filters.q,
            sort=filters.sort,
            limit=QUEUE_PER_PAGE,
            offset=(filters.page - 1) * QUEUE_PER_PAGE,
        )
    return AdminQueue(filters, counts, rows, total)
