"""``/api``: the table registry (admins), sync trigger, manifest, downloads, catalog and metrics."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.wsgi import wrap_file

from agnes import audit
from agnes.access import ResourceType, admin_required, login_required, resource_access_required
from agnes.conditional import etag_matches
from agnes.data import distribution, metrics, registration
from agnes.data.audit_buffer import audit_buffer
from agnes.data.connectors import connectors
from agnes.errors import Invalid
from agnes.jobs.tables import start_syncs
from agnes.pages.admin_tables import table_page
from agnes.pages.data_catalog import catalog_page, data_table_page
from agnes.views.api.body import json_body, json_value

bp = Blueprint("data", __name__)


def audit_read(status: int, action: str, resource: str, **params: object) -> None:
    """Audit a read (manifest fetch, download) through the batched buffer: no write unit per request."""
    started = g.get("request_started")
    audit_buffer(current_app._get_current_object()).add(  # type: ignore[attr-defined]
        action=action,
        user_id=g.principal.user.id,
        resource=resource,
        params=params,
        result=str(status),
        duration_ms=round((time.perf_counter() - started) * 1000, 2) if started else None,
        client_ip=request.remote_addr,
        client_kind=g.principal.client_kind,
        correlation_id=g.get("correlation_id"),
    )


# -- registry (admins) --------------------------------------------------------------------------


@bp.get("/admin/connectors")
@admin_required
def list_connectors():  # type: ignore[no-untyped-def]
    return jsonify(
        connectors=[
            {
                "type": c.type,
                "label": c.label,
                "description": c.description,
                "available": c.available,
                "query_modes": [m.value for m in c.query_modes],
                "options": [
                    {
                        "name": o.name,
                        "label": o.label,
                        "kind": o.kind,
                        "required": o.required,
                        "help": o.help,
                        "choices": list(o.choices),
                    }
                    for o in c.options
                ],
            }
            for c in connectors().values()
        ]
    )


@bp.get("/admin/registry")
@admin_required
def list_registry():  # type: ignore[no-untyped-def]
    return jsonify(tables=[view.to_dict() for view in registration.list_tables()])


@bp.get("/admin/registry/<table_id>")
@admin_required
def get_registry_entry(table_id: str):  # type: ignore[no-untyped-def]
    """One table with its sync state, history and sync job (the admin page's data)."""
    return jsonify(table_page(table_id).to_dict())


@bp.post("/admin/register-table")
@admin_required
def register_table():  # type: ignore[no-untyped-def]
    body = json_body()
    entry = registration.register_table(body, owner_id=g.principal.user.id)
    return jsonify(registration.TableView(entry, None).to_dict()), 201


@bp.put("/admin/registry/<table_id>")
@admin_required
def update_registry_entry(table_id: str):  # type: ignore[no-untyped-def]
    registration.update_table(table_id, json_body())
    view, _ = registration.table_detail(table_id)
    return jsonify(view.to_dict())


@bp.delete("/admin/registry/<table_id>")
@admin_required
def unregister_table(table_id: str):  # type: ignore[no-untyped-def]
    registration.unregister_table(table_id)
    return "", 204


# -- syncs --------------------------------------------------------------------------------------


@bp.post("/sync/trigger")
@admin_required
def trigger_sync():  # type: ignore[no-untyped-def]
    """Body: none, ``{"tables": [ids]}`` or ``[ids]``. Listed tables sync now; otherwise the due ones."""
    body = json_value(required=False)
    if isinstance(body, dict):
        ids = body.get("tables")
    elif isinstance(body, list):
        ids = body
    elif body is None:
        ids = None
    else:
        raise Invalid("invalid_body", 'Send {"tables": [ids]} or nothing.', field="tables")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise Invalid("invalid_body", "tables must be a list of table ids.", field="tables")
    jobs, skipped = start_syncs(ids, actor_id=g.principal.user.id)
    audit.describe("sync.trigger", "tables", tables=ids, jobs=[j.id for j in jobs])
    return jsonify(
        jobs=[{"table": j.id.removeprefix("sync-table:"), **j.to_dict()} for j in jobs], skipped=skipped
    ), 202


@bp.get("/sync/manifest")
@login_required
def sync_manifest():  # type: ignore[no-untyped-def]
    body = distribution.manifest(g.principal)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    audit_read(200, "manifest.fetch", "manifest", tables=len(body["tables"]))
    return response


# -- downloads ----------------------------------------------------------------------------------


@bp.get("/data/<table_id>/download")
@resource_access_required(ResourceType.TABLE, "table_id")
def download_table(table_id: str):  # type: ignore[no-untyped-def]
    """The table's parquet, with ``ETag`` (its MD5), ``X-Content-MD5``/``X-Content-SHA256``,
    ``If-None-Match`` and single-range ``Range``."""
    found = distribution.table_file(table_id)
    etag = f'"{found.etag}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "Content-Disposition": f'attachment; filename="{table_id}.parquet"',
    }
    if found.md5:  # digests of exactly these bytes, for clients that verify
        headers["X-Content-MD5"] = found.md5
    if found.sha256:
        headers["X-Content-SHA256"] = found.sha256
    if etag_matches(request.headers.get("If-None-Match"), found.etag):
        audit_read(304, "data.download", f"table:{table_id}", not_modified=True)
        return Response(status=304, headers=headers)
    if_range = request.headers.get("If-Range")
    byte_range = None
    if if_range is None or if_range.strip() == etag:
        byte_range = distribution.parse_range(request.headers.get("Range"), found.size)
    start, end = byte_range if byte_range else (0, found.size - 1)
    length = max(0, end - start + 1)
    block = int(current_app.config["AGNES_DOWNLOAD_BLOCK_KB"]) * 1024
    if end == found.size - 1:
        body = wrap_file(request.environ, distribution.open_at(found.path, start), buffer_size=block)
    else:
        body = distribution.read_span(found.path, start, length, block)
    status = 206 if byte_range else 200
    audit_read(
        status, "data.download", f"table:{table_id}", bytes=length, range=f"{start}-{end}" if byte_range else None
    )
    # direct_passthrough hands the file wrapper to the server as is (gunicorn sends it with sendfile).
    response = Response(
        body, status=status, headers=headers, mimetype="application/vnd.apache.parquet", direct_passthrough=True
    )
    response.content_length = length
    if byte_range:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{found.size}"
    return response


