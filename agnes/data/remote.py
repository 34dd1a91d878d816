"""Querying tables where they live: SQL checked with sqlglot, pushed to the source or run on the
server's DuckDB; samples, scan estimates and streamed snapshots of remote tables.

Rules every statement passes before anything reaches a source (:func:`check_query`):

* one ``SELECT`` (``WITH``, ``UNION`` ...) statement: a second statement, DDL/DML, ``COPY``,
  ``SELECT ... INTO``, locking clauses and parameters are refused (400 ``query_refused``);
* functions that read files, reach the network or other databases, run SQL text, sleep, or read
  or change server settings are refused by name (:data:`DENIED_FUNCTIONS`, :data:`DENIED_PREFIXES`),
  and so are table functions in ``FROM``;
* system catalogs (``pg_catalog``, ``information_schema``, ``pg_*``, ``duckdb_*``) are refused;
* every other table is named by its Agnes id and must be granted to the caller (403 naming it).

Where it runs (:func:`run_query`): when every table is a remote table of one source, the whole
statement is transpiled to the source's dialect and run there (:class:`agnes.data.sources.RemoteSource`),
after the source's ``EXPLAIN`` says it reads at most ``AGNES_REMOTE_MAX_SCAN_BYTES``. Local tables
are read from the server's parquet through ``analytics/server.duckdb``. A statement mixing them
fetches each remote table's needed columns with the filters that concern only it, at the source,
and joins on the server.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from flask import current_app
from sqlglot import exp
from sqlglot.errors import ParseError

from agnes.access import Principal, ResourceType, can_access, require_access
from agnes.data import data_dir, extracts, locations, orchestrator, secrets_env, table_index
from agnes.data.connectors import connectors
from agnes.data.modes import QueryMode
from agnes.data.sources import RemoteSource, ScanEstimate
from agnes.errors import AppError, Forbidden, Invalid, NotFound
from agnes.models.tables import TableEntry

# Rows an answer holds by default and at most (``limit``).
DEFAULT_ROWS = 1_000
MAX_ROWS = 100_000
# Rows a sample holds by default and at most.
SAMPLE_ROWS = 10
SAMPLE_MAX = 100
# Rows fetched from the source for one remote table of a statement that joins it on the server.
JOIN_FETCH_MAX = 1_000_000
# Parquet (zstd) bytes per byte of the source's row width; measured by bench/remote.py on mixed
# integer, timestamp, numeric and text columns (0.38), rounded up: the estimate should not surprise.
PARQUET_RATIO = 0.45
# The first bytes of every parquet file.
PARQUET_MAGIC = b"PAR1"
# sqlglot dialect of statements sent to /api/query unless the body names another.
QUERY_DIALECT = "duckdb"

# Functions no statement may call: files, network, other databases, SQL text, sleeping, settings.
DENIED_FUNCTIONS = frozenset(
    {
        "copy",
        "current_setting",
        "set_config",
        "getenv",
        "glob",
        "query",
        "query_table",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "iceberg_scan",
        "delta_scan",
        "sniff_csv",
        "load_extension",
        "install",
        "load",
        "bigquery_query",
        "which_secret",
        "txid_current",
    }
)
DENIED_PREFIXES = (
    "pg_",
    "lo_",
    "dblink",
    "read_",
    "file_",
    "http",
    "s3",
    "gcs",
    "azure",
    "sqlite_",
    "duckdb_",
    "pragma_",
    "postgres_",
    "mysql_",
    "query_to_",
    "cursor_to_",
    "table_to_",
    "schema_to_",
    "database_to_",
)
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast", "system", "temp"})
SYSTEM_PREFIXES = ("pg_", "duckdb_", "sqlite_", "pragma_")
# Node types that change data or the session, wherever they appear in a statement.
_REFUSED_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        "DML",
        "DDL",
        "Insert",
        "Update",
        "Delete",
        "Merge",
        "Create",
        "Drop",
        "Alter",
        "Copy",
        "Command",
        "Set",
        "Pragma",
        "Use",
        "Transaction",
        "Commit",
        "Rollback",
        "Into",
        "Lock",
        "Describe",
        "Attach",
        "Detach",
        "Install",
        "LoadData",
        "Placeholder",
        "Parameter",
        "Grant",
        "Revoke",
        "Analyze",
        "Summarize",
        "Refresh",
    )
    if isinstance(getattr(exp, name, None), type)
)


def refused(reason: str, field: str = "sql") -> Invalid:
    return Invalid("query_refused", reason, field=field)


def _parse(text: str, dialect: str, field: str) -> list[exp.Expression | None]:
    try:
        return sqlglot.parse(text, read=dialect)
    except (ParseError, sqlglot.errors.TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise Invalid("invalid_sql", f"The SQL does not parse ({dialect}): {first[:300]}", field=field) from None


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _check_nodes(tree: exp.Expression, field: str) -> None:
    """Refuse statements that write, change the session or reach beyond tables (see the module doc)."""
    for node in tree.walk():
        if isinstance(node, _REFUSED_NODES):
            kind = node.key.upper()
            raise refused(f"Only one read-only SELECT statement is allowed ({kind} is not).", field)
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            raise refused(f"Call functions without a schema ({node.sql()[:80]}).", field)
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
                raise refused(
                    f"The function {name}() is not allowed: it reaches files, the network, settings or"
                    " other databases.",
                    field,
                )


def check_query(sql: Any, dialect: str = QUERY_DIALECT) -> exp.Query:
    """Parse ``sql`` (one statement in ``dialect``) and apply the rules of the module doc, except grants.

    Returns the statement. Raises Invalid: ``invalid_sql`` (does not parse), ``query_refused``.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise Invalid("sql_required", "Send the SQL as a non-empty string.", field="sql")
    statements = [s for s in _parse(sql, dialect, "sql") if s is not None]
    if len(statements) != 1:
        raise refused("Only one SELECT statement is allowed (found several).")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise refused(f"Only SELECT statements are allowed ({tree.key.upper()} is not).")
    _check_nodes(tree, "sql")
    return tree


