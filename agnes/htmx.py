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


def job_started(job: Any, url: str) -> Response:
    """After a POST that started a job: its self-polling status fragment for htmx (the page
    swaps it in place), a 303 to ``url`` (the page that shows the job) for a plain form."""
    return fragment_or_redirect("jobs/_job_status.html", url, job=job)
