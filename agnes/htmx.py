"""The one place that decides between a full page and an HTMX fragment.

A request gets the fragment only when htmx sent it (``HX-Request: true``) and it is neither a
boosted navigation nor a history restore, both of which need the whole page. Every response
rendered here carries ``Vary: HX-Request`` so caches keep the two apart.
"""

from __future__ import annotations

from typing import Any

from flask import Response, make_response, redirect, render_template, request


def wants_fragment() -> bool:
    htmx = request.htmx  # type: ignore[attr-defined]
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(template: str, fragment: str | None = None, /, *, status: int = 200, **context: Any) -> Response:
    """Render ``fragment`` for an HTMX partial request, else the full page ``template``.

    The template names are positional-only, so any keyword (``page=``) is template context.
    """
    template = fragment if fragment and wants_fragment() else template
    response = make_response(render_template(template, **context), status)
    response.headers.add("Vary", "HX-Request")
    return response


def hx_redirect(response: Response, url: str) -> Response:
    """Navigate the whole page to ``url`` after a POST (create, delete).

    ``response`` (normally a 303 to ``url``) is what a plain form post gets. An htmx request
    gets an empty 200 with ``HX-Redirect`` instead: its XMLHttpRequest would follow a 3xx on
    its own, dropping the header and swapping the whole next page into the fragment.
    """
    if request.htmx:  # type: ignore[attr-defined]
        response = make_response("", 200)
        response.headers.add("Vary", "HX-Request")
    response.headers["HX-Redirect"] = url
    return response


def fragment_or_redirect(fragment: str, url: str, /, **context: Any) -> Response:
    """After a POST: the updated fragment for htmx, a 303 redirect for a plain form."""
    if wants_fragment():
        response = make_response(render_template(fragment, **context))
        response.headers.add("Vary", "HX-Request")
        return response
    return redirect(url, code=303)  # type: ignore[return-value]


JOB_FRAGMENT = "jobs/_job_status.html"


def announce_end(response: Response, job: Any) -> Response:
    """Tell the page that ``job`` ended: ``HX-Trigger: <job.event>`` on an htmx response showing a
    finished or failed job. The event is named after the job kind and resource
    (``sync-marketplace:<slug>``); fragments showing that resource listen with
    ``hx-trigger="<event> from:body"`` and fetch themselves again."""
    if request.htmx and job.ended and job.event.isascii():  # type: ignore[attr-defined]
        response.headers["HX-Trigger"] = job.event
    return response


def job_status(job: Any, page: str = "jobs/job.html", /, *, status: int = 200) -> Response:
    """A job's status: the self-polling fragment for htmx (announcing the end, see
    :func:`announce_end`), else the full ``page``."""
    return announce_end(render(page, JOB_FRAGMENT, status=status, job=job), job)


def job_started(job: Any, url: str) -> Response:
    """After a POST that started a job: its self-polling status fragment for htmx (the page
    swaps it in place; a job that already ended announces it), a 303 to ``url`` (the page that
    shows the job) for a plain form."""
    return announce_end(fragment_or_redirect(JOB_FRAGMENT, url, job=job), job)
