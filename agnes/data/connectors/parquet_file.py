"""Parquet files by path (globs allowed) or URL."""

from __future__ import annotations

from agnes.data.connectors import Connector, ExtractRequest, ExtractResult
from agnes.data.connectors import _files as files
from agnes.data.modes import QueryMode


def extract(request: ExtractRequest) -> ExtractResult:
    paths = files.resolve_location(request, ".parquet")
    source = f"read_parquet({files.sql_paths(paths)})"
    return files.write_table(request, source, request.spec.get("rename"), files.display_location(request.spec))


CONNECTOR = Connector(
    type="parquet",
    label="Parquet file",
    description="A parquet file (or a glob of them) on the server, or one at an http(s) URL.",
    options=(files.LOCATION, files.RENAME),
    query_modes=(QueryMode.LOCAL, QueryMode.REMOTE),
    validate_spec=files.validate_location,
    extract=extract,
    check_mode=files.check_mode,
)
