"""PostgreSQL tables or queries, streamed in batches into parquet (psycopg, server-side cursor).

The DSN is a secret: the registry stores only the *name* of an environment variable
(``dsn_env``), whose value comes from the process environment or ``state/.env_overlay``.
Error messages never include the DSN.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agnes.audit import redact_text
from agnes.config import SETTINGS_BY_NAME
from agnes.data.connectors import Connector, ExtractError, ExtractRequest, ExtractResult, Option
from agnes.data.modes import QueryMode
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
    if mode is QueryMode.LOCAL and spec.get("query"):
        raise Invalid(
            "invalid_query_mode", "A query is materialized; use query mode 'materialized'.", field="query_mode"
        )
    if mode is QueryMode.MATERIALIZED and spec.get("table"):
        raise Invalid("invalid_query_mode", "A table is copied as is; use query mode 'local'.", field="query_mode")


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
    query_modes=(QueryMode.LOCAL, QueryMode.MATERIALIZED),
    validate_spec=_validate,
    extract=extract,
    check_mode=_check_mode,
)