@dataclass(frozen=True)
class TableRef:
    """A table a statement names: its Agnes id and the sqlglot nodes naming it."""

    table_id: str
    nodes: list[exp.Table] = field(default_factory=list)


def named_tables(tree: exp.Expression) -> dict[str, TableRef]:
    """Tables the statement reads (CTE names left out), by id. Raises Invalid for system catalogs,
    table functions and names qualified with a schema."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: dict[str, TableRef] = {}
    for node in tree.find_all(exp.Table):
        if not isinstance(node.this, exp.Identifier):
            raise refused("Table functions are not allowed in FROM; name tables by their id.")
        name = node.name.lower()
        schema = (node.db or "").lower()
        if schema in SYSTEM_SCHEMAS or name.startswith(SYSTEM_PREFIXES) or name in SYSTEM_SCHEMAS:
            raise refused(f"System catalogs are not allowed ({node.sql()}).")
        if node.catalog or schema:
            raise refused(f"Name tables by their Agnes id, without a schema ({node.sql()}).")
        if name in ctes:
            continue
        if not extracts.TABLE_ID_RE.match(name):
            raise refused(f"{node.name!r} is not a table id (files and paths cannot be read).")
        found.setdefault(name, TableRef(name)).nodes.append(node)
    return found


def granted_entries(principal: Principal, names: list[str]) -> dict[str, TableEntry]:
    """The registry entries of ``names``. Raises Forbidden naming the first table the caller may not
    read (unknown tables too, so the answer does not say which ones exist), NotFound for admins."""
    index = table_index.current()
    entries: dict[str, TableEntry] = {}
    for name in names:
        entry = index.tables.get(name)
        if entry is None and principal.is_admin:
            raise NotFound("table_not_found", f"No table '{name}' (see agnes catalog).")
        if entry is None or not can_access(principal, ResourceType.TABLE, name):
            raise Forbidden("access_denied", f"Access denied to table '{name}': none of your groups is granted it.")
        entries[name] = entry
    return entries


def remote_source(entry: TableEntry) -> RemoteSource | None:
    """The source answering for a table kept at its source; None for tables the server holds."""
    if entry.query_mode != QueryMode.REMOTE:
        return None
    connector = connectors().get(entry.source_type)
    if connector is None or connector.remote is None:
        return None
    return connector.remote(entry.source_spec, secrets_env())


def _setting(name: str) -> Any:
    return current_app.config[name]


def check_scan(source: RemoteSource, sql: str, *, limit_bytes: int | None = None) -> ScanEstimate:
    """The source's estimate for ``sql``; raises Invalid ``remote_scan_too_large`` above the limit."""
    estimate = source.estimate(sql)
    cap = int(limit_bytes if limit_bytes is not None else _setting("AGNES_REMOTE_MAX_SCAN_BYTES"))
    if cap and estimate.bytes_scanned > cap:
        raise Invalid(
            "remote_scan_too_large",
            f"The source estimates this reads {human_bytes(estimate.bytes_scanned)}, above the limit of"
            f" {human_bytes(cap)} (AGNES_REMOTE_MAX_SCAN_BYTES). Filter on an indexed column, select fewer"
            " rows, or take a snapshot of a slice (agnes snapshot create --estimate).",
            field="sql",
        )
    return estimate


