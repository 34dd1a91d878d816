"""Business metric definitions: YAML documents in, ``metric_definitions`` rows out.

A document holds one metric (a mapping) or several (a list, or a mapping with ``metrics:``).
Each metric needs ``name``; ``category`` defaults to the folder the file is in. The id is
``<category>/<name>``. Known keys are columns; everything else (dimensions, filters,
synonyms, notes, ``sql_by_<dialect>`` variants, validation, ...) is kept in ``details``.
"""

from __future__ import annotations

import re
from typing import Any

from agnes import audit
from agnes.errors import Invalid, NotFound
from agnes.models import tables
from agnes.state import state_store

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
COLUMNS = ("display_name", "description", "type", "unit", "grain", "expression", "time_column", "sql")


def parse_documents(documents: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Metrics from ``[{"path": "finance/revenue.yml", "text": "..."}]``.

    Raises:
        Invalid: a document is not YAML, or a metric lacks a name or category (message names the file).
    """
    import yaml

    metrics: dict[str, dict[str, Any]] = {}
    for document in documents:
        path = str(document.get("path") or "metrics.yml")
        try:
            data = yaml.safe_load(str(document.get("text") or ""))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            raise Invalid("invalid_yaml", f"{path}: not valid YAML{where}: {problem}.", field="documents") from None
        if data is None:
            continue
        if isinstance(data, dict) and isinstance(data.get("metrics"), list):
            items = data["metrics"]
        elif isinstance(data, list):
            items = data
        else:
            items = [data]
        folder = path.replace("\\", "/").rsplit("/", 2)
        default_category = folder[-2] if len(folder) >= 2 else ""
        for item in items:
            metric = to_metric(item, default_category, path)
            metrics[metric["id"]] = metric
    if not metrics:
        raise Invalid("no_metrics", "No metric definitions found in the uploaded YAML.", field="documents")
    return list(metrics.values())


def _slug(value: Any) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "_", str(value or "").strip().lower()).strip("_")


def to_metric(item: Any, default_category: str, path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Invalid("invalid_metric", f"{path}: each metric must be a mapping.", field="documents")
    name = _slug(item.get("name"))
    category = _slug(item.get("category") or default_category)
    if not name or not NAME_RE.match(name):
        raise Invalid("invalid_metric", f"{path}: a metric needs a name.", field="documents")
    if not category or not NAME_RE.match(category):
        raise Invalid("invalid_metric", f"{path}: metric {name!r} needs a category.", field="documents")
    metric: dict[str, Any] = {"id": f"{category}/{name}", "name": name, "category": category, "source": "yaml"}
    for column in COLUMNS:
        value = item.get(column)
        metric[column] = "" if value is None else str(value).strip()
    metric["table_name"] = str(item.get("table") or item.get("table_name") or "").strip()
    details = {k: v for k, v in item.items() if k not in {*COLUMNS, "name", "category", "table", "table_name"}}
    variants = {k.removeprefix("sql_by_"): details.pop(k) for k in list(details) if k.startswith("sql_by_")}
    if variants:
        details["sql_variants"] = {**details.get("sql_variants", {}), **variants}
    metric["details"] = details
    return metric


def list_metrics(category: str | None = None) -> list[Any]:

    with state_store().read() as con:
        return tables.list_metrics(con, category=category)


def get_metric(metric_id: str) -> Any:
    """One metric. Raises NotFound (``metric_not_found``)."""

    with state_store().read() as con:
        metric = tables.get_metric(con, metric_id)
    if metric is None:
        raise NotFound("metric_not_found", f"Metric '{metric_id}' not found.")
    return metric


def import_metrics(documents: Any) -> list[str]:
    """Upsert every metric in ``[{"path", "text"}]`` YAML documents; returns their ids. Raises Invalid."""

    if not isinstance(documents, list) or not all(isinstance(d, dict) for d in documents):
        raise Invalid("invalid_body", 'Send {"documents": [{"path": ..., "text": ...}]}.', field="documents")
    metrics = parse_documents(documents)
    ids = [m["id"] for m in metrics]
    with state_store().write() as con:
        for metric in metrics:
            tables.upsert_metric(con, metric)
        audit.record(con, "metrics.import", "metrics", ids=ids)
    return ids


def delete_metric(metric_id: str) -> None:
    """Raises NotFound (``metric_not_found``)."""

    with state_store().write() as con:
        if not tables.delete_metric(con, metric_id):
            raise NotFound("metric_not_found", f"Metric '{metric_id}' not found.")
        audit.record(con, "metrics.delete", f"metric:{metric_id}")


def metric_json(metric: Any) -> dict[str, Any]:
    return {
        "id": metric.id,
        "name": metric.name,
        "category": metric.category,
        "display_name": metric.display_name,
        "description": metric.description,
        "type": metric.type,
        "unit": metric.unit,
        "grain": metric.grain,
        "table": metric.table_name,
        "expression": metric.expression,
        "time_column": metric.time_column,
        "sql": metric.sql,
        **metric.details,
        "source": metric.source,
        "updated_at": metric.updated_at.isoformat(),
    }
