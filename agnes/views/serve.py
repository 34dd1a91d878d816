"""What Claude Code and the CLI download: ``/marketplace.zip``, ``/marketplace/info`` and the
``marketplace.json`` answered at ``/marketplace.git/`` (the git protocol itself is served by
:mod:`agnes.marketplace.gitserve`, mounted in front of Flask). Callers and downloads are resolved
and audited by :mod:`agnes.marketplace.serving`, like the git form."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, g, jsonify, request, send_file

from agnes.conditional import etag_matches
from agnes.errors import AppError
from agnes.marketplace import packager, resolver
from agnes.marketplace.gitserve import GIT_PREFIX, REALM
from agnes.marketplace.serving import ServedCaller, Unauthenticated, credentials_token, record_download, served_caller
from agnes.models import utcnow

bp = Blueprint("serve", __name__)

# How a client without credentials is asked for them (the ZIP and info: a bearer token).
BEARER_CHALLENGE = 'Bearer realm="agnes"'


class _Abort(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@bp.errorhandler(_Abort)
def _abort(exc: _Abort) -> Response:
    return exc.response


def _caller(challenge: str, token: str | None = None) -> ServedCaller:
    """The caller (session, Bearer, or ``token``) and their served set; 401 with ``challenge``."""
    try:
        caller = served_caller(token, request.remote_addr, principal=g.principal)
    except Unauthenticated as exc:
        response = jsonify(AppError(401, "authentication_required", str(exc)).to_dict())
        response.status_code = 401
        response.headers["WWW-Authenticate"] = challenge
        raise _Abort(response) from None
    assert caller is not None
    return caller


@bp.get("/marketplace.zip")
def marketplace_zip():  # type: ignore[no-untyped-def]
    """The caller's served marketplace as a ZIP (Bearer PAT). 304 when ``If-None-Match`` matches."""
    caller = _caller(BEARER_CHALLENGE)
    etag = caller.served.etag
    headers = {"ETag": f'"{etag}"', "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(status=304, headers=headers)
    path = packager.zip_file(caller.served)
    response = send_file(
        path,
        mimetype="application/zip",
        as_attachment=True,
        download_name="agnes-marketplace.zip",
        etag=False,
        conditional=False,
    )
    response.headers.update(headers)
    record_download(caller, "zip", request.remote_addr)
    return response


@bp.get("/marketplace/info")
def marketplace_info():  # type: ignore[no-untyped-def]
    """The caller's served plugins (name, prefixed name, marketplace, version) and the ETag."""
    caller = _caller(BEARER_CHALLENGE)
    user = caller.principal.user
    return jsonify(
        user_id=user.id,
        email=user.email,
        marketplace_name=resolver.MARKETPLACE_NAME,
        etag=caller.served.etag,
        plugin_count=len(caller.served.plugins),
        plugins=[p.info() for p in caller.served.plugins],
        generated_at=utcnow().isoformat(),
    )


@bp.get(GIT_PREFIX + "/")
def marketplace_git_json():  # type: ignore[no-untyped-def]
    """``.../marketplace.git/`` as Claude Code 2.1 fetches it: a marketplace.json whose plugins
    are ``git-subdir`` sources on the git endpoint, so both URL forms install the same plugins.

    Claude Code sends HTTP Basic only when the URL carries ``user:token@``; the same
    credentials are then put in the git URLs it clones (otherwise git asks its helper).
    """
    caller = _caller(REALM, credentials_token(request.environ))
    base = request.host_url.rstrip("/")
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.password:
        scheme, _, host = base.partition("://")
        base = f"{scheme}://{quote(auth.username or 'x', safe='')}:{quote(auth.password, safe='')}@{host}"
    response = jsonify(packager.marketplace_json(caller.served, git_url=base + GIT_PREFIX))
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["ETag"] = f'"{caller.served.etag}"'
    record_download(caller, "json", request.remote_addr)
    return response
