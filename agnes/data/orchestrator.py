"""The orchestrator: one ``analytics/server.duckdb`` with a master view per table of every source.

Master views of tables with a parquet read it by absolute path (``read_parquet``), so the file
works without attachments; remote views are created from their SQL. A ``_tables`` catalog
table records, for each view, its source, mode and figures.

View names are one flat namespace. The first source to claim a name owns it
(``view_ownership`` in the state store); another source declaring the same name is refused
and reported as a :class:`Collision` instead of silently replacing the first one (the
original's issue #81). Ownership moves only when the owner no longer declares the name.

The database is rebuilt in a temp file and renamed into place under ``analytics/.lock``, so
readers always open a complete file. :func:`rebuild` with ``source=`` rescans one source and
reuses the catalog of the others.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from agnes.data.connectors._files import quote_ident, sql_string
from agnes.data.extracts import EXTRACT_FILE, SOURCE_RE, TABLE_ID_RE, MetaRow, extracts_root, read_meta
from agnes.errors import human_message
from agnes.files import file_lock
from agnes.models import tables
from agnes.models.db import connect_file
from agnes.state import state_store

log = logging.getLogger(__name__)

ANALYTICS_FILE = "server.duckdb"


@dataclass(frozen=True)
class Collision:
    """``view_name`` is declared by ``source`` but owned by ``owner``."""

    view_name: str
    source: str
    owner: str

    @property
    def message(self) -> str:
        return (
            f"view name '{self.view_name}' is already provided by source '{self.owner}'; source"
            f" '{self.source}' was not allowed to replace it (rename one of the tables)"
        )


@dataclass
class RebuildReport:
    """What a rebuild did: ``views`` ``{name: source}``, refused ``collisions``, unreadable ``errors``."""

    views: dict[str, str] = field(default_factory=dict)
    collisions: list[Collision] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def collision_for(self, view_name: str, source: str) -> Collision | None:
        return next((c for c in self.collisions if c.view_name == view_name and c.source == source), None)


@dataclass(frozen=True)
class _Claim:
    source: str
    row: MetaRow
    parquet: Path | None


def analytics_path(data_dir: Path) -> Path:
    return Path(data_dir) / "analytics" / ANALYTICS_FILE


def _scan_source(root: Path, source: str) -> list[_Claim]:
    directory = root / source
    claims = []
    for row in read_meta(directory / EXTRACT_FILE):
        if not TABLE_ID_RE.match(row.table_name):
            log.warning("source %s: skipping unsafe table name %r", source, row.table_name)
            continue
        parquet = directory / "data" / f"{row.table_name}.parquet"
        claims.append(_Claim(source, row, parquet if parquet.is_file() else None))
    return claims


def _cached_claims(target: Path, skip_source: str) -> list[_Claim]:
    """Claims of other sources from the current analytics catalog (single-source rebuilds)."""

    if not target.is_file():
        return []
    con = connect_file(target, read_only=True)
    try:
        rows = con.execute(
            "SELECT view_name, source, description, rows, size_bytes, extracted_at, query_mode, parquet, view_sql"
            " FROM _tables WHERE source <> ?",
            [skip_source],
        ).fetchall()
    except Exception:
        return []
    finally:
        con.close()
    return [_Claim(r[1], MetaRow(r[0], r[2], r[3], r[4], r[5], r[6], r[8]), Path(r[7]) if r[7] else None) for r in rows]


def _scan(data_dir: Path, source: str | None, target: Path) -> tuple[list[_Claim], dict[str, str], set[str]]:
    """All claims, per-source errors, and the sources that were scanned cleanly from disk."""
    root = extracts_root(data_dir)
    errors: dict[str, str] = {}
    clean: set[str] = set()
    claims: list[_Claim] = []
    if source is not None:
        names = [source] if (root / source / EXTRACT_FILE).is_file() else []
        clean.add(source)
        claims.extend(_cached_claims(target, source))
    else:
        names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for name in names:
        if not SOURCE_RE.match(name):
            log.warning("skipping extract directory with an unsafe name: %r", name)
            continue
        if not (root / name / EXTRACT_FILE).is_file():
            continue
        try:
            claims.extend(_scan_source(root, name))
            clean.add(name)
        except Exception as exc:
            errors[name] = human_message(exc)
            log.warning("source %s skipped: %s", name, errors[name])
    return claims, errors, clean


def _settle_ownership(
    claims: list[_Claim], clean: set[str], broken: set[str], full: bool
) -> tuple[list[_Claim], list[Collision]]:
    """Decide which claim wins each view name and persist ownership (one short write unit).

    An owner whose extract could not be read keeps its names (a corrupt file must not hand
    them to another source); in a full rebuild, an owner with no extract at all gives them up.
    """

    def gave_up(owner: str) -> bool:
        return owner not in broken and (full or owner in clean)

    by_name: dict[str, list[_Claim]] = {}
    for claim in claims:
        by_name.setdefault(claim.row.table_name, []).append(claim)
    winners: list[_Claim] = []
    collisions: list[Collision] = []
    with state_store().write() as con:
        owners = tables.view_owners(con)
        for name in sorted(by_name):
            contenders = by_name[name]
            owner = owners.get(name)
            winner = next((c for c in contenders if c.source == owner), None)
            if winner is None:
                # The owner gave the name up (or never existed): the earliest extract takes it.
                winner = min(contenders, key=lambda c: (c.row.extracted_at or datetime.max, c.source))
                if owner is None or gave_up(owner):
                    tables.set_view_owner(con, name, winner.source)
                else:
                    collisions.extend(Collision(name, c.source, owner) for c in contenders)
                    continue
            winners.append(winner)
            collisions.extend(Collision(name, c.source, winner.source) for c in contenders if c is not winner)
        claimed = set(by_name)
        for name, owner in owners.items():
            # Release names whose owner was scanned cleanly and no longer declares them.
            if name not in claimed and gave_up(owner):
                tables.release_view(con, name)
    return winners, collisions


def rebuild(data_dir: Path, *, source: str | None = None) -> RebuildReport:
    """Rebuild ``analytics/server.duckdb`` (all sources, or rescan only ``source``).

    Needs an app context (view ownership lives in the state store). Never raises for a bad
    source: it is skipped and reported in ``errors``.
    """

    target = analytics_path(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    report = RebuildReport()
    with file_lock(target.parent / ".lock"):
        claims, report.errors, clean = _scan(data_dir, source, target)
        winners, report.collisions = _settle_ownership(claims, clean, set(report.errors), full=source is None)
        for collision in report.collisions:
            log.warning("orchestrator: %s", collision.message)
        tmp = target.with_name(f".{ANALYTICS_FILE}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        con = connect_file(tmp)
        try:
            con.execute(
                "CREATE TABLE _tables (view_name VARCHAR PRIMARY KEY, source VARCHAR, description VARCHAR,"
                " rows BIGINT, size_bytes BIGINT, extracted_at TIMESTAMP, query_mode VARCHAR, parquet VARCHAR,"
                " view_sql VARCHAR)"
            )
            pending = []
            for claim in winners:
                row = claim.row
                if claim.parquet is not None and not row.view_sql:
                    con.execute(
                        f"CREATE VIEW {quote_ident(row.table_name)} AS"
                        f" SELECT * FROM read_parquet({sql_string(str(claim.parquet))})"
                    )
                    _record(con, claim)
                    report.views[row.table_name] = claim.source
                elif row.view_sql:
                    pending.append(claim)
            # Remote views may select from other views: retry until no more of them bind.
            while pending:
                progressed = []
                for claim in pending:
                    try:
                        con.execute(f"CREATE VIEW {quote_ident(claim.row.table_name)} AS {claim.row.view_sql}")
                    except Exception as exc:
                        report.errors.setdefault(claim.source, f"view {claim.row.table_name}: {exc}")
                        continue
                    _record(con, claim)
                    report.views[claim.row.table_name] = claim.source
                    progressed.append(claim)
                if not progressed:
                    break
                pending = [c for c in pending if c not in progressed]
                for claim in progressed:
                    report.errors.pop(claim.source, None)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, target)
    return report


def _record(con, claim: _Claim) -> None:  # type: ignore[no-untyped-def]
    row = claim.row
    con.execute(
        "INSERT INTO _tables VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            row.table_name,
            claim.source,
            row.description,
            row.rows,
            row.size_bytes,
            row.extracted_at,
            row.query_mode,
            str(claim.parquet) if claim.parquet else None,
            row.view_sql,
        ],
    )


def open_analytics(data_dir: Path):  # type: ignore[no-untyped-def]
    """A read-only connection to ``analytics/server.duckdb`` (None before the first rebuild)."""

    target = analytics_path(data_dir)
    if not target.is_file():
        return None
    return connect_file(target, read_only=True)
