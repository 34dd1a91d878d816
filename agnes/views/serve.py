"""What Claude Code and the CLI download: ``/marketplace.zip``, ``/marketplace/info`` and the
``marketplace.json`` answered at ``/marketplace.git/`` (the git protocol itself is served by
:mod:`agnes.marketplace.gitserve`, mounted in front of Flask)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file

from agnes.audit import write_audit
from agnes.errors import AppError
from agnes.marketplace import fastpath, generation, packager, resolver
from agnes.marketplace.gitserve import GIT_PREFIX, REALM, credentials_token
from agnes.models import utcnow

bp = Blueprint("serve", __name__)


def _served_for_caller(challenge: str) -> resolver.ServedSet:
    principal = g.principal
    if principal is None:
        error = AppError(
            401,
            "authentication_required",
            g.get("auth_error") or "Send your Agnes access token (Authorization: Bearer <token>).",
        )
        response = jsonify(error.to_dict())
        response.status_code = 401
        response.headers["WWW-Authenticate"] = challenge
        raise _Abort(response)
    marker = generation.current()
    return resolver.resolve(principal.user.id, principal.group_ids, marker=marker)


class _Abort(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@bp.errorhandler(_Abort)
def _abort(exc: _Abort) -> Response:
    return exc.response


def _etag_matches(etag: str) -> bool:
    return fastpath.etag_matches(request.headers.get("If-None-Match", ""), etag)


@bp.get("/marketplace.zip")
def marketplace_zip():  # type: ignore[no-untyped-def]
    """The caller's served marketplace as a ZIP (Bearer PAT). 304 when ``If-None-Match`` matches."""
    served = _served_for_caller('Bearer realm="agnes"')
    headers = {"ETag": f'"{served.etag}"', "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if _etag_matches(served.etag):
        return Response(status=304, headers=headers)
    path = packager.zip_file(served)
    response = send_file(
        path,
        mimetype="application/zip",
        as_attachment=True,
        download_name="agnes-marketplace.zip",
        etag=False,
        conditional=False,
    )
    response.headers.update(headers)
    principal = g.principal
    mem = fastpath.memory(current_app)
    if mem.audit_due(principal.user.id, served.etag):  # once per user and ETag per window, not per poll
        mem.audited_now(principal.user.id, served.etag)
        write_audit(
            "marketplace.download",
            user_id=principal.user.id,
            resource=f"marketplace-zip:{served.etag}",
            params={"plugins": len(served.plugins)},
            client_ip=request.remote_addr,
            client_kind=principal.client_kind,
        )
    return response


@bp.get("/marketplace/info")
def marketplace_info():  # type: ignore[no-untyped-def]
    """The caller's served plugins (name, prefixed name, marketplace, version) and the ETag."""
    served = _served_for_caller('Bearer realm="agnes"')
    user = g.principal.user
    return jsonify(
        user_id=user.id,
        email=user.email,
        marketplace_name=resolver.MARKETPLACE_NAME,
        etag=served.etag,
        plugin_count=len(served.plugins),
        plugins=[p.info() for p in served.plugins],
        generated_at=utcnow().isoformat(),
    )


@bp.get(GIT_PREFIX + "/")
def marketplace_git_json():  # type: ignore[no-untyped-def]
    """``.../marketplace.git/`` as Claude Code 2.1 fetches it: a marketplace.json whose plugins
    are ``git-subdir`` sources on the git endpoint, so both URL forms install the same plugins.

    Claude Code sends HTTP Basic only when the URL carries ``user:token@``; the same
    credentials are then put in the git URLs it clones (otherwise git asks its helper).
    """
    if g.principal is None and credentials_token(request.environ):
        from agnes.auth import resolve_token

        g.principal = resolve_token(credentials_token(request.environ) or "", request.remote_addr)
    served = _served_for_caller(REALM)
    base = request.host_url.rstrip("/")
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.password:
        scheme, _, host = base.partition("://")
        base = f"{scheme}://{quote(auth.username or 'x', safe='')}:{quote(auth.password, safe='')}@{host}"
    response = jsonify(packager.marketplace_json(served, git_url=base + GIT_PREFIX))
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["ETag"] = f'"{served.etag}"'
    return response