def human_bytes(num: float) -> str:
    """``1.5 GB`` (decimal units, as docs/data.md uses)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if num < 1000 or unit == "TB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1000
    return f"{num:.1f} TB"


# -- answers --------------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A cell as JSON: ISO 8601 times, decimals as strings (no precision lost), bytes as base64."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


@dataclass
class Answer:
    """Rows of a query or sample: ``columns`` ``[{name, type}]``, ``rows`` (lists of JSON values)."""

    columns: list[dict[str, str]]
    rows: list[list[Any]]
    truncated: bool
    limit: int
    ran_at: str  # "source", "server" or "source+server"
    source_sql: list[str] = field(default_factory=list)
    estimate: ScanEstimate | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "limit": self.limit,
            "ran_at": self.ran_at,
        }
        if self.source_sql:
            body["source_sql"] = self.source_sql
        if self.estimate is not None:
            body["estimate"] = {"rows": self.estimate.rows, "bytes_scanned": self.estimate.bytes_scanned}
        return body


def _arrow_answer(table: Any, limit: int) -> tuple[list[dict[str, str]], list[list[Any]], bool]:
    columns = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    truncated = table.num_rows > limit
    table = table.slice(0, limit)
    names = table.column_names
    rows = [[json_value(row[n]) for n in names] for row in table.to_pylist()] if names else []
    return columns, rows, truncated


def _collect(source: RemoteSource, sql: str, *, max_rows: int, timeout_s: float) -> Any:
    """At most ``max_rows + 1`` rows of ``sql`` at the source, as an Arrow table (the +1 tells truncation)."""
    import pyarrow as pa

    batches = []
    count = 0
    with source.stream(sql, timeout_s=timeout_s) as stream:
        reading = iter(stream)
        try:
            for batch in reading:
                batches.append(batch)
                count += batch.num_rows
                if count > max_rows:
                    break
        finally:
            reading.close()  # stops the reader before the connection closes
        return pa.Table.from_batches(batches, schema=stream.schema)


def _limit_rows(limit: Any) -> int:
    if limit is None:
        return DEFAULT_ROWS
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_ROWS:
        raise Invalid("invalid_limit", f"limit must be a whole number from 1 to {MAX_ROWS:,}.", field="limit")
    return limit


def run_query(principal: Principal, sql: Any, limit: Any = None, dialect: Any = None) -> Answer:
    """Check ``sql``, then run it where its tables live (module doc). ``limit``: rows returned (default
    1,000, max 100,000); one more is read to say whether it was truncated.

    Raises:
        Invalid: bad SQL or limit, a refused statement, ``remote_scan_too_large``.
        Forbidden: a table not granted to the caller (named).
        RemoteError: the source failed (502), timed out (504) or rejected the SQL (400).
    """
    rows = _limit_rows(limit)
    read = dialect or QUERY_DIALECT
    if not isinstance(read, str) or read not in sqlglot.Dialect.classes:
        raise Invalid("invalid_dialect", f"Unknown SQL dialect {read!r}.", field="dialect")
    tree = check_query(sql, read)
    refs = named_tables(tree)
    entries = granted_entries(principal, sorted(refs))
    sources = {name: remote_source(entry) for name, entry in entries.items()}
    remote = {name: src for name, src in sources.items() if src is not None}
    timeout = float(_setting("AGNES_REMOTE_STATEMENT_TIMEOUT"))
    if remote and len(remote) == len(entries) and len({s.key for s in remote.values()}) == 1:
        source = next(iter(remote.values()))
        statement = tree.copy()
        for node in statement.find_all(exp.Table):
            found = remote.get(node.name.lower())
            if found is not None and not node.db:
                _point_at(node, found.relation())
        wrapped = exp.select("*").from_(statement.subquery("agnes_result")).limit(rows + 1)
        source_sql = wrapped.sql(dialect=source.dialect)
        estimate = check_scan(source, source_sql)
        table = _collect(source, source_sql, max_rows=rows, timeout_s=timeout)
        columns, values, truncated = _arrow_answer(table, rows)
        return Answer(columns, values, truncated, rows, "source", [source_sql], estimate)
    return _run_on_server(tree, remote, rows, timeout)


def _point_at(node: exp.Table, relation: exp.Table) -> None:
    """Make ``node`` name ``relation`` at the source, keeping the name the statement uses as alias."""
    alias = node.alias or node.name
    node.set("this", relation.this.copy())
    node.set("db", relation.args.get("db").copy() if relation.args.get("db") else None)
    node.set("catalog", relation.args.get("catalog").copy() if relation.args.get("catalog") else None)
    node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))


def _pushed_filters(node: exp.Table, columns: set[str], others: set[str]) -> list[exp.Expression]:
    """Conjuncts of the WHERE clause around ``node`` that read only its table and may run before the
    join (not on the null-supplying side of an outer join; no subqueries, aggregates or windows)."""
    select = node.find_ancestor(exp.Select)
    if select is None or not select.args.get("where"):
        return []
    joins = select.args.get("joins") or []
    if any(j.side in ("RIGHT", "FULL") for j in joins):
        return []
    join = node.find_ancestor(exp.Join)
    if join is not None and join.find_ancestor(exp.Select) is select and join.side == "LEFT":
        return []
    name = (node.alias or node.name).lower()
    condition = select.args["where"].this
    pushed = []
    for part in condition.flatten() if isinstance(condition, exp.And) else [condition]:
        if part.find(exp.Select, exp.Subquery, exp.AggFunc, exp.Window):
            continue
        cols = list(part.find_all(exp.Column))
        if cols and all(
            c.table.lower() == name or (not c.table and c.name.lower() in columns and c.name.lower() not in others)
            for c in cols
        ):
            pushed.append(part.copy())
    return pushed


def _columns_of(table_id: str) -> set[str]:
    state = table_index.current().states.get(table_id)
    return {c[0].lower() for c in (state.columns if state else [])}


def _run_on_server(
    tree: exp.Query,
    remote: dict[str, RemoteSource],
    rows: int,
    timeout: float,
) -> Answer:
    """Run on the server's DuckDB over the master views; each remote table is fetched first (the
    columns the statement uses and the filters that read only it, at the source) and registered as
    an Arrow table under the name the statement uses."""
    import duckdb

    statement = tree.copy()
    refs = named_tables(statement)
    fetched: dict[str, Any] = {}
    source_sql: list[str] = []
    star = statement.find(exp.Star) is not None
    for name, source in sorted(remote.items()):
        columns = _columns_of(name)
        others: set[str] = set()
        for other in refs:
            if other != name:
                others |= _columns_of(other)
        used = columns if star else {c.name.lower() for c in statement.find_all(exp.Column)} & columns
        nodes = refs[name].nodes
        alias = (nodes[0].alias or nodes[0].name) if len(nodes) == 1 else name
        query = exp.select(*(sorted(used) or ["*"])).from_(source.relation().as_(alias))
        if len(nodes) == 1:  # a table read twice (a self-join) gets each reference's rows
            for condition in _pushed_filters(nodes[0], columns, others):
                query = query.where(condition, copy=False)
        text = query.limit(JOIN_FETCH_MAX + 1).sql(dialect=source.dialect)
        check_scan(source, text)
        table = _collect(source, text, max_rows=JOIN_FETCH_MAX, timeout_s=timeout)
        if table.num_rows > JOIN_FETCH_MAX:
            raise Invalid(
                "remote_scan_too_large",
                f"Joining '{name}' on the server would fetch over {JOIN_FETCH_MAX:,} of its rows; filter it"
                " on its own columns, or take a snapshot of a slice (agnes snapshot create).",
                field="sql",
            )
        fetched[name] = table
        source_sql.append(text)
        for node in nodes:
            node.set("alias", exp.TableAlias(this=exp.to_identifier(node.alias or node.name)))
            node.set("this", exp.to_identifier(f"__remote_{name}"))
    analytics = orchestrator.analytics_path(data_dir())
    attach = {"analytics": str(analytics)} if analytics.is_file() else {}
    # Master views read the published parquet files: those, and nothing else, are readable.
    con = locations.restricted_connection(
        data_dir=data_dir(), roots=[], attach=attach, extra_dirs=[extracts.extracts_root(data_dir())]
    )
    try:
        for name, table in fetched.items():
            con.register(f"__remote_{name}", table)
        wrapped = exp.select("*").from_(statement.subquery("agnes_result")).limit(rows + 1)
        try:
            table = con.sql(wrapped.sql(dialect="duckdb")).to_arrow_table()
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0][:300]
            if "does not exist" in message:
                message += " (a table that has never synced has nothing to read yet)"
            raise Invalid("query_failed", message, field="sql") from None
    finally:
        con.close()
    columns, values, truncated = _arrow_answer(table, rows)
    return Answer(columns, values, truncated, rows, "source+server" if remote else "server", source_sql)


# -- samples, schemas, scans ---------------------------------------------------------------------


def _entry(table_id: str) -> TableEntry:
    entry = table_index.current().tables.get(table_id)
    if entry is None:
        raise NotFound("table_not_found", f"No table '{table_id}'.")
    return entry


def table_schema(table_id: str) -> dict[str, Any]:
    """What the registry and the last sync know of a table; no scan anywhere.

    ``{table, name, description, query_mode, source_type, dialect, relation, rows, rows_estimated,
    size_bytes, updated, columns: [{name, type}]}``; ``dialect`` is the sqlglot dialect of
    ``--where`` filters (the source's for remote tables, ``duckdb`` otherwise).
    """
    entry = _entry(table_id)
    state = table_index.current().states.get(table_id)
    source = remote_source(entry)
    return {
        "table": table_id,
        "name": entry.name,
        "description": entry.description,
        "query_mode": entry.query_mode,
        "source_type": entry.source_type,
        "dialect": source.dialect if source else "duckdb",
        "relation": str(entry.source_spec.get("table") or "") if source else None,
        "rows": state.rows if state else None,
        "rows_estimated": source is not None,
        "size_bytes": state.size_bytes if state else None,
        "updated": state.last_success.isoformat() + "Z" if state and state.last_success else None,
        "columns": [{"name": c[0], "type": c[1]} for c in (state.columns if state else [])],
    }


def sample(table_id: str, n: Any = None) -> Answer:
    """At most ``n`` rows (default 10, max 100) of a table: at the source for remote tables
    (``TABLESAMPLE SYSTEM`` sized from the row estimate where supported, else ``LIMIT``)."""
    count = SAMPLE_ROWS if n in (None, "") else n
    try:
        count = int(count)
    except (TypeError, ValueError):
        raise Invalid("invalid_n", f"n must be a whole number from 1 to {SAMPLE_MAX}.", field="n") from None
    if not 1 <= count <= SAMPLE_MAX:
        raise Invalid("invalid_n", f"n must be a whole number from 1 to {SAMPLE_MAX}.", field="n")
    entry = _entry(table_id)
    source = remote_source(entry)
    timeout = float(_setting("AGNES_REMOTE_STATEMENT_TIMEOUT"))
    if source is None:
        statement = exp.select("*").from_(exp.to_table(table_id, dialect="duckdb")).limit(count)
        return _run_on_server(statement, {}, count, timeout)
    state = table_index.current().states.get(table_id)
    estimate = state.rows if state and state.rows else 0
    plain = exp.select("*").from_(source.relation()).limit(count)
    sent = []
    table = None
    if source.supports_tablesample and estimate > 20 * count:
        percent = min(100.0, max(0.0001, 100.0 * 20 * count / estimate))
        relation = source.relation()
        relation.set("sample", exp.TableSample(method=exp.var("SYSTEM"), percent=exp.Literal.number(f"{percent:.4f}")))
        sampled = exp.select("*").from_(relation)
        text = sampled.limit(count).sql(dialect=source.dialect)
        sent.append(text)
        table = _collect(source, text, max_rows=count, timeout_s=timeout)
    if table is None or table.num_rows < count:
        text = plain.sql(dialect=source.dialect)
        sent.append(text)
        table = _collect(source, text, max_rows=count, timeout_s=timeout)
    columns, values, _ = _arrow_answer(table, count)
    return Answer(columns, values, False, count, "source", sent)


# -- snapshots: a filtered slice of a remote table, estimated or streamed as parquet ---------------

# Node types a --where filter is made of at its top (a boolean expression).
_BOOLEAN_ROOTS = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Column, exp.Func)
_NOT_BOOLEAN = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.DPipe, exp.Literal, exp.Cast)


@dataclass(frozen=True)
class Scan:
    """A checked snapshot request: the statement for the source and what it was built from."""

    table_id: str
    source: RemoteSource
    statement: exp.Select
    select: list[str]
    where: str | None
    limit: int | None
    order_by: str | None

    @property
    def sql(self) -> str:
        return self.statement.sql(dialect=self.source.dialect)


def _column_names(table_id: str) -> dict[str, str]:
    """``{lower-case name: name}`` of a table's columns (as its last sync read them)."""
    state = table_index.current().states.get(table_id)
    return {c[0].lower(): c[0] for c in (state.columns if state else [])}


def _known_column(column: exp.Column, table_id: str, names: dict[str, str], field: str) -> str:
    if column.table and column.table.lower() != table_id:
        raise refused(f"Only columns of '{table_id}' may be used ({column.sql()}).", field)
    found = names.get(column.name.lower())
    if found is None:
        raise Invalid("unknown_column", f"'{table_id}' has no column {column.name!r}.", field=field)
    return found


def check_where(text: str, table_id: str, names: dict[str, str], dialect: str) -> exp.Expression:
    """A ``--where`` filter parsed in the source's ``dialect``: one boolean expression over the
    table's own columns (no subqueries, no other tables, no denied functions). Returns it with
    columns unqualified. Raises Invalid (``invalid_sql``, ``query_refused``, ``unknown_column``)."""
    parsed = [s for s in _parse(text, dialect, "where") if s is not None]
    if len(parsed) != 1:
        raise refused("The filter must be one boolean expression (found several statements).", "where")
    condition = parsed[0]
    inner = condition.unnest() if isinstance(condition, exp.Paren) else condition
    if isinstance(condition, exp.Query) or isinstance(inner, exp.Query):
        raise refused("The filter must be a boolean expression, not a statement.", "where")
    if not isinstance(inner, _BOOLEAN_ROOTS) or isinstance(inner, _NOT_BOOLEAN):
        raise refused("The filter must be a boolean expression (a comparison, IN, LIKE, IS NULL ...).", "where")
    _check_nodes(condition, "where")
    for node in condition.walk():
        if isinstance(node, exp.Select | exp.Subquery | exp.Table | exp.Exists):
            raise refused("The filter may not contain subqueries or other tables.", "where")
        if isinstance(node, exp.Star):
            raise refused("The filter may not contain *.", "where")
    condition = condition.copy()
    for column in list(condition.find_all(exp.Column)):
        name = _known_column(column, table_id, names, "where")
        column.replace(exp.column(name, quoted=True))
    return condition


def _check_order(text: str, table_id: str, names: dict[str, str], dialect: str) -> list[exp.Ordered]:
    parsed = [s for s in _parse(f"SELECT 1 ORDER BY {text}", dialect, "order_by") if s is not None]
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Select):
        raise refused("order_by must be columns with ASC or DESC.", "order_by")
    select = parsed[0]
    extra = {k for k, v in select.args.items() if v and k not in ("expressions", "order")}
    order = select.args.get("order")
    if extra or order is None:
        raise refused("order_by must be columns with ASC or DESC.", "order_by")
    ordered = []
    for item in order.expressions:
        if not isinstance(item.this, exp.Column):
            raise refused("order_by must name columns of the table.", "order_by")
        name = _known_column(item.this, table_id, names, "order_by")
        ordered.append(
            exp.Ordered(
                this=exp.column(name, quoted=True), desc=item.args.get("desc"), nulls_first=item.args.get("nulls_first")
            )
        )
    return ordered


