"""``/api``: queries run where the tables live, and looking at remote tables before fetching them.

``POST /api/query`` (any signed-in user; every table the SQL names must be granted),
``GET /api/v2/schema/<id>``, ``GET /api/v2/sample/<id>?n=``, ``POST /api/v2/scan/estimate`` and
``POST /api/v2/scan`` (the snapshot stream, parquet). The rules are in :mod:`agnes.data.remote`.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from agnes import audit
from agnes.access import ResourceType, login_required, resource_access_required
from agnes.data import remote
from agnes.views.api.body import json_body
from agnes.views.api.data import audit_read

bp = Blueprint("remote", __name__)


@bp.post("/query")
@login_required
def run_query():  # type: ignore[no-untyped-def]
    """Body ``{sql, limit?, dialect?}``: one SELECT over granted tables (see agnes.data.remote)."""
    body = json_body()
    answer = remote.run_query(g.principal, body.get("sql"), body.get("limit"), body.get("dialect"))
    audit.describe("query.run", "query", ran_at=answer.ran_at, rows=len(answer.rows), truncated=answer.truncated)
    return jsonify(answer.to_dict())


@bp.get("/v2/schema/<table_id>")
@resource_access_required(ResourceType.TABLE, "table_id")
def table_schema(table_id: str):  # type: ignore[no-untyped-def]
    """Columns, row estimate and size from the registry and the last sync: no scan."""
    return jsonify(remote.table_schema(table_id))


@bp.get("/v2/sample/<table_id>")
@resource_access_required(ResourceType.TABLE, "table_id")
def sample(table_id: str):  # type: ignore[no-untyped-def]
    """At most ``n`` (≤ 100) rows, read at the source for remote tables."""
    answer = remote.sample(table_id, request.args.get("n"))
    audit_read(200, "data.sample", f"table:{table_id}", rows=len(answer.rows))
    return jsonify({"table": table_id, **answer.to_dict()})


@bp.post("/v2/scan/estimate")
@login_required
def scan_estimate():  # type: ignore[no-untyped-def]
    """Body ``{table, select?, where?, limit?, order_by?}``: the source's estimate, nothing fetched."""
    scan = remote.build_scan(g.principal, json_body())
    estimate = remote.scan_estimate(scan)
    audit.describe("scan.estimate", f"table:{scan.table_id}", where=scan.where, rows=estimate["rows"])
    return jsonify(estimate)


@bp.post("/v2/scan")
@login_required
def scan():  # type: ignore[no-untyped-def]
    """The scan's rows as one parquet file, streamed (``X-Agnes-Estimated-Rows``/``-Bytes`` for progress)."""
    built = remote.build_scan(g.principal, json_body())
    estimate = remote.scan_estimate(built)
    pieces = remote.stream_scan(built)
    audit.describe("snapshot.fetch", f"table:{built.table_id}", where=built.where, limit=built.limit)
    headers = {
        "X-Agnes-Estimated-Rows": str(estimate["rows"]),
        "X-Agnes-Estimated-Bytes": str(estimate["expected_local_bytes"]),
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{built.table_id}.parquet"',
    }
    return Response(pieces, headers=headers, mimetype="application/vnd.apache.parquet")
