"""``/data``: the tables an analyst may query (admins: every table, with its sync state and Sync now),
searchable as you type, and ``/data/<id>`` with its schema, first rows and the commands that use it.

Page data: :mod:`agnes.pages.data_catalog` (shared with ``/api/data`` and ``/api/data/<id>``). Sync now
posts to the admin table sync (``/admin/tables/<id>/sync``); the table page's live region fetches
itself again when that job ends (``HX-Trigger: sync-table:<id>``).
"""

from __future__ import annotations

from flask import Blueprint, g, request

from agnes.access import ResourceType, login_required, resource_access_required
from agnes.htmx import render
from agnes.pages.data_catalog import catalog_page, data_table_page

bp = Blueprint("data_browse", __name__)


@bp.get("/data")
@login_required
def catalog():  # type: ignore[no-untyped-def]
    """The viewer's tables; the fragment (search as you type) is ``#data-results``."""
    page = catalog_page(g.principal, request.args.get("q", "")[:200])
    return render("data/catalog.html", "data/_results.html", page=page)


@bp.get("/data/<table_id>")
@resource_access_required(ResourceType.TABLE, "table_id")
def table(table_id: str):  # type: ignore[no-untyped-def]
    """One table: facts, schema, first 50 rows, commands (403 without a grant, 404 if missing).
    The fragment is the live region a sync refreshes."""
    return render("data/table.html", "data/_table_live.html", page=data_table_page(g.principal, table_id))