def _text_field(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise Invalid(f"invalid_{key}", f"{key} must be text.", field=key)
    return value.strip()


def build_scan(principal: Principal, body: Any) -> Scan:
    """Check a snapshot request ``{table, select, where, limit, order_by}`` and build its statement.

    ``select``: a list of column names or ``"a,b"`` (default all); ``where``: a boolean filter in
    the source's dialect; ``limit``: rows (≥ 1); ``order_by``: ``"col [ASC|DESC], ..."``.

    Raises:
        Invalid: a field is wrong or refused (``field`` names it); ``not_remote`` for tables the
            server holds (``agnes pull`` fetches those).
        NotFound / Forbidden: the table does not exist / is not granted (see :func:`require_access`).
    """
    if not isinstance(body, Mapping):
        raise Invalid("invalid_body", "Send a JSON object with at least 'table'.", field="table")
    table_id = _text_field(body, "table")
    if not table_id:
        raise Invalid("table_required", "Name the table.", field="table")
    require_access(principal, ResourceType.TABLE, table_id)
    entry = _entry(table_id)
    source = remote_source(entry)
    if source is None:
        raise Invalid(
            "not_remote", f"'{table_id}' is not a remote table: 'agnes pull' fetches it whole.", field="table"
        )
    names = _column_names(table_id)
    if not names:
        raise Invalid("not_synced", f"'{table_id}' has not been synced yet: its columns are unknown.", field="table")
    raw_select = body.get("select")
    if isinstance(raw_select, str):
        raw_select = [part.strip() for part in raw_select.split(",") if part.strip()]
    if raw_select is None:
        raw_select = []
    if not isinstance(raw_select, list) or not all(isinstance(c, str) for c in raw_select):
        raise Invalid("invalid_select", "select must be column names.", field="select")
    select = []
    for name in raw_select:
        found = names.get(name.strip().strip('"').lower())
        if found is None:
            raise Invalid("unknown_column", f"'{table_id}' has no column {name!r}.", field="select")
        select.append(found)
    limit = body.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise Invalid("invalid_limit", "limit must be a whole number of at least 1.", field="limit")
    where = _text_field(body, "where")
    order_by = _text_field(body, "order_by")
    statement = exp.select(*([exp.column(c, quoted=True) for c in select] or [exp.Star()])).from_(source.relation())
    if where:
        statement = statement.where(check_where(where, table_id, names, source.dialect), copy=False)
    if order_by:
        statement = statement.order_by(*_check_order(order_by, table_id, names, source.dialect), copy=False)
    if limit:
        statement = statement.limit(limit, copy=False)
    return Scan(table_id, source, statement, select, where, limit, order_by)


def scan_estimate(scan: Scan) -> dict[str, Any]:
    """The source's estimate of a scan, without fetching: ``{table, sql, rows, bytes_scanned,
    expected_local_bytes, table_rows, table_bytes}`` (bytes; ``expected_local_bytes`` is the
    parquet a snapshot would write, from the rows and their width)."""
    estimate = scan.source.estimate(scan.sql)
    rows = min(estimate.rows, scan.limit) if scan.limit else estimate.rows
    state = table_index.current().states.get(scan.table_id)
    return {
        "table": scan.table_id,
        "sql": scan.sql,
        "rows": rows,
        "bytes_scanned": estimate.bytes_scanned,
        "expected_local_bytes": int(rows * estimate.row_width * PARQUET_RATIO),
        "table_rows": state.rows if state else None,
        "table_bytes": state.size_bytes if state else None,
    }


class _Sink:
    """A write-only file for ``pyarrow.parquet.ParquetWriter`` whose bytes are taken as they come."""

    def __init__(self, already_sent: int = 0) -> None:
        self.parts: list[bytes] = []
        self.position = 0
        self.closed = False
        self._skip = already_sent  # leading bytes the caller sent itself (the parquet magic)

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        size = len(chunk)
        if self._skip:
            dropped = min(self._skip, size)
            chunk, self._skip = chunk[dropped:], self._skip - dropped
        self.parts.append(chunk)
        self.position += size
        return size

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        return data


def dictionary_columns(batch: Any, sample_rows: int = 10_000) -> list[str]:
    """Columns worth dictionary encoding: fewer distinct values than half the rows in a sample of
    ``batch``. Dictionary attempts on unique values (ids, hashes, free text) cost time and make the
    file larger before parquet falls back to plain encoding (a third larger on bench/remote.py's table)."""
    import pyarrow.compute as pc

    chosen = []
    head = batch.slice(0, sample_rows)
    for index, fld in enumerate(head.schema):
        column = head.column(index)
        if len(column) and pc.count_distinct(column, mode="all").as_py() < len(column) / 2:
            chosen.append(fld.name)
    return chosen


def stream_scan(scan: Scan) -> Iterable[bytes]:
    """Run the scan at the source and yield a parquet file (zstd) in pieces, one row group per
    record batch, so memory stays constant whatever the size (about 80 MB over the process's own
    on bench/remote.py: Arrow's system allocator returns freed batches at once). The statement
    starts (and errors such as a missing relation surface) before the first piece; a failure later
    ends the stream without the parquet footer, which the client detects.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    timeout = float(_setting("AGNES_REMOTE_SNAPSHOT_TIMEOUT"))
    context = scan.source.stream(scan.sql, timeout_s=timeout)
    stream = context.__enter__()

    def pieces() -> Iterator[bytes]:
        # The magic goes out at once, so the response (and the client's first progress line) starts
        # while the source is still producing the first batch; the writer's own copy is dropped.
        sink = _Sink(already_sent=len(PARQUET_MAGIC))
        reading = iter(stream)
        writer = None
        try:
            yield PARQUET_MAGIC
            for batch in reading:
                if writer is None:
                    writer = pq.ParquetWriter(
                        pa.PythonFile(sink, mode="w"),
                        stream.schema,
                        compression="zstd",
                        use_dictionary=dictionary_columns(batch),
                        memory_pool=pa.system_memory_pool(),
                    )
                writer.write_batch(batch)
                yield sink.take()
            if writer is None:  # no rows: a valid file with the columns
                writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), stream.schema, compression="zstd")
            writer.close()
            yield sink.take()
        finally:
            reading.close()  # a client that went away: stop the reader, then close the connection
            release()

    released = []

    def release() -> None:
        if not released:
            released.append(True)
            context.__exit__(None, None, None)

    return _Body(pieces(), release)


class _Body:
    """A response body whose ``close()`` (called by the WSGI server, even before the first piece
    was asked for) ends the statement at the source."""

    def __init__(self, pieces: Iterator[bytes], release: Any) -> None:
        self._pieces = pieces
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces

    def close(self) -> None:
        try:
            self._pieces.close()  # type: ignore[attr-defined]
        finally:
            self._release()


def snapshot_command(table_id: str) -> str:
    """The ``agnes snapshot create`` line a page offers to copy for a remote table: an estimate of a
    recent slice when the table has a date or time column, else of the rows where the first column is set."""
    columns = table_index.current().states.get(table_id)
    listed = columns.columns if columns else []
    timed = next((c[0] for c in listed if any(k in c[1].lower() for k in ("timestamp", "date"))), None)
    since = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    if timed:
        where = f"{timed} >= '{since}'"
    elif listed:
        where = f"{listed[0][0]} IS NOT NULL"
    else:
        where = "..."
    return f'agnes snapshot create {table_id} --where "{where}" --estimate'


def remote_overview(
    table_id: str, *, with_sample: bool = True, sample_rows: int = SAMPLE_ROWS
) -> dict[str, Any] | None:
    """What a table page shows for a table kept at its source (None for other tables):
    ``{relation, dialect, rows_estimate, size_bytes, snapshot_command, sample, sample_error}``; the
    sample (an :class:`Answer` dict) is read at the source, and a failure is reported in
    ``sample_error`` instead of raising, so the page still renders."""
    entry = table_index.current().tables.get(table_id)
    source = remote_source(entry) if entry else None
    if source is None:
        return None
    state = table_index.current().states.get(table_id)
    overview: dict[str, Any] = {
        "relation": str(entry.source_spec.get("table") or ""),
        "dialect": source.dialect,
        "rows_estimate": state.rows if state else None,
        "size_bytes": state.size_bytes if state else None,
        "snapshot_command": snapshot_command(table_id),
        "sample": None,
        "sample_error": None,
    }
    if with_sample and state is not None and state.last_success is not None:
        try:
            overview["sample"] = sample(table_id, sample_rows).to_dict()
        except AppError as exc:
            overview["sample_error"] = exc.message
    return overview
