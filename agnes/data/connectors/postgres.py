"""PostgreSQL tables or queries: copied into parquet (psycopg, server-side cursor), or kept at
the source as remote tables (:class:`PostgresSource`, ADBC).

The DSN is a secret: the registry stores only the *name* of an environment variable
(``dsn_env``), whose value comes from the process environment or ``state/.env_overlay``.
Error messages never include the DSN.

Remote tables are reached with ``adbc-driver-postgresql``: it runs the statement as
``COPY (...) TO STDOUT (FORMAT binary)`` and decodes it into Arrow record batches in C++, so a
snapshot streams in constant memory at close to ``psql``'s own speed (docs/data.md, "Remote
tables", has the measurements). Every remote connection is read-only
(``default_transaction_read_only``) with a statement timeout set at connect time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

from agnes.audit import redact_text
from agnes.config import SETTINGS_BY_NAME
from agnes.data.connectors import Connector, ExtractError, ExtractRequest, ExtractResult, Option
from agnes.data.modes import QueryMode
from agnes.data.sources import BatchStream, Column, RelationInfo, RemoteError, RemoteSource, ScanEstimate
from agnes.errors import Invalid

ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
# Rows fetched per round trip and written per parquet row group.
BATCH_ROWS = 50_000
# Seconds to wait for the database to accept a connection.
CONNECT_TIMEOUT = 15


def _validate(spec: dict[str, Any]) -> dict[str, Any]:

    name = spec["dsn_env"]
    if not ENV_NAME_RE.match(name):
        raise Invalid(
            "invalid_option", "The DSN variable name must look like SALES_PG_DSN (A-Z, 0-9, _).", field="spec.dsn_env"
        )
    if name in SETTINGS_BY_NAME or name.startswith("AGNES_"):
        raise Invalid("invalid_option", f"{name} is an Agnes setting, not a DSN variable.", field="spec.dsn_env")
    if bool(spec.get("table")) == bool(spec.get("query")):
        raise Invalid("invalid_option", "Give either a table or a query.", field="spec.table")
    if spec.get("table") and not TABLE_RE.match(spec["table"]):
        raise Invalid("invalid_option", "Table must be 'name' or 'schema.name'.", field="spec.table")
    if spec.get("query"):
        spec["query"] = spec["query"].strip().rstrip(";").strip()
    return spec


def _arrow_type(type_name: str, precision: int | None, scale: int | None) -> Any:
    import pyarrow as pa

    simple = {
        "int2": pa.int16(),
        "int4": pa.int32(),
        "int8": pa.int64(),
        "oid": pa.int64(),
        "float4": pa.float32(),
        "float8": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "time": pa.time64("us"),
        "bytea": pa.binary(),
        "interval": pa.duration("us"),
    }
    if type_name in simple:
        return simple[type_name]
    if type_name == "numeric":
        if precision and precision <= 38:
            return pa.decimal128(precision, scale or 0)
        return pa.float64()
    return pa.string()


def _converter(type_name: str, arrow_type: Any) -> Any:
    import pyarrow as pa

    if type_name in ("json", "jsonb"):
        return lambda v: None if v is None else json.dumps(v, default=str)
    if type_name == "numeric" and arrow_type == pa.float64():
        return lambda v: None if v is None else float(v)
    if arrow_type == pa.string():
        return lambda v: v if v is None or isinstance(v, str) else str(v)
    return None


def _safe(message: str, dsn: str, password: str | None = None) -> str:

    text = str(message).replace(dsn, "[dsn]") if dsn else str(message)
    if password:
        text = text.replace(password, "[redacted]")
    return redact_text(" ".join(text.split()))[:500]


def extract(request: ExtractRequest) -> ExtractResult:
    if request.query_mode is QueryMode.REMOTE:
        return _catalog_only(request)
    import psycopg
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = request.spec
    env_name = str(spec["dsn_env"])
    dsn = request.env.get(env_name, "")
    if not dsn:
        raise ExtractError(f"the DSN variable {env_name} is not set (add it to the environment or the env overlay)")
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        # libpq quotes the part it could not parse, which can be the password: say only where.
        raise ExtractError(
            f"PostgreSQL ({env_name}): the connection string in {env_name} is malformed"
            " (not shown, it may hold a password)"
        ) from None
    if spec.get("table"):
        table = ".".join(f'"{part}"' for part in str(spec["table"]).split("."))
        query = f"SELECT * FROM {table}"
    else:
        query = str(spec["query"])
    try:
        with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, application_name="agnes-extract") as conn:
            conn.read_only = True
            with conn.cursor(name="agnes_extract") as cur:
                cur.itersize = BATCH_ROWS
                cur.execute(query)
                description = cur.description or []
                names = [col.name for col in description]
                types = []
                for col in description:
                    info = conn.adapters.types.get(col.type_code)
                    types.append(info.name if info else "text")
                arrow_types = [_arrow_type(t, c.precision, c.scale) for t, c in zip(types, description, strict=True)]
                converters = [_converter(t, a) for t, a in zip(types, arrow_types, strict=True)]
                schema = pa.schema([pa.field(n, t) for n, t in zip(names, arrow_types, strict=True)])
                total = 0
                with pq.ParquetWriter(str(request.output), schema, compression="zstd") as writer:
                    while True:
                        batch = cur.fetchmany(BATCH_ROWS)
                        if not batch:
                            break
                        arrays = []
                        for index, arrow_type in enumerate(arrow_types):
                            values = [row[index] for row in batch]
                            convert = converters[index]
                            if convert is not None:
                                values = [convert(v) for v in values]
                            arrays.append(pa.array(values, type=arrow_type))
                        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                        total += len(batch)
    except psycopg.Error as exc:
        raise ExtractError(f"PostgreSQL ({env_name}): {_safe(str(exc), dsn, password)}") from None
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise ExtractError(
            f"PostgreSQL ({env_name}): cannot convert a value: {_safe(str(exc), dsn, password)}"
        ) from None
    columns = [[n, str(t)] for n, t in zip(names, arrow_types, strict=True)]
    return ExtractResult(total, columns)


def _check_mode(spec: Any, mode: QueryMode) -> None:
    if mode is QueryMode.REMOTE and spec.get("query"):
        raise Invalid(
            "invalid_query_mode", "A remote table is a table or view at the source, not a query.", field="query_mode"
        )
    if mode is QueryMode.LOCAL and spec.get("query"):
        raise Invalid(
            "invalid_query_mode", "A query is materialized; use query mode 'materialized'.", field="query_mode"
        )
    if mode is QueryMode.MATERIALIZED and spec.get("table"):
        raise Invalid("invalid_query_mode", "A table is copied as is; use query mode 'local'.", field="query_mode")


# -- remote tables ------------------------------------------------------------------------------

# Bytes of Arrow data ADBC decodes per record batch (one parquet row group of a snapshot). bench/remote.py:
# 16 MB batches with 2 waiting peaked the web worker at 366 MB; 4 MB with 1 waiting at about 270 MB,
# no slower.
BATCH_BYTES = 16 << 20
# Decoded batches waiting for the consumer (memory: PREFETCH + 2 batches of BATCH_BYTES).
PREFETCH = 1
# Seconds the catalog and EXPLAIN statements may run.
CATALOG_TIMEOUT = 15.0
# Plan nodes that read all of their input before returning a row: a LIMIT above them does not
# shorten the scans below.
_BLOCKING_NODES = frozenset({"Sort", "Aggregate", "Hash", "Materialize", "SetOp", "WindowAgg", "Incremental Sort"})
_SEQUENTIAL_SCANS = frozenset({"Seq Scan", "Sample Scan", "Tid Range Scan"})


def _adbc_error(exc: Exception, env_name: str, dsn: str, password: str | None) -> RemoteError:
    text = _safe(str(exc), dsn, password)
    # ADBC prefixes libpq's message with its own status and the statement: keep the server's words.
    if "ERROR:" in text:
        text = text.split("ERROR:", 1)[1].strip()
    text = text.split(". SQLSTATE", 1)[0].strip()
    if "57014" in str(exc) or "statement timeout" in text:
        return RemoteError(
            f"PostgreSQL ({env_name}): the statement ran out of time ({text})", status=504, code="remote_timeout"
        )
    if any(state in str(exc) for state in ("SQLSTATE: 42", "SQLSTATE: 22", "SQLSTATE: 25006")):
        return RemoteError(
            f"PostgreSQL ({env_name}) refused the statement: {text}", status=400, code="remote_sql_error"
        )
    return RemoteError(f"PostgreSQL ({env_name}): {text}")


class _AdbcStream(BatchStream):
    """Record batches of a running statement, decoded on a reader thread one batch ahead of the
    consumer, so fetching from the source overlaps with what the consumer does (encoding parquet):
    both run in C++ without the GIL. At most :data:`PREFETCH` batches wait in between."""

    def __init__(self, reader: Any, on_error: Any) -> None:
        import pyarrow as pa

        self._reader = reader
        self._on_error = on_error
        self._plan = [_plain_type(f) for f in reader.schema]
        self.schema = pa.schema([f for f, _ in self._plan])

    def _convert(self, batch: Any) -> Any:
        import pyarrow as pa

        arrays = []
        for index, (_field, convert) in enumerate(self._plan):
            column = batch.column(index)
            arrays.append(convert(column) if convert else column)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def __iter__(self) -> Iterator[Any]:
        import queue
        import threading

        handoff: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()
        finished = object()

        def offer(item: Any) -> bool:
            while not stop.is_set():
                try:
                    handoff.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            try:
                for batch in self._reader:
                    if not offer(self._convert(batch)):
                        return
                offer(finished)
            except Exception as exc:  # handed to the consumer, raised there as RemoteError
                offer(exc)

        reader = threading.Thread(target=read, name="agnes-remote-read", daemon=True)
        reader.start()
        try:
            while True:
                item = handoff.get()
                if item is finished:
                    return
                if isinstance(item, Exception):
                    raise item if isinstance(item, RemoteError) else self._on_error(item)
                yield item
        finally:
            stop.set()
            # The connection closes after this: let the reader finish the batch it is decoding first.
            reader.join()


def _numeric_type(typmod: int) -> Any:
    import pyarrow as pa

    if typmod >= 4:
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        if 0 < precision <= 38:
            return pa.decimal128(precision, scale)
    return pa.float64()


def _plain_type(fld: Any) -> tuple[Any, Any]:
    """The parquet-friendly field for one ADBC field and the conversion of its arrays (None: as is).

    ``numeric`` arrives as text (an opaque extension type): ``numeric(p,s)`` becomes decimal(p,s),
    unconstrained ``numeric`` a double (as in copied tables); ``uuid`` and ``json`` become text.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    meta = fld.metadata or {}
    if not isinstance(fld.type, pa.BaseExtensionType):
        return fld, None
    storage = fld.type.storage_type
    pg_type = (meta.get(b"POSTGRESQL:type") or b"").decode()
    if pg_type == "numeric":
        target = _numeric_type(int((meta.get(b"POSTGRESQL:typmod") or b"-1").decode() or -1))
        pool = pa.system_memory_pool()  # returns freed memory at once (mimalloc keeps it)
        return pa.field(fld.name, target, fld.nullable, meta), lambda a: pc.cast(a.storage, target, memory_pool=pool)
    if pg_type == "uuid":

        def as_text(array: Any) -> Any:
            raw = array.storage.to_pylist()
            import uuid

            return pa.array([None if v is None else str(uuid.UUID(bytes=v)) for v in raw], pa.string())

        return pa.field(fld.name, pa.string(), fld.nullable, meta), as_text
    return pa.field(fld.name, storage, fld.nullable, meta), lambda a: a.storage


