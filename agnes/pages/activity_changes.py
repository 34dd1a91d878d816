"""Page data of the Changes tab of ``/admin/activity`` (fragment: its "Load more" pages; JSON twin
``GET /api/admin/activity/changes``; CLI ``agnes admin activity changes``): what changed in the
registries, newest first.

Three kinds of rows, merged on ``(timestamp, id)``:

* **Registry changes**: audit rows written with ``params_before`` (``agnes.audit.record``) by the
  writers of groups, memberships, grants, system flags, marketplaces, tables and tokens. Each shows
  its fields before and after: a creation (``params_before`` is ``{}``) its new fields, a removal
  (:data:`REMOVALS`) the removed thing's fields, any other change the fields whose value differs
  (nested values compared per key, ``source_spec.location``). Parameters that are not a before/after
  pair (counts, ``purge``) are the row's ``context``.
* **Marketplace syncs** that added, removed or re-versioned plugins (``marketplace_sync_history``).
* **Table syncs** that changed a table's row count, or were its first (``sync_history``).

Values are masked at render (:func:`agnes.masking.mask_value`): secrets were never stored (tokens
are recorded by metadata only, marketplace tokens by their variable's name), and SQL literals and
secret-looking text written before a rule existed are masked again. Pagination and the read's
``activity.read`` row work as on the timeline (:mod:`agnes.pages.admin_activity`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agnes.errors import Invalid
from agnes.masking import mask_value
from agnes.models import audit as audit_model
from agnes.models import json_value, utcnow
from agnes.models import marketplace_history as history_model
from agnes.models import tables as tables_model
from agnes.models.audit import AuditEntry
from agnes.pages.admin_activity import (
    DEFAULT_LIMIT,
    DEFAULT_WINDOW,
    DETAIL_LINKS,
    MAX_FILTER_LENGTH,
    MAX_LIMIT,
    decode_cursor,
    keyset_cursor,
    parse_time,
    record_read,
    timeline_row,
)
from agnes.state import state_store


class ChangeType(StrEnum):
    """What a change is about (the tab's ``type`` filter)."""

    GROUP = "group"
    MEMBER = "member"
    GRANT = "grant"
    SYSTEM = "system"  # a plugin marked or unmarked as a system plugin
    MARKETPLACE = "marketplace"
    TABLE = "table"
    TOKEN = "token"


# Type -> (action prefixes, prefixes excluded from them), in the order a row's type is decided.
TYPE_ACTIONS: dict[ChangeType, tuple[tuple[str, ...], tuple[str, ...]]] = {
    ChangeType.MEMBER: (("group.member_",), ()),
    ChangeType.GROUP: (("group.",), ("group.member_",)),
    ChangeType.GRANT: (("grant.",), ()),
    ChangeType.SYSTEM: (("marketplace.plugin.",), ()),
    ChangeType.MARKETPLACE: (("marketplace.",), ("marketplace.plugin.",)),
    ChangeType.TABLE: (("table.",), ()),
    ChangeType.TOKEN: (("token.",), ()),
}
# Last word of the actions after which the thing no longer exists (a token revoked still does).
REMOVALS = frozenset({"delete", "unregister", "member_remove", "bulk_delete"})
# Values a page shows at most of one field (characters); the JSON twin has them whole.
PAGE_CUT = 200


def change_type(action: str) -> str | None:
    """The :class:`ChangeType` value of an audit action (None: another area's change)."""
    for kind, (prefixes, exclude) in TYPE_ACTIONS.items():
        if action.startswith(prefixes) and not (exclude and action.startswith(exclude)):
            return kind.value
    return None


@dataclass(frozen=True)
class ChangesFilters:
    """The tab's filters as the URL holds them plus their resolved window. Build with :meth:`from_args`."""

    since: str = ""
    until: str = ""
    user: str = ""
    type: str = ""
    limit: int = DEFAULT_LIMIT
    cursor: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, Any], *, now: datetime | None = None) -> ChangesFilters:
        """From query arguments. Raises :class:`Invalid` (400) naming the bad field: ``since`` or
        ``until`` that does not parse or ``since`` not before ``until``, an unknown ``type``,
        ``limit`` outside 1-200, a ``cursor`` this server did not hand out."""
        now = now or utcnow()
        values = {name: str(args.get(name, "") or "").strip() for name in ("since", "until", "user", "type", "cursor")}
        for name, value in values.items():
            if len(value) > MAX_FILTER_LENGTH:
                raise Invalid("invalid_filter", f"{name} is longer than {MAX_FILTER_LENGTH} characters.", field=name)
        raw_limit = str(args.get("limit", "") or "").strip()
        try:
            limit = int(raw_limit) if raw_limit else DEFAULT_LIMIT
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid("invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}.", field="limit")
        if values["type"] and values["type"] not in ChangeType.__members__.values():
            names = ", ".join(t.value for t in ChangeType)
            raise Invalid("invalid_filter", f"type must be one of: {names}.", field="type")
        end = parse_time(values["until"], "until", now) if values["until"] else None
        start = parse_time(values["since"], "since", now) if values["since"] else (end or now) - DEFAULT_WINDOW
        if end is not None and start >= end:
            raise Invalid("invalid_filter", "since must be before until.", field="since")
        if values["cursor"]:
            decode_cursor(values["cursor"])
        return cls(**values, limit=limit, window_start=start, window_end=end)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments for a link (empty values and the default limit left out)."""
        values = {name: getattr(self, name) for name in ("since", "until", "user", "type", "limit", "cursor")}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "limit" and v == DEFAULT_LIMIT)}

    @property
    def active(self) -> bool:
        return bool(self.user or self.type)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in ("since", "until", "user", "type")},
            "limit": self.limit,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
        }

    def dedup_key(self, actor_id: str | None) -> str:
        """The key of "this actor read this filter of the Changes tab" (page size and cursor do not count)."""
        shown = {name: getattr(self, name) for name in ("since", "until", "user", "type")}
        digest = hashlib.sha256(json.dumps(["changes", actor_id, shown], sort_keys=True).encode()).hexdigest()[:32]
        return f"activity-read:{digest}"


@dataclass(frozen=True)
class FieldChange:
    """One field of a change: its value before and after (None: absent), masked."""

    field: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class Change:
    """One row of the Changes tab.

    Attributes:
        kind: ``created``, ``changed``, ``removed`` (registry changes) or ``synced`` (a sync).
        action: the audit action, or ``marketplace.sync`` / ``table.sync``.
        fields: the before/after pairs (registry changes).
        context: the change's other parameters (counts, ``purge``, a sync's commit).
        plugins: a marketplace sync's ``{"added": [name], "removed": [name], "changed":
            [{"name", "from", "to"}]}``.
        rows: a table sync's ``{"before": n | None, "after": n | None, "delta": n | None}``.
    """

    id: str
    timestamp: datetime
    type: str | None
    kind: str
    action: str
    resource: str | None
    subject: str
    user_id: str | None = None
    user_email: str | None = None
    fields: list[FieldChange] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    plugins: dict[str, list[Any]] | None = None
    rows: dict[str, int | None] | None = None
    links: list[tuple[str, str]] = field(default_factory=list)
    operation_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {k: json_value(v) for k, v in self.__dict__.items() if k not in ("fields", "links")}
        data["fields"] = [f.to_dict() for f in self.fields]
        data["links"] = [{"label": label, "url": url} for label, url in self.links]
        return data


@dataclass(frozen=True)
class ChangesPage:
    """One page of changes and the cursor of the next (None on the last page)."""

    filters: ChangesFilters
    rows: list[Change]
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [row.to_dict() for row in self.rows],
            "next_cursor": self.next_cursor,
            "filter": self.filters.to_dict(),
        }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"source_spec": {"location": x}}`` -> ``{"source_spec.location": x}`` (dicts only; an
    empty dict stays a value)."""
    if not isinstance(value, dict) or (prefix and not value):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def field_changes(
    action: str, before: dict[str, Any], after: dict[str, Any]
) -> tuple[str, list[FieldChange], dict[str, Any]]:
    """``(kind, fields, context)`` of a registry change: see the module docstring. ``None`` and an
    absent field count as the same (nothing)."""
    old, new = _flatten(before), _flatten(after)
    if not before:
        return "created", [FieldChange(k, None, v) for k, v in new.items() if v is not None], {}
    touched = {k.split(".", 1)[0] for k in before}
    context = {k: v for k, v in after.items() if k not in touched and v is not None}
    if action.rsplit(".", 1)[-1] in REMOVALS:
        return "removed", [FieldChange(k, v, None) for k, v in old.items() if v is not None], context
    keys = sorted(set(old) | {k for k in new if k.split(".", 1)[0] in touched})
    fields = [FieldChange(k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]
    return "changed", fields, context


def _audit_change(entry: AuditEntry) -> Change:
    before = mask_value(entry.params_before or {}, limit=None)
    after = mask_value(entry.params or {}, limit=None)
    kind, fields, context = field_changes(entry.action, before, after)
    subject = next(
        (str(d[k]) for k in ("name", "email", "resource_id") for d in (after, before) if d.get(k)),
        entry.resource or "",
    )
    row = timeline_row(entry)
    return Change(
        id=entry.id,
        timestamp=entry.timestamp,
        type=change_type(entry.action),
        kind=kind,
        action=entry.action,
        resource=entry.resource,
        subject=subject,
        user_id=entry.user_id,
        user_email=entry.user_email,
        fields=fields,
        context=context,
        links=row.links,
        operation_url=row.operation_url,
    )


def _detail_links(resource: str) -> list[tuple[str, str]]:
    prefix, _, rest = resource.partition(":")
    link = DETAIL_LINKS.get(f"{prefix}:")
    url = link(rest) if link else None
    return [(resource, url)] if url else []


def _plugin_change(record: history_model.SyncRecord, name: str | None) -> Change:
    resource = f"marketplace:{record.marketplace_id}"
    return Change(
        id=record.id,
        timestamp=record.finished_at,
        type=ChangeType.MARKETPLACE.value,
        kind="synced",
        action="marketplace.sync",
        resource=resource,
        subject=name or record.marketplace_id,
        context={k: v for k, v in (("commit", record.commit_sha), ("plugins", record.plugin_count)) if v is not None},
        plugins={"added": record.added, "removed": record.removed, "changed": record.changed},
        links=_detail_links(resource),
    )


def _row_count_change(change: tables_model.RowCountChange) -> Change:
    resource = f"table:{change.table_id}"
    delta = change.rows - change.previous_rows if None not in (change.rows, change.previous_rows) else None
    return Change(
        id=change.id,
        timestamp=change.finished_at,
        type=ChangeType.TABLE.value,
        kind="synced",
        action="table.sync",
        resource=resource,
        subject=change.table_name or change.table_id,
        context={"triggered_by": change.triggered_by} if change.triggered_by else {},
        rows={"before": change.previous_rows, "after": change.rows, "delta": delta},
        links=_detail_links(resource),
    )


def changes_page(filters: ChangesFilters, *, actor_id: str | None) -> ChangesPage:
    """The page of changes ``filters`` asks for (after its cursor), audited as ``activity.read``
    (tab ``changes``). Sync rows have no acting user: a ``user`` filter keeps only the table syncs
    that user started."""
    before = decode_cursor(filters.cursor) if filters.cursor else None
    wanted = ChangeType(filters.type) if filters.type else None
    window = {"since": filters.window_start, "until": filters.window_end, "before": before, "limit": filters.limit + 1}
    prefixes, exclude = TYPE_ACTIONS[wanted] if wanted else ((), ())
    rows: list[Change] = []
    with state_store().read() as con:
        entries = audit_model.query_changes(con, user=filters.user, prefixes=prefixes, exclude=exclude, **window)
        rows += [_audit_change(e) for e in entries]
        if wanted in (None, ChangeType.MARKETPLACE) and not filters.user:
            rows += [_plugin_change(r, name) for r, name in history_model.list_changes(con, **window)]
        if wanted in (None, ChangeType.TABLE):
            user_id = audit_model.resolve_user(con, filters.user) if filters.user else None
            counts = tables_model.list_row_count_changes(con, triggered_by=user_id, **window)
            rows += [_row_count_change(c) for c in counts]
    rows.sort(key=lambda row: (row.timestamp, row.id), reverse=True)
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    record_read(filters, actor_id, tab="changes")
    return ChangesPage(filters, rows, keyset_cursor(rows[-1].timestamp, rows[-1].id) if more and rows else None)
