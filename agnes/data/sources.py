"""Sources that answer queries themselves: the interface behind remote tables.

A connector whose tables can stay at their source (``query_mode = remote``) sets
:attr:`agnes.data.connectors.Connector.remote` to a factory ``(spec, env) -> RemoteSource``.
Everything above it (the ``/api/query`` router, samples, scan estimates, snapshots) speaks only
this interface and sqlglot: the source says which sqlglot dialect it speaks, describes its
relation from its catalog (no scan), estimates a statement without running it, and streams the
result of one as Arrow record batches. Adding a source (BigQuery, MySQL, ...) is one class.
"""

from __future__ import annotations

import abc
from collections.abc import Generator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlglot import exp

from agnes.errors import AppError


class RemoteError(AppError):
    """The source failed or refused a statement; the message is safe to show (no DSN, no secret).

    ``status`` is 502 for an unreachable or failing source, 504 for a statement that hit its
    timeout, 404 for a relation that is gone and 400 for SQL the source rejected; ``code`` is the
    ``error`` of the JSON answer.
    """

    def __init__(self, message: str, *, status: int = 502, code: str = "remote_source_error") -> None:
        super().__init__(status, code, message, field="sql" if status == 400 else None)


@dataclass(frozen=True)
class Column:
    """One column of a source relation: ``type`` in the source's own spelling (``numeric(10,2)``)."""

    name: str
    type: str
    nullable: bool = True


@dataclass(frozen=True)
class RelationInfo:
    """What the source's catalog says about a relation, read without scanning it.

    Attributes:
        relation: the resolved name at the source (``public.orders``).
        columns: in the relation's order.
        row_estimate: the planner's row count (None when the source has never counted it).
        size_bytes: bytes on disk at the source, indexes included (0 for a view).
    """

    relation: str
    columns: list[Column]
    row_estimate: int | None
    size_bytes: int


@dataclass(frozen=True)
class ScanEstimate:
    """The source's estimate for one statement, before running it.

    Attributes:
        rows: rows the statement returns.
        bytes_scanned: bytes the source reads to answer it (whole relations for sequential scans,
            scaled down when a LIMIT stops the scan early).
        row_width: average bytes per returned row.
        relations: source relations the plan reads.
    """

    rows: int
    bytes_scanned: int
    row_width: int
    relations: list[str] = field(default_factory=list)

    @property
    def result_bytes(self) -> int:
        """Bytes of the result as the source sends it (rows × width)."""
        return self.rows * self.row_width


class RemoteSource(abc.ABC):
    """One relation at a source, reached with the DSN the registry names (never stored).

    Attributes:
        dialect: the sqlglot dialect the source speaks (``postgres``).
        supports_tablesample: whether ``TABLESAMPLE SYSTEM (p)`` reads a sample without a scan.
        key: identifies the connection (same key: one statement may join their relations).
    """

    dialect: str = ""
    supports_tablesample: bool = False
    key: str = ""

    @abc.abstractmethod
    def relation(self) -> exp.Table:
        """The relation as a sqlglot table (quoted parts), to put in generated statements."""

    @abc.abstractmethod
    def describe(self) -> RelationInfo:
        """Columns, row estimate and size from the catalog. Raises RemoteError."""

    @abc.abstractmethod
    def estimate(self, sql: str) -> ScanEstimate:
        """The planner's estimate for ``sql`` (in :attr:`dialect`); nothing runs. Raises RemoteError."""

    @abc.abstractmethod
    def stream(self, sql: str, *, timeout_s: float) -> AbstractContextManager[BatchStream]:
        """Run ``sql`` read-only and stream its result. Raises RemoteError (also while iterating)."""


class BatchStream(abc.ABC):
    """A running statement: its Arrow ``schema`` and a generator of record batches (constant memory).

    Consumers that stop early close the generator before leaving the stream's context, so any
    reader behind it stops before the connection closes.
    """

    schema: object

    @abc.abstractmethod
    def __iter__(self) -> Generator[object, None, None]: ...