class PostgresSource(RemoteSource):
    """A table or view in a PostgreSQL database, named by the registry's ``table`` option."""

    dialect = "postgres"
    supports_tablesample = True

    def __init__(self, spec: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self.env_name = str(spec["dsn_env"])
        self.table = str(spec.get("table") or "")
        self._dsn = env.get(self.env_name, "")
        self.key = f"postgres:{self.env_name}"

    def relation(self) -> exp.Table:
        parts = self.table.split(".")
        name = exp.to_identifier(parts[-1], quoted=True)
        schema = exp.to_identifier(parts[0], quoted=True) if len(parts) > 1 else None
        return exp.Table(this=name, db=schema)

    def _qualified(self) -> str:
        return self.relation().sql(dialect="postgres")

    def _conninfo(self, timeout_s: float) -> tuple[str, str | None]:
        """The DSN with a statement timeout, read-only transactions and our application name;
        and its password (to scrub from messages). Raises RemoteError."""
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        if not self._dsn:
            raise RemoteError(
                f"the DSN variable {self.env_name} is not set (add it to the environment or the env overlay)"
            )
        try:
            parsed = conninfo_to_dict(self._dsn)
        except psycopg.Error:
            raise RemoteError(
                f"PostgreSQL ({self.env_name}): the connection string is malformed (not shown, it may hold a password)"
            ) from None
        options = " ".join(
            filter(
                None,
                [
                    str(parsed.get("options") or ""),
                    f"-c statement_timeout={max(1, int(timeout_s * 1000))}",
                    "-c default_transaction_read_only=on",
                ],
            )
        )
        conninfo = make_conninfo(
            self._dsn, options=options, application_name="agnes-remote", connect_timeout=CONNECT_TIMEOUT
        )
        return conninfo, parsed.get("password")

    def _error(self, password: str | None) -> Any:
        return lambda exc: _adbc_error(exc, self.env_name, self._dsn, password)

    def _rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A catalog or EXPLAIN statement (psycopg: ADBC runs every statement inside COPY, which
        EXPLAIN cannot be)."""
        import psycopg

        conninfo, password = self._conninfo(CATALOG_TIMEOUT)
        try:
            with psycopg.connect(conninfo) as conn:
                return list(conn.execute(sql, parameters or None).fetchall())
        except psycopg.Error as exc:
            raise self._error(password)(_PsycopgMessage(exc)) from None

    def describe(self) -> RelationInfo:
        qualified = self._qualified()
        found = self._rows(
            "SELECT c.oid::regclass::text, c.reltuples::bigint, pg_total_relation_size(c.oid)"
            " FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (qualified,),
        )
        if not found:
            raise RemoteError(
                f"PostgreSQL ({self.env_name}): no table or view {self.table}", status=404, code="remote_not_found"
            )
        columns = [
            Column(str(n), str(t), bool(nullable))
            for n, t, nullable in self._rows(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull FROM pg_attribute a"
                " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (qualified,),
            )
        ]
        relation, tuples, size = found[0]
        estimate = int(tuples) if tuples is not None and int(tuples) >= 0 else None
        return RelationInfo(str(relation), columns, estimate, int(size or 0))

    def estimate(self, sql: str) -> ScanEstimate:
        rows = self._rows(f"EXPLAIN (FORMAT JSON, VERBOSE) {sql}")
        document = rows[0][0]
        plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
        scans: list[tuple[str, str, float, int]] = []  # (node, relation, fraction, rows x width)

        def walk(node: dict[str, Any], fraction: float) -> None:
            kind = node.get("Node Type", "")
            if kind in _BLOCKING_NODES:
                fraction = 1.0
            children = node.get("Plans") or []
            if kind == "Limit" and children:
                below = float(children[0].get("Plan Rows") or 0)
                fraction = fraction * min(1.0, float(node.get("Plan Rows") or 0) / below) if below else fraction
            if node.get("Relation Name"):
                relation = f'"{node.get("Schema", "public")}"."{node["Relation Name"]}"'
                fetched = int(float(node.get("Plan Rows") or 0) * int(node.get("Plan Width") or 0))
                scans.append((kind, relation, fraction, fetched))
            for child in children:
                walk(child, fraction)

        walk(plan, 1.0)
        sizes: dict[str, int] = {}
        sequential = sorted({r for kind, r, _, _ in scans if kind in _SEQUENTIAL_SCANS})
        if sequential:
            found = self._rows("SELECT r, pg_relation_size(to_regclass(r)) FROM unnest(%s::text[]) AS r", (sequential,))
            sizes = {str(r): int(size or 0) for r, size in found}
        scanned = 0
        for kind, relation, fraction, fetched in scans:
            whole = sizes.get(relation, 0) if kind in _SEQUENTIAL_SCANS else fetched
            scanned += int(whole * fraction)
        return ScanEstimate(
            rows=int(float(plan.get("Plan Rows") or 0)),
            bytes_scanned=scanned,
            row_width=int(plan.get("Plan Width") or 0),
            relations=sorted({r for _, r, _, _ in scans}),
        )

    @contextmanager
    def stream(self, sql: str, *, timeout_s: float) -> Iterator[BatchStream]:
        # adbc_driver_postgresql loads libpq and the driver manager: only streams pay for it.
        import adbc_driver_postgresql.dbapi as adbc

        conninfo, password = self._conninfo(timeout_s)
        error = self._error(password)
        try:
            conn = adbc.connect(conninfo)
        except Exception as exc:
            raise error(exc) from None
        try:
            try:
                cur = conn.cursor()
                cur.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
                cur.execute(sql)
                reader = cur.fetch_record_batch()
            except Exception as exc:
                raise error(exc) from None
            yield _AdbcStream(reader, error)
        finally:
            try:
                conn.close()
            except Exception:  # a connection broken by a timeout may fail to close; nothing to keep
                pass


class _PsycopgMessage(Exception):
    """A psycopg error spelled like ADBC's (``ERROR: ... SQLSTATE: xxxxx``) for :func:`_adbc_error`."""

    def __init__(self, exc: Exception) -> None:
        state = getattr(exc, "sqlstate", None) or ""
        super().__init__(f"ERROR: {exc}. SQLSTATE: {state}" if state else str(exc))


def _catalog_only(request: ExtractRequest) -> ExtractResult:
    """A remote table's sync: the source's catalog (columns, row estimate, size); nothing is copied."""
    try:
        info = PostgresSource(request.spec, request.env).describe()
    except RemoteError as exc:
        raise ExtractError(exc.message) from None
    return ExtractResult(
        info.row_estimate or 0,
        [[c.name, c.type] for c in info.columns],
        source_size_bytes=info.size_bytes,
    )


CONNECTOR = Connector(
    type="postgres",
    label="PostgreSQL",
    description="A table or a query from a PostgreSQL database; the DSN stays in the env overlay.",
    options=(
        Option(
            "dsn_env",
            "DSN variable",
            required=True,
            help="Name of the environment variable (or env-overlay entry) holding the connection string.",
        ),
        Option("table", "Table", help="schema.table to copy."),
        Option("query", "Query", kind="text", help="A SELECT to materialize instead of a table."),
    ),
    query_modes=(QueryMode.LOCAL, QueryMode.MATERIALIZED, QueryMode.REMOTE),
    validate_spec=_validate,
    extract=extract,
    check_mode=_check_mode,
    remote=lambda spec, env: PostgresSource(spec, env),
)
