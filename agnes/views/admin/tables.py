"""Admin pages for data tables: register, edit, unregister, Sync now with live job status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, request, url_for

from agnes import audit
from agnes.access import admin_required
from agnes.data import registration
from agnes.data.connectors import Connector, connectors
from agnes.errors import AppError, field_errors
from agnes.htmx import hx_redirect, job_started, render
from agnes.jobs.tables import start_sync
from agnes.pages.admin_tables import table_page

bp = Blueprint("admin_tables", __name__, url_prefix="/admin/tables")

EMPTY_FORM = {
    "name": "",
    "id": "",
    "description": "",
    "source_type": "csv",
    "source_name": "",
    "query_mode": "",
    "schedule": "",
    "primary_key": "",
    "spec": {},
}


def _connector(source_type: str | None) -> Connector:
    found = connectors()
    chosen = found.get(source_type or "")
    return chosen if chosen is not None and chosen.available else found["csv"]


def spec_for_form(connector: Connector, spec: dict[str, Any]) -> dict[str, str]:
    """Connector options as form text (lists comma separated, maps as 'old = new' lines)."""
    values = {}
    for option in connector.options:
        value = spec.get(option.name)
        if value is None:
            values[option.name] = ""
        elif option.kind == "map":
            values[option.name] = "\n".join(f"{k} = {v}" for k, v in value.items())
        elif option.kind == "list":
            values[option.name] = ",".join(value)
        elif option.kind == "bool":
            values[option.name] = "on" if value else ""
        else:
            values[option.name] = str(value)
    return values


def _form_fields() -> dict[str, Any]:
    """The posted form as registry fields (connector options from ``opt_<name>``)."""
    form = request.form
    connector = _connector(form.get("source_type"))
    spec: dict[str, Any] = {}
    for option in connector.options:
        if option.kind == "bool":
            spec[option.name] = form.get(f"opt_{option.name}") == "on"
        else:
            spec[option.name] = form.get(f"opt_{option.name}", "")
    return {
        "name": form.get("name", ""),
        "id": form.get("id", ""),
        "description": form.get("description", ""),
        "source_type": connector.type,
        "source_name": form.get("source_name", ""),
        "query_mode": form.get("query_mode", ""),
        "schedule": form.get("schedule", ""),
        "primary_key": form.get("primary_key", ""),
        "source_spec": spec,
    }


def tables_data(**extra: Any) -> dict[str, Any]:
    """Context of the tables page and its fragments."""
    form = extra.pop("form", None) or {**EMPTY_FORM, "source_type": request.args.get("source_type", "csv")}
    connector = _connector(form["source_type"])
    return {
        "tables": registration.list_tables(),
        "connectors": list(connectors().values()),
        "connector": connector,
        "form": form,
        "spec_values": form.get("spec_values") or spec_for_form(connector, {}),
        "errors": {},
        **extra,
    }


def table_data(table_id: str, **extra: Any) -> dict[str, Any]:
    """Context of one table's page: its page data plus the form state."""
    page = table_page(table_id)
    connector = connectors()[page.view.table.source_type]
    return {
        "view": page.view,
        "table": page.view.table,
        "state": page.view.state,
        "history": page.history,
        "connector": connector,
        "spec_values": spec_for_form(connector, page.view.table.source_spec),
        "errors": {},
        "job": page.job,
        "refresh_on": page.refresh_on,
        "remote": page.remote,
        **extra,
    }


@bp.get("")
@admin_required
def list_tables():  # type: ignore[no-untyped-def]
    """Registered tables with their last sync, and the register form."""
    return render("admin/tables/tables.html", "admin/tables/_tables_table.html", **tables_data())


@bp.get("/options")
@admin_required
def table_options_fragment():  # type: ignore[no-untyped-def]
    """The option fields of one connector (swapped in when the source type changes)."""
    connector = _connector(request.args.get("source_type"))
    form = {**EMPTY_FORM, "source_type": connector.type}
    return render("admin/tables/tables.html", "admin/tables/_table_options.html", **tables_data(form=form))


def _form_errors(exc: AppError) -> dict[str, str]:
    """Every refused field of the form at its input (connector options are ``opt_<name>``)."""
    return {key.replace("spec.", "opt_"): message for key, message in field_errors(exc, "name").items()}


@bp.post("")
@admin_required
def register_table_post():  # type: ignore[no-untyped-def]
    """Register a table; errors re-render the form (422) with the values and per-field messages."""
    fields = _form_fields()
    try:
        entry = registration.register_table(fields, owner_id=g.principal.user.id)
    except AppError as exc:
        if exc.status not in (400, 409, 422):
            raise
        connector = _connector(fields["source_type"])
        form = {
            **fields,
            "spec_values": {k: str(request.form.get(f"opt_{k}", "")) for k in (o.name for o in connector.options)},
        }
        return render(
            "admin/tables/tables.html",
            "admin/tables/_table_form.html",
            status=422,
            **tables_data(form=form, errors=_form_errors(exc)),
        )
    flash(f"Table {entry.id} registered. Grant it to a group, then sync it.", "success")
    target = url_for("admin_tables.show_table", table_id=entry.id)
    return hx_redirect(redirect(target, code=303), target)


@bp.get("/<table_id>")
@admin_required
def show_table(table_id: str):  # type: ignore[no-untyped-def]
    """One table: its settings, last sync, history and Sync now."""
    return render("admin/tables/table.html", "admin/tables/_table_sync.html", **table_data(table_id))


@bp.post("/<table_id>")
@admin_required
def update_table_post(table_id: str):  # type: ignore[no-untyped-def]
    """Save a table's settings."""
    current = registration.get_table(table_id)
    fields = {**_form_fields(), "source_type": current.source_type}
    fields.pop("id", None)
    fields.pop("source_name", None)
    try:
        registration.update_table(table_id, fields)
    except AppError as exc:
        if exc.status not in (400, 422):
            raise
        return render("admin/tables/table.html", status=422, **table_data(table_id, errors=_form_errors(exc)))
    flash("Table saved.", "success")
    return redirect(url_for("admin_tables.show_table", table_id=table_id), code=303)


@bp.post("/<table_id>/sync")
@admin_required
def sync_table_post(table_id: str):  # type: ignore[no-untyped-def]
    """Sync now: queue the table's sync and show its live status."""
    job = start_sync(table_id, owner_id=g.principal.user.id, triggered_by=g.principal.user.id)
    audit.describe("table.sync", f"table:{table_id}", job_id=job.id)
    return job_started(job, url_for("admin_tables.show_table", table_id=table_id))


@bp.post("/<table_id>/delete")
@admin_required
def unregister_table_post(table_id: str):  # type: ignore[no-untyped-def]
    """Unregister a table (files, view and grants go too)."""
    registration.unregister_table(table_id)
    flash(f"Table {table_id} unregistered.", "success")
    target = url_for("admin_tables.list_tables")
    return hx_redirect(redirect(target, code=303), target)
