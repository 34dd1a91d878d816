"""Page data of ``/admin/access`` (JSON twin ``/api/admin/access``), its rows and bulk confirmations,
and of ``/admin/access/resources/<type>/<id>`` (twin ``/api/admin/resources/<type>/<id>/access``).

The access page lists every grantable item of every resource type (``RESOURCE_TYPES``, each type's
``list_items``) in blocks (a marketplace's plugins, a source's tables) with the selected group's
grants, in one read unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from agnes.access import RESOURCE_TYPES, Principal, ResourceItem, ResourceType, parse_resource_type
from agnes.errors import NotFound
from agnes.explain import Reach, reach
from agnes.jobs import JobStatus
from agnes.jobs.google_groups import current_sync_job, google_groups_enabled
from agnes.models import google_sync, grants, groups
from agnes.models.google_sync import SyncRun
from agnes.models.grants import Grant
from agnes.models.groups import Group, Member
from agnes.state import state_store

# Members of the selected group listed on the access page (the group page lists them all).
MEMBERS_SHOWN = 50


class AccessRow:
    """One item with the selected group's grant of it (None: not granted).

    Plain attributes computed once (the page renders 1,000+ rows): ``anchor`` is the row's id and
    deep link (``table:<id>``, ``marketplace_plugin:<slug>/<plugin>``); ``message`` is a refusal
    shown in the row (a system plugin's grant cannot be revoked).
    """

    __slots__ = ("resource_type", "type", "item", "grant", "message", "anchor", "path", "granted", "locked", "fanout")

    def __init__(self, resource_type: ResourceType, item: ResourceItem, grant: Grant | None, message: str = "") -> None:
        self.resource_type = resource_type
        self.type = resource_type.value
        self.item = item
        self.grant = grant
        self.message = message
        self.anchor = f"{self.type}:{item.id}"
        self.path = f"{self.type}/{quote(item.id)}"  # of its "who can reach it" page
        self.locked = item.locked
        self.granted = grant is not None or item.locked
        self.fanout = grant is not None and grant.origin == "system_fanout"

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_type": self.type,
            "id": self.item.id,
            "label": self.item.label,
            "granted": self.granted,
            "system": self.locked,
            "grant_id": self.grant.id if self.grant else None,
            "origin": self.grant.origin if self.grant else None,
        }


@dataclass(frozen=True)
class Block:
    """A marketplace's plugins or a source's tables."""

    resource_type: ResourceType
    name: str  # the marketplace or source
    title: str
    rows: list[AccessRow]

    @property
    def key(self) -> str:
        return f"{self.resource_type.value}:{self.name}"

    @property
    def grantable(self) -> list[str]:
        """Ids "grant all" would grant (not yet granted)."""
        return [r.item.id for r in self.rows if not r.granted]

    @property
    def revocable(self) -> list[str]:
        """Ids "revoke all" would revoke (granted, not system)."""
        return [r.item.id for r in self.rows if r.grant is not None and not r.item.locked]

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type.value,
            "name": self.name,
            "title": self.title,
            "items": [r.to_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class AccessPage:
    groups: list[Group]
    group: Group | None
    members: list[Member]
    blocks: list[Block]
    orphaned: list[Grant]
    q: str
    google_enabled: bool
    google_runs: list[SyncRun]
    google_job: JobStatus | None = None
    notice: str = ""
    bulk: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [g.to_dict() for g in self.groups],
            "group": self.group.to_dict() if self.group else None,
            "members": [m.to_dict() for m in self.members],
            "blocks": [b.to_dict() for b in self.blocks],
            "orphaned": [g.to_dict() for g in self.orphaned],
            "q": self.q,
            "google": {
                "enabled": self.google_enabled,
                "runs": [r.to_dict() for r in self.google_runs],
                "job": self.google_job.to_dict() if self.google_job else None,
            },
        }


def _matches(item: ResourceItem, needle: str) -> bool:
    return not needle or needle in item.id.lower() or needle in item.label.lower() or needle in item.group.lower()


def access_page(group_id: str = "", q: str = "") -> AccessPage:
    """Groups (with counts and origin); for ``group_id``, every item in blocks with that group's
    grants, its first members and its orphaned grants (items gone). Raises NotFound (group)."""
    needle = q.strip().lower()
    with state_store().read() as con:
        all_groups = groups.list_groups(con)
        group = next((g for g in all_groups if g.id == group_id), None) if group_id else None
        if group_id and group is None:
            raise NotFound("group_not_found", "No such group.")
        blocks: list[Block] = []
        orphaned: list[Grant] = []
        members: list[Member] = []
        if group is not None:
            members = groups.list_members(con, group.id, limit=MEMBERS_SHOWN)
            by_key = {
                (g.resource_type, g.resource_id): g for g in grants.list_grants(con, group_id=group.id, emails=False)
            }
            listed: set[tuple[str, str]] = set()
            for rtype, spec in RESOURCE_TYPES.items():
                current: dict[str, list[AccessRow]] = {}
                for item in spec.list_items(con):
                    listed.add((rtype.value, item.id))
                    if _matches(item, needle):
                        row = AccessRow(rtype, item, by_key.get((rtype.value, item.id)))
                        current.setdefault(item.group, []).append(row)
                for name, rows in current.items():
                    blocks.append(Block(rtype, name, f"{spec.display_name}s · {name}", rows))
            orphaned = [g for key, g in by_key.items() if key not in listed]
        runs = google_sync.latest_runs(con, scope="all", limit=3)
    return AccessPage(
        groups=all_groups,
        group=group,
        members=members,
        blocks=blocks,
        orphaned=orphaned,
        q=q,
        google_enabled=google_groups_enabled(),
        google_runs=runs,
        google_job=current_sync_job(),
    )


# ``access_row(grant=...)`` default: look the grant up.
_LOOK_UP: Any = object()


def access_row(
    group_id: str, resource_type: str, resource_id: str, *, message: str = "", grant: Grant | None = _LOOK_UP
) -> AccessRow | None:
    """One row of the access page after a toggle (whose change checked the group), with ``grant``
    as the change left it (looked up when not given); None for an orphaned grant just revoked (its
    item is gone, so the row goes)."""
    rtype = parse_resource_type(resource_type)
    spec = RESOURCE_TYPES[rtype]
    with state_store().read() as con:
        item = spec.item(con, resource_id)
        if grant is _LOOK_UP:
            grant = grants.find_grant(con, group_id, rtype.value, resource_id)
    if item is None:
        if grant is None:
            return None
        item = ResourceItem(resource_id, resource_id, "orphaned")
    return AccessRow(rtype, item, grant, message)


@dataclass(frozen=True)
class BulkPreview:
    """What "grant all" / "revoke all" of one block would change, for its confirmation."""

    group: Group
    resource_type: ResourceType
    block: str
    action: str  # grant | revoke
    ids: list[str]
    q: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group.id,
            "resource_type": self.resource_type.value,
            "block": self.block,
            "action": self.action,
            "count": len(self.ids),
            "resource_ids": self.ids,
        }


def bulk_preview(group_id: str, resource_type: str, block: str, action: str, q: str = "") -> BulkPreview:
    """The items of one block (as filtered by ``q``) that grant-all or revoke-all would change.
    Raises NotFound (group), Invalid (type)."""
    rtype = parse_resource_type(resource_type)
    page = access_page(group_id, q)
    assert page.group is not None
    found = next((b for b in page.blocks if b.resource_type is rtype and b.name == block), None)
    ids = [] if found is None else (found.grantable if action == "grant" else found.revocable)
    return BulkPreview(page.group, rtype, block, "grant" if action == "grant" else "revoke", ids, q)


def resource_page(viewer: Principal, resource_type: str, resource_id: str, page: int = 1) -> Reach:
    """Who reaches one resource (:func:`agnes.explain.reach`)."""
    return reach(viewer, resource_type, resource_id, page=page)
