"""Connectors: one module per source type, one interface, discovered at import.

A connector module in this package defines ``CONNECTOR``, an instance of :class:`Connector`.
Adding a source type is adding a module; nothing else changes (the admin form, the API
validation and the sync job all go through :func:`get_connector`).

A connector's :meth:`Connector.extract` writes the table to ``request.output`` (a temporary
parquet path the caller publishes atomically) and returns its row count and columns; for
``remote`` tables it writes nothing: it returns the SQL of a server view (``sql``), or, for a
connector with :attr:`Connector.remote` (a source that answers queries itself, see
:mod:`agnes.data.sources`), only what the source's catalog says (columns, row estimate, size).
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

from agnes.data.modes import QueryMode
from agnes.data.sources import RemoteSource
from agnes.errors import Invalid


class ExtractError(RuntimeError):
    """A connector could not produce the table; the message is shown to admins as is.

    Messages must never contain secrets (DSNs, tokens): connectors say *which* setting failed.
    """


@dataclass(frozen=True)
class Option:
    """One connector option (a key of the table's ``source_spec``).

    Attributes:
        name: key in ``source_spec`` and form field ``opt_<name>``.
        kind: ``str``, ``text`` (multi-line), ``bool``, ``int``, ``list`` (comma separated in
            forms) or ``map`` (``old = new`` lines in forms).
        choices: allowed values for a ``str`` option, when closed.
    """

    name: str
    label: str
    kind: str = "str"
    required: bool = False
    help: str = ""
    default: Any = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtractRequest:
    """What a connector gets for one extraction.

    Attributes:
        table_id: the table's id (view name).
        spec: the validated ``source_spec``.
        query_mode: the table's query mode.
        output: where to write the parquet file (a temp path next to the published one).
        workdir: a private temp directory, removed after the extraction.
        env: environment for secrets referenced by name (process env + ``state/.env_overlay``).
        analytics_path: ``analytics/server.duckdb`` (the ``sql`` connector queries it).
        data_dir: ``AGNES_DATA_DIR``.
        source_roots: the resolved ``AGNES_DATA_SOURCE_DIRS`` (server files must be under one).
    """

    table_id: str
    spec: Mapping[str, Any]
    query_mode: QueryMode
    output: Path
    workdir: Path
    env: Mapping[str, str]
    analytics_path: Path
    data_dir: Path
    source_roots: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ExtractResult:
    """Outcome of one extraction: ``rows`` and ``columns`` ``[[name, type], ...]``.

    ``view_sql`` is set (and no file written) for remote tables served by a server view. For
    tables kept at their source, ``rows`` is the source's estimate and ``source_size_bytes`` its
    size there (bytes); no file is written either.
    """

    rows: int
    columns: list[list[str]]
    view_sql: str | None = None
    warning: str | None = None  # a success with something to say (kept on the table's sync state)
    source_size_bytes: int | None = None


@dataclass(frozen=True)
class Connector:
    """A source type.

    Attributes:
        type: stable key stored in ``table_registry.source_type``.
        query_modes: modes it supports; the first is the default.
        available: False for connectors listed but not built yet (registration refuses them).
        validate_spec: extra checks after the generic option parsing; returns the spec.
        extract: produces the table (see :class:`ExtractRequest`).
        check_mode: refuses a spec/mode combination the connector cannot serve (Invalid).
        remote: for sources that answer queries themselves, ``(spec, env) -> RemoteSource``
            (:mod:`agnes.data.sources`); its ``remote`` tables are queried there, never copied.
    """

    type: str
    label: str
    description: str
    options: tuple[Option, ...] = ()
    query_modes: tuple[QueryMode, ...] = (QueryMode.LOCAL,)
    available: bool = True
    validate_spec: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda spec: spec)
    extract: Callable[[ExtractRequest], ExtractResult] | None = None
    check_mode: Callable[[Mapping[str, Any], QueryMode], None] = field(default=lambda spec, mode: None)
    remote: Callable[[Mapping[str, Any], Mapping[str, str]], RemoteSource] | None = None

    def validate_mode(self, spec: Mapping[str, Any], mode: str | None) -> QueryMode:
        """The query mode for a table of this connector (default: the first supported). Raises Invalid."""
        if not mode:
            for candidate in self.query_modes:
                try:
                    self.check_mode(spec, candidate)
                except Invalid:
                    continue
                return candidate
            return self.query_modes[0]
        try:
            chosen = QueryMode(mode)
        except ValueError:
            raise Invalid("invalid_query_mode", f"Unknown query mode {mode!r}.", field="query_mode") from None
        if chosen not in self.query_modes:
            allowed = ", ".join(m.value for m in self.query_modes)
            raise Invalid(
                "invalid_query_mode", f"{self.label} tables can be {allowed}, not {chosen.value}.", field="query_mode"
            )
        self.check_mode(spec, chosen)
        return chosen

    def validate(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        """Normalize ``raw`` options to a spec. Raises Invalid naming ``spec.<option>``."""
        if raw is not None and not isinstance(raw, Mapping):
            raise Invalid(
                "invalid_source_spec", "source_spec must be an object of connector options.", field="source_spec"
            )
        raw = dict(raw or {})
        known = {o.name for o in self.options}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise Invalid("unknown_option", f"{self.label} has no option {unknown[0]!r}.", field=f"spec.{unknown[0]}")
        spec: dict[str, Any] = {}
        for option in self.options:
            value = coerce_option(option, raw.get(option.name))
            if value is None:
                if option.required:
                    raise Invalid("option_required", f"{option.label} is required.", field=f"spec.{option.name}")
                continue
            spec[option.name] = value
        return self.validate_spec(spec)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict | tuple) and len(value) == 0)


def coerce_option(option: Option, value: Any) -> Any:
    """One option value from JSON or form text; None when empty. Raises Invalid."""
    where = f"spec.{option.name}"
    if _empty(value):
        return None
    if option.kind in ("str", "text"):
        if not isinstance(value, str | int | float):
            raise Invalid("invalid_option", f"{option.label} must be text.", field=where)
        text = str(value) if option.kind == "text" else str(value).strip()
        if option.choices and text not in option.choices:
            raise Invalid("invalid_option", f"{option.label} must be one of {', '.join(option.choices)}.", field=where)
        return text or None
    if option.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise Invalid("invalid_option", f"{option.label} must be true or false.", field=where)
    if option.kind == "int":
        try:
            return int(str(value).strip())
        except ValueError:
            raise Invalid("invalid_option", f"{option.label} must be a whole number.", field=where) from None
    if option.kind == "list":
        items = value if isinstance(value, list) else str(value).split(",")
        cleaned = [str(item) for item in items if str(item) != ""]
        return cleaned or None
    if option.kind == "map":
        if isinstance(value, dict):
            mapping = {str(k): str(v) for k, v in value.items()}
        else:
            mapping = {}
            for line in str(value).splitlines():
                if not line.strip():
                    continue
                old, sep, new = line.partition("=")
                if not sep or not old.strip() or not new.strip():
                    raise Invalid("invalid_option", f"{option.label}: write one 'old = new' per line.", field=where)
                mapping[old.strip()] = new.strip()
        return mapping or None
    raise ValueError(f"unknown option kind {option.kind}")


_REGISTRY: dict[str, Connector] = {}


def connectors() -> dict[str, Connector]:
    """Every connector by type, in display order (available ones first)."""
    if not _REGISTRY:
        found: dict[str, Connector] = {}
        for module in pkgutil.iter_modules(__path__):
            if module.name.startswith("_"):
                continue
            connector = getattr(import_module(f"{__name__}.{module.name}"), "CONNECTOR", None)
            if isinstance(connector, Connector):
                if connector.type in found:
                    raise RuntimeError(f"two connectors have type {connector.type!r}")
                found[connector.type] = connector
        ordered = sorted(found.values(), key=lambda c: (not c.available, c.type))
        _REGISTRY.update({c.type: c for c in ordered})
    return _REGISTRY


def get_connector(source_type: str) -> Connector:
    """The connector of a type. Raises Invalid (``unknown_source_type`` / ``connector_unavailable``)."""
    connector = connectors().get(source_type or "")
    if connector is None:
        known = ", ".join(c.type for c in connectors().values() if c.available)
        raise Invalid(
            "unknown_source_type", f"Unknown source type {source_type!r}. Known: {known}.", field="source_type"
        )
    if not connector.available:
        raise Invalid(
            "connector_unavailable", f"The {connector.label} connector is not available yet.", field="source_type"
        )
    return connector
