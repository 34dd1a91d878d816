"""CSV files by path or URL, with the options real files need (delimiter, NA nulls, dates, renames)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agnes.data.connectors import Connector, ExtractError, ExtractRequest, ExtractResult, Option
from agnes.data.connectors import _files as files
from agnes.data.modes import QueryMode
from agnes.errors import human_message


def extract(request: ExtractRequest) -> ExtractResult:
    spec = request.spec
    paths = files.resolve_location(request, ".csv")
    args = files.options_sql(
        {
            "delim": spec.get("delimiter") or header_delimiter(paths[0], spec),
            "header": spec.get("header", True),
            "nullstr": spec.get("null_strings"),
            "dateformat": spec.get("date_format"),
            "timestampformat": spec.get("timestamp_format"),
            "quote": spec.get("quote"),
            "escape": spec.get("escape"),
            "skip": spec.get("skip_rows"),
            "encoding": spec.get("encoding"),
            "normalize_names": spec.get("normalize_names"),
            "types": spec.get("types"),
            "sample_size": -1,  # sniff types from every row, so a late odd value cannot break the load
        }
    )
    source = f"read_csv({files.sql_paths(paths)}{args})"
    what = files.display_location(spec)
    try:
        result = files.write_table(request, source, spec.get("rename"), what)
    except ExtractError:
        # DuckDB's sniffer error does not say which line is wrong; find it for the admin.
        problem = diagnose(paths, spec)
        if problem:
            raise ExtractError(f"cannot read {what}: {problem}") from None
        raise
    names = [c[0] for c in result.columns]
    expected = header_fields(paths[0], spec) if spec.get("header", True) is not False else None
    if expected is not None and len(names) != expected:
        # The sniffer took another line for the header (a ragged last line of a short file: its
        # fields became the columns and every row was dropped). Name the line instead of "ok, 0 rows".
        request.output.unlink(missing_ok=True)
        problem = diagnose(paths, spec)
        raise ExtractError(
            f"cannot read {what}: {problem or f'the header has {expected} fields but {len(names)} columns were read'}"
        )
    if len(names) == 1 and any(d in names[0] for d in DELIMITERS):
        # The sniffer gave up on the dialect and read each line as one value.
        problem = diagnose(paths, spec)
        request.output.unlink(missing_ok=True)
        raise ExtractError(f"cannot read {what}: {problem or 'could not detect the delimiter; set it'}")
    if result.rows == 0 and _has_data_lines(paths, spec):
        return replace(
            result,
            warning=f"{what} has lines after its header but was read as 0 rows; check its delimiter, quotes and"
            " skip_rows",
        )
    return result


def _has_data_lines(paths: list[str], spec: Mapping[str, Any]) -> bool:
    """True when a local file has a non-empty line besides its first (the header), skipped lines
    included: a file whose every line was skipped still deserves the warning."""
    skip = 0 if spec.get("header", True) is False else 1
    for name in paths[:5]:
        try:
            with open(name, "rb") as fh:
                for index, line in enumerate(fh):
                    if index >= skip and line.strip():
                        return True
                    if index > skip + 1000:
                        break
        except OSError:
            continue
    return False


# Delimiters tried when none is configured.
DELIMITERS = (",", ";", "\t", "|")
# Lines checked when looking for the first malformed row.
DIAGNOSE_LINES = 2_000_000


def header_delimiter(path: str, spec: Mapping[str, Any]) -> str | None:
    """The delimiter most frequent in the header line of the file ``path`` (None: let DuckDB sniff).

    DuckDB's sniffer may settle on a space for files whose values contain spaces
    (``Jan 1 2000``) once one line is malformed; the header line is unambiguous.
    """
    encoding = {"latin-1": "latin-1", "utf-16": "utf-16"}.get(str(spec.get("encoding") or ""), "utf-8")
    try:
        with open(path, encoding=encoding, errors="replace") as fh:
            for _ in range(int(spec.get("skip_rows") or 0)):
                fh.readline()
            first = fh.readline()
    except OSError:
        return None
    best = max(DELIMITERS, key=first.count)
    return best if first.count(best) else None


def header_fields(path: str, spec: Mapping[str, Any]) -> int | None:
    """How many fields the header line of the local file ``path`` has (None when unreadable)."""
    import csv

    encoding = {"latin-1": "latin-1", "utf-16": "utf-16"}.get(str(spec.get("encoding") or ""), "utf-8")
    try:
        with open(path, newline="", encoding=encoding, errors="replace") as fh:
            for _ in range(int(spec.get("skip_rows") or 0)):
                fh.readline()
            first = fh.readline()
    except OSError:
        return None
    if not first.strip():
        return None
    delimiter = spec.get("delimiter") or max(DELIMITERS, key=first.count)
    delimiter = "\t" if delimiter in ("\\t", "tab") else delimiter
    try:
        return len(next(csv.reader([first], delimiter=delimiter, quotechar=spec.get("quote") or '"')))
    except (csv.Error, StopIteration):
        return None


def diagnose(paths: list[str], spec: Mapping[str, Any]) -> str | None:
    """The first line whose field count differs from the header's, as a sentence (None if none)."""
    import csv

    encoding = {"latin-1": "latin-1", "utf-16": "utf-16"}.get(str(spec.get("encoding") or ""), "utf-8")
    skip = int(spec.get("skip_rows") or 0)
    for name in paths[:5]:
        try:
            with open(name, newline="", encoding=encoding, errors="replace") as fh:
                for _ in range(skip):
                    fh.readline()
                first = fh.readline()
                delimiter = spec.get("delimiter") or max(DELIMITERS, key=first.count)
                delimiter = "\t" if delimiter in ("\\t", "tab") else delimiter
                quote = spec.get("quote") or '"'
                expected = len(next(csv.reader([first], delimiter=delimiter, quotechar=quote)))
                reader = csv.reader(fh, delimiter=delimiter, quotechar=quote)
                for index, row in enumerate(reader):
                    if index > DIAGNOSE_LINES:
                        break
                    if row and len(row) != expected:
                        line = skip + 2 + index
                        return f"line {line} has {len(row)} fields where the header has {expected}"
        except (OSError, csv.Error, StopIteration) as exc:
            return human_message(exc)
    return None


def _validate(spec: dict[str, Any]) -> dict[str, Any]:
    return files.validate_location(spec)


CONNECTOR = Connector(
    type="csv",
    label="CSV file",
    description="A CSV file on the server or at an http(s) URL.",
    options=(
        files.LOCATION,
        Option("delimiter", "Delimiter", help="Detected when empty (',', ';', '|', tab)."),
        Option("header", "First row is a header", kind="bool", default=True),
        Option("null_strings", "Null values", kind="list", help="Comma-separated strings read as NULL, e.g. NA,n/a."),
        Option("date_format", "Date format", help="strptime format, e.g. %Y/%m/%d or %b %d %Y."),
        Option("timestamp_format", "Timestamp format", help="strptime format, e.g. %Y/%m/%d %H:%M:%S."),
        Option("quote", "Quote character"),
        Option("escape", "Escape character"),
        Option("skip_rows", "Skip lines at the top", kind="int"),
        Option("encoding", "Encoding", choices=("utf-8", "utf-16", "latin-1")),
        files.NORMALIZE,
        files.RENAME,
        Option("types", "Column types", kind="map", help="One 'column = TYPE' per line, e.g. 'zip = VARCHAR'."),
    ),
    query_modes=(QueryMode.LOCAL, QueryMode.REMOTE),
    validate_spec=_validate,
    extract=extract,
    check_mode=files.check_mode,
)
