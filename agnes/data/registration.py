"""Registering, changing and unregistering tables, with the guards admins and the API share.

Every function is one or a few short units of work and raises :class:`agnes.errors.AppError`
subclasses (the status, code and message a client sees).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from agnes import audit, markers, signals
from agnes.access import ResourceType
from agnes.data import data_dir, extracts, orchestrator
from agnes.data.connectors import get_connector
from agnes.data.extracts import SOURCE_RE, TABLE_ID_RE
from agnes.data.schedules import parse_schedule
from agnes.errors import AppError, Conflict, FieldErrors, Invalid, NotFound
from agnes.models import grants, tables
from agnes.models.tables import SyncState, TableEntry
from agnes.state import state_store

# Longest table name and description (characters).
NAME_MAX = 120
DESCRIPTION_MAX = 2000


@dataclass(frozen=True)
class TableView:
    """A registered table with its latest sync state (pages and API)."""

    table: TableEntry
    state: SyncState | None

    def to_dict(self) -> dict[str, Any]:
        """The API shape of a table (never a secret: specs hold env-var names only)."""
        return {**self.table.to_dict(), "sync": self.state.to_dict() if self.state else None}


def table_id_for(name: str) -> str:
    """The id (view name) derived from a display name: lower case, runs of other characters → ``_``."""
    slug = re.sub(r"[^a-z0-9]+", "_", (name or "").strip().lower()).strip("_")
    return slug[:64]


def _validate_id(table_id: str) -> str:
    if not TABLE_ID_RE.match(table_id or ""):
        raise Invalid(
            "invalid_table_id",
            "A table id is 1-64 lower-case letters, digits and underscores, starting with a letter or digit.",
            field="id",
        )
    return table_id


def _text(fields: Mapping[str, Any], key: str) -> str:
    """A text field, stripped ('' when missing). Raises Invalid for numbers, lists and objects."""
    value = fields.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"invalid_{key}", f"{key} must be text.", field=key)
    return value.strip()


# What a removal's audit row keeps of a table.
REGISTRY_FIELDS = ("name", "description", "source_type", "source_name", "source_spec", "query_mode", "schedule")


def _name(fields: Mapping[str, Any]) -> str:
    name = _text(fields, "name")
    if not name:
        raise Invalid("name_required", "A table name is required.", field="name")
    if len(name) > NAME_MAX:
        raise Invalid("name_too_long", f"Table names are at most {NAME_MAX} characters.", field="name")
    return name


def _description(fields: Mapping[str, Any]) -> str:
    description = _text(fields, "description")
    if len(description) > DESCRIPTION_MAX:
        raise Invalid(
            "description_too_long", f"Descriptions are at most {DESCRIPTION_MAX} characters.", field="description"
        )
    return description


class _Refusals:
    """Runs independent field checks and keeps every refusal, so a form shows all its errors at once."""

    def __init__(self) -> None:
        self.found: list[AppError] = []

    def check(self, fn: Any, *args: Any) -> Any:
        """``fn(*args)``, or None after recording its refusal."""
        try:
            return fn(*args)
        except AppError as exc:
            self.found.append(exc)
            return None

    def raise_any(self) -> None:
        """Raise the one refusal, or :class:`FieldErrors` with all of them."""
        if len(self.found) == 1:
            raise self.found[0]
        if self.found:
            raise FieldErrors(self.found)


def _common(fields: Mapping[str, Any], refusals: _Refusals) -> dict[str, Any]:
    schedule = refusals.check(parse_schedule, fields.get("schedule"))
    return {
        "name": refusals.check(_name, fields),
        "description": refusals.check(_description, fields),
        "schedule": schedule.text if schedule else None,
        "primary_key": refusals.check(_text, fields, "primary_key") or None,
    }


def _source_name(fields: Mapping[str, Any], default: str) -> str:
    source_name = _text(fields, "source_name") or default
    if not SOURCE_RE.match(source_name):
        raise Invalid(
            "invalid_source_name", "A source name is lower-case letters, digits, '-' and '_'.", field="source_name"
        )
    return source_name


def register_table(fields: Mapping[str, Any], *, owner_id: str | None) -> TableEntry:
    """Register a table.

    Args:
        fields: ``name`` (required), ``id`` (default: derived from the name), ``description``,
            ``source_type``, ``source_name`` (default: the source type), ``source_spec`` (connector
            options), ``query_mode`` (default: the connector's), ``schedule``, ``primary_key``.

    Raises:
        Invalid: a field is wrong (``field`` names it, ``spec.<option>`` for connector options);
            FieldErrors when several are (every refusal, so a form shows them together).
        Conflict: ``table_exists`` (the id is taken) or ``view_name_taken`` (another source owns the name).
    """
    refusals = _Refusals()
    common = _common(fields, refusals)
    given_id = refusals.check(_text, fields, "id")
    table_id = None
    if given_id or common["name"]:
        table_id = refusals.check(_validate_id, given_id or table_id_for(common["name"]))
    connector = refusals.check(lambda: get_connector(_text(fields, "source_type")))
    source_name = refusals.check(_source_name, fields, connector.type) if connector else None
    spec = refusals.check(connector.validate, fields.get("source_spec") or {}) if connector else None
    mode = refusals.check(connector.validate_mode, spec, fields.get("query_mode")) if spec is not None else None
    refusals.raise_any()
    assert table_id is not None and connector is not None and mode is not None  # every check passed
    with state_store().write() as con:
        if tables.get_table(con, table_id):
            raise Conflict("table_exists", f"A table with id '{table_id}' is already registered.", field="id")
        owner = tables.view_owners(con).get(table_id)
        if owner and owner != source_name:
            raise Conflict(
                "view_name_taken",
                f"The view name '{table_id}' is already provided by source '{owner}'; choose another id.",
                field="id",
            )
        try:
            entry = tables.create_table(
                con,
                table_id=table_id,
                source_type=connector.type,
                source_name=source_name,
                source_spec=spec,
                query_mode=mode.value,
                owner_id=owner_id,
                **common,
            )
        except duckdb.ConstraintException:
            raise Conflict("table_exists", f"A table with id '{table_id}' is already registered.", field="id") from None
        markers.TABLES.bump()
        audit.record(
            con,
            "table.register",
            f"table:{table_id}",
            params_before={},
            name=entry.name,
            source_type=entry.source_type,
            source_spec=entry.source_spec,
            query_mode=entry.query_mode,
            schedule=entry.schedule,
        )
    return entry


def update_table(table_id: str, fields: Mapping[str, Any]) -> TableEntry:
    """Change name, description, connector options, query mode, schedule or primary key.

    Fields not given keep their values. The source type and source cannot change (unregister
    and register again). Raises NotFound, Invalid.
    """
    current = get_table(table_id)
    merged = {
        "name": fields.get("name", current.name),
        "description": fields.get("description", current.description),
        "schedule": fields.get("schedule", current.schedule),
        "primary_key": fields.get("primary_key", current.primary_key),
    }
    refusals = _Refusals()
    common = _common(merged, refusals)
    refusals.raise_any()
    connector = get_connector(current.source_type)
    spec = connector.validate(fields["source_spec"]) if "source_spec" in fields else current.source_spec
    mode = connector.validate_mode(spec, fields.get("query_mode") or current.query_mode)
    for fixed in ("source_type", "source_name", "id"):
        if fixed in fields and fields[fixed] not in (None, "", getattr(current, fixed)):
            raise Invalid(
                "immutable_field", f"{fixed} cannot change; unregister the table and register it again.", field=fixed
            )
    with state_store().write() as con:
        previous = tables.get_table(con, table_id)
        if previous is None:
            raise NotFound("table_not_found", f"No table '{table_id}'.")
        tables.update_table(con, table_id, source_spec=spec, query_mode=mode.value, **common)
        updated = tables.get_table(con, table_id)
        markers.TABLES.bump()
        after = {"source_spec": spec, "query_mode": mode.value, **common}
        audit.record(
            con,
            "table.update",
            f"table:{table_id}",
            params_before={field: getattr(previous, field) for field in after},
            **after,
        )
    assert updated is not None
    return updated


def unregister_table(table_id: str) -> TableEntry:
    """Remove a table: its registry row, state, grants, extract files and master view. Raises NotFound."""

    with state_store().write() as con:
        entry = tables.get_table(con, table_id)
        if entry is None:
            raise NotFound("table_not_found", f"No table '{table_id}'.")
        for grant in grants.list_grants(con, resource_type=ResourceType.TABLE.value):
            if grant.resource_id == table_id:
                grants.delete_grant(con, grant.id)
                signals.grant_revoked.send(
                    None, con=con, group_id=grant.group_id, resource_type=ResourceType.TABLE, resource_id=table_id
                )
        tables.delete_table(con, table_id)
        markers.TABLES.bump()
        audit.record(
            con,
            "table.unregister",
            f"table:{table_id}",
            params_before={field: getattr(entry, field) for field in REGISTRY_FIELDS},
            name=entry.name,
        )
    extracts.unpublish(data_dir(), entry.source_name, table_id)
    orchestrator.rebuild(data_dir(), source=entry.source_name)
    return entry


def get_table(table_id: str) -> TableEntry:
    with state_store().read() as con:
        entry = tables.get_table(con, table_id)
    if entry is None:
        raise NotFound("table_not_found", f"No table '{table_id}'.")
    return entry


def list_tables() -> list[TableView]:
    with state_store().read() as con:
        states = tables.list_sync_states(con)
        return [TableView(t, states.get(t.id)) for t in tables.list_tables(con)]


def table_detail(table_id: str) -> tuple[TableView, list[tables.SyncRun]]:
    with state_store().read() as con:
        entry = tables.get_table(con, table_id)
        if entry is None:
            raise NotFound("table_not_found", f"No table '{table_id}'.")
        return TableView(entry, tables.get_sync_state(con, table_id)), tables.list_history(con, table_id)
