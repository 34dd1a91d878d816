"""JSON files (an array of objects, or newline-delimited) by path or URL."""

from __future__ import annotations

from agnes.data.connectors import Connector, ExtractRequest, ExtractResult, Option
from agnes.data.connectors import _files as files
from agnes.data.modes import QueryMode


def extract(request: ExtractRequest) -> ExtractResult:
    spec = request.spec
    paths = files.resolve_location(request, ".json")
    args = files.options_sql(
        {
            "format": spec.get("format"),
            "dateformat": spec.get("date_format"),
            "timestampformat": spec.get("timestamp_format"),
        }
    )
    source = f"read_json_auto({files.sql_paths(paths)}{args})"
    return files.write_table(request, source, spec.get("rename"), files.display_location(spec))


CONNECTOR = Connector(
    type="json",
    label="JSON file",
    description="A JSON array of objects or newline-delimited JSON, on the server or at an http(s) URL.",
    options=(
        files.LOCATION,
        Option("format", "Layout", choices=("auto", "array", "newline_delimited"), default="auto"),
        Option("date_format", "Date format", help="strptime format of date strings."),
        Option("timestamp_format", "Timestamp format"),
        files.RENAME,
    ),
    query_modes=(QueryMode.LOCAL, QueryMode.REMOTE),
    validate_spec=files.validate_location,
    extract=extract,
    check_mode=files.check_mode,
)
