"""A DuckDB query over the registered tables (and optional DuckDB files), materialized to parquet.

The query runs with ``analytics/server.duckdb`` attached read-only and selected, so it can
name any registered table (``SELECT island, count(*) FROM penguins GROUP BY 1``). ``attach``
adds other DuckDB files read-only under an alias; they must be under ``AGNES_DATA_SOURCE_DIRS``.
The query runs with DuckDB's external access off except for those directories (and the published
extracts the views read), with extension loading off and the configuration locked, so it cannot
read the server's own files (:func:`agnes.data.locations.restricted_connection`).
"""

from __future__ import annotations

import re
from typing import Any

from agnes.data import extracts, locations
from agnes.data.connectors import Connector, ExtractError, ExtractRequest, ExtractResult, Option
from agnes.data.connectors._files import first_lines, sql_string
from agnes.data.modes import QueryMode
from agnes.errors import Invalid

ALIAS_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _validate(spec: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    try:
        statements = duckdb.extract_statements(spec["query"])
    except duckdb.Error as exc:
        raise Invalid(
            "invalid_query", f"The query does not parse: {first_lines(str(exc), 1)}", field="spec.query"
        ) from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise Invalid("invalid_query", "Write exactly one SELECT (or WITH ... SELECT) statement.", field="spec.query")
    spec["query"] = spec["query"].strip().rstrip(";").strip()
    for alias, path in (spec.get("attach") or {}).items():
        if not ALIAS_RE.match(alias) or alias in ("analytics", "main", "memory", "system", "temp"):
            raise Invalid(
                "invalid_option", f"{alias!r} cannot be an alias (lower-case letters, digits, _).", field="spec.attach"
            )
        locations.check_location(path, field="spec.attach")
    return spec


def _check_mode(spec: Any, mode: QueryMode) -> None:
    if mode is QueryMode.REMOTE and spec.get("attach"):
        raise Invalid(
            "invalid_query_mode", "A remote SQL table cannot attach files; materialize it instead.", field="query_mode"
        )


def extract(request: ExtractRequest) -> ExtractResult:
    import duckdb

    query = str(request.spec["query"])
    attach = {"analytics": str(request.analytics_path)} if request.analytics_path.exists() else {}
    roots = list(request.source_roots)
    try:
        for alias, path in (request.spec.get("attach") or {}).items():
            found = locations.resolve_files(path, data_dir=request.data_dir, roots=roots, field="spec.attach")
            attach[alias] = found[0]
    except locations.LocationRefused as exc:
        raise ExtractError(exc.message) from None
    except FileNotFoundError as exc:
        raise ExtractError(f"file not found: {exc}") from None
    try:
        con = locations.restricted_connection(
            data_dir=request.data_dir,
            roots=roots,
            attach=attach,
            extra_dirs=[extracts.extracts_root(request.data_dir), request.output.parent, request.workdir],
        )
    except duckdb.Error as exc:
        raise ExtractError(f"cannot open the attached files: {first_lines(str(exc))}") from None
    try:
        try:
            shape = con.execute(f"DESCRIBE {query}").fetchall()
            if request.query_mode is QueryMode.REMOTE:
                count = con.execute(f"SELECT count(*) FROM ({query})").fetchone()
                return ExtractResult(int(count[0]) if count else 0, [[r[0], r[1]] for r in shape], view_sql=query)
            copied = con.execute(
                f"COPY ({query}) TO {sql_string(str(request.output))} (FORMAT parquet, COMPRESSION zstd)"
            ).fetchone()
        except duckdb.Error as exc:
            raise ExtractError(f"the query failed: {first_lines(str(exc))}") from None
        return ExtractResult(int(copied[0]) if copied else 0, [[r[0], r[1]] for r in shape])
    finally:
        con.close()


CONNECTOR = Connector(
    type="sql",
    label="SQL (DuckDB)",
    description="A DuckDB query over registered tables or attached DuckDB files, run on the table's schedule.",
    options=(
        Option(
            "query",
            "Query",
            kind="text",
            required=True,
            help="One SELECT; registered tables are available by their id.",
        ),
        Option(
            "attach", "Attach DuckDB files", kind="map", help="One 'alias = /path/file.duckdb' per line (read-only)."
        ),
    ),
    query_modes=(QueryMode.MATERIALIZED, QueryMode.REMOTE),
    validate_spec=_validate,
    extract=extract,
    check_mode=_check_mode,
)
