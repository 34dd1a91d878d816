"""``agnes query`` is read-only: which statements it refuses, and why, in one line.

Two layers. First the SQL is parsed with sqlglot (DuckDB dialect): exactly one statement, and it
must read (``SELECT``/``WITH``/``FROM``, set operations, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``,
``EXPLAIN``). ``COPY``, ``EXPORT``, ``ATTACH``/``DETACH``/``USE``, ``INSTALL``/``LOAD``,
``SET``/``RESET``/``PRAGMA``, ``CALL`` and every write are refused with the reason. Then DuckDB
itself is opened read-only with file access limited to the workspace and its configuration
locked (:func:`lock_down`), so what the parser misses still cannot read or write other files.
"""

from __future__ import annotations

from typing import Any

# What each refused kind of statement does, for the one-line reason.
REASONS = {
    "COPY": "COPY writes files; save results with --output FILE (.csv, .parquet or .json)",
    "EXPORT": "EXPORT DATABASE writes files; save results with --output FILE",
    "IMPORT": "IMPORT DATABASE loads files into the database",
    "ATTACH": "ATTACH opens another database; agnes query reads only your pulled tables",
    "DETACH": "DETACH changes the attached databases",
    "USE": "USE switches to another database",
    "INSTALL": "INSTALL downloads DuckDB extensions",
    "LOAD": "LOAD loads DuckDB extensions",
    "FORCE": "FORCE INSTALL downloads DuckDB extensions",
    "SET": "SET changes DuckDB settings (they are locked)",
    "RESET": "RESET changes DuckDB settings (they are locked)",
    "PRAGMA": "PRAGMA changes or reads DuckDB internals",
    "CALL": "CALL runs a table function; use SELECT * FROM function(...)",
    "CHECKPOINT": "CHECKPOINT writes the database",
    "VACUUM": "VACUUM writes the database",
}
WRITES = ("INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE", "REPLACE", "UPSERT")
READS = ("SELECT", "WITH", "FROM", "VALUES", "TABLE", "DESCRIBE", "DESC", "SHOW", "SUMMARIZE", "EXPLAIN", "(")


def _first_word(sql: str) -> str:
    text = sql.strip().lstrip("(").strip()
    while text.startswith("--") or text.startswith("/*"):
        if text.startswith("--"):
            text = text.partition("\n")[2].strip()
        else:
            text = text.partition("*/")[2].strip()
    word = text.split(None, 1)[0] if text else ""
    return word.upper().rstrip(";")


def _kind(statement: Any) -> str:
    """The statement's keyword as a person types it (``COPY``, ``INSTALL``, ``SELECT``)."""
    from sqlglot import exp

    if isinstance(statement, exp.Command):
        return str(statement.this).upper()
    return _first_word(statement.sql(dialect="duckdb"))


def refusal(sql: str) -> str | None:
    """Why ``sql`` is refused, in one line; None when it only reads.

    Uses sqlglot; SQL sqlglot cannot parse is judged by its first keyword (DuckDB's read-only,
    locked connection stays the backstop).
    """
    import logging

    import sqlglot
    from sqlglot import exp

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to a Command" is ours to judge
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError):
        statements = None
    if statements is None:
        return _reason(_first_word(sql))
    if not statements:
        return "refused: no SQL statement given"
    if len(statements) > 1:
        return f"refused: one statement at a time (found {len(statements)})"
    statement = statements[0]
    if isinstance(statement, exp.Query | exp.Describe | exp.Show | exp.Summarize):
        return None
    if isinstance(statement, exp.Copy):
        return _reason("COPY")
    if isinstance(statement, exp.Set):
        return _reason("SET")
    if isinstance(statement, exp.Pragma):
        return _reason("PRAGMA")
    word = _kind(statement)
    return None if word in READS else _reason(word)


def _reason(word: str) -> str | None:
    if word in REASONS:
        return f"refused: {REASONS[word]} (agnes query is read-only)"
    if word in READS:
        return None
    if word in WRITES:
        return f"refused: {word} changes data (agnes query is read-only)"
    return f"refused: {word or 'this'} is not a read-only statement (agnes query runs SELECT, DESCRIBE, SHOW)"


def lock_down(con: Any, directories: list[str]) -> None:
    """Limit an open DuckDB connection to files under ``directories`` (the workspace) and lock its
    settings: no other files, no network, no extension installs, no later ``SET``."""
    con.execute("SET allowed_directories = ?", [sorted({d.rstrip("/") + "/" for d in directories})])
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")