# -- the /data pages' twins ----------------------------------------------------------------------


@bp.get("/data")
@login_required
def list_data():  # type: ignore[no-untyped-def]
    """The caller's tables (admins: all) matching ``q``: the ``/data`` page's data."""
    return jsonify(catalog_page(g.principal, request.args.get("q", "")[:200]).to_dict())


@bp.get("/data/<table_id>")
@resource_access_required(ResourceType.TABLE, "table_id")
def get_data(table_id: str):  # type: ignore[no-untyped-def]
    """One table with its schema, first rows and commands: the ``/data/<id>`` page's data."""
    return jsonify(data_table_page(g.principal, table_id).to_dict())


# -- catalog and metrics --------------------------------------------------------------------------


@bp.get("/catalog")
@login_required
def catalog():  # type: ignore[no-untyped-def]
    """The caller's tables with description, figures and columns (``agnes catalog``)."""
    return jsonify(tables=distribution.catalog(g.principal))


@bp.get("/metrics")
@login_required
def list_metrics():  # type: ignore[no-untyped-def]
    found = metrics.list_metrics(request.args.get("category") or None)
    return jsonify(metrics=[metrics.metric_json(m) for m in found], count=len(found))


@bp.get("/metrics/<path:metric_id>")
@login_required
def get_metric(metric_id: str):  # type: ignore[no-untyped-def]
    return jsonify(metrics.metric_json(metrics.get_metric(metric_id)))


@bp.post("/admin/metrics/import")
@admin_required
def import_metrics():  # type: ignore[no-untyped-def]
    """Body ``{"documents": [{"path", "text"}]}`` (YAML text); upserts every metric found."""
    imported = metrics.import_metrics(json_body().get("documents"))
    return jsonify(imported=imported, count=len(imported)), 201


@bp.delete("/admin/metrics/<path:metric_id>")
@admin_required
def delete_metric(metric_id: str):  # type: ignore[no-untyped-def]
    metrics.delete_metric(metric_id)
    return "", 204
