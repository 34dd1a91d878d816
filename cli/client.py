"""HTTP client for the Agnes API on the standard library (``http.client``): no heavy imports,
keep-alive per thread, errors turned into one readable line."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

from cli.config import ConfigError

__all__ = ["ApiError", "Client", "ConfigError", "from_config"]

USER_AGENT = "agnes-cli"
# Seconds to wait for the server before giving up on a request.
TIMEOUT = 60


class ApiError(Exception):
    """The server answered with an error, or could not be reached.

    Attributes:
        status: HTTP status (0 when the server was unreachable).
        code: the server's error code (``group_not_found``) when it sent one.
    """

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def network_reason(exc: BaseException) -> str:
    """Words for a failed connection or transfer, for people (never the exception's class name)."""
    import http.client

    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "the connection was reset"
    if isinstance(exc, http.client.IncompleteRead):
        return "the server closed the connection early"
    if isinstance(exc, http.client.HTTPException) and not isinstance(exc, http.client.RemoteDisconnected):
        return "the answer was not HTTP"
    return str(exc).strip() or "the connection was lost"


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, source: str = "the server") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.source = source

    def json(self) -> Any:
        """The body as JSON. Raises ApiError when it is not (a proxy's login page, a wrong URL)."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                self.status, f"{self.source} did not answer with JSON; is this the address of your Agnes server?"
            ) from None


class Client:
    """A connection to one Agnes server with one token."""

    def __init__(self, server: str, token: str | None) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"server URL must look like https://agnes.example.com, got {server!r}")
        self.server = server.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.base_path = parts.path.rstrip("/")
        self.token = token
        self._local = threading.local()

    def _connection(self, fresh: bool = False):  # type: ignore[no-untyped-def]
        import http.client

        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            if self.scheme == "https":
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (threads that end call it, so no socket is left open)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def open(self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        """Send a request and return the raw ``http.client.HTTPResponse`` (caller reads it)."""
        import http.client

        url = self.base_path + path
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt == 1)
            try:
                conn.request(method, url, body=body, headers=self.headers(headers))
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt == 1:
                    raise ApiError(0, f"the server at {self.server} closed the connection") from None
            except OSError as exc:
                raise ApiError(0, f"cannot reach {self.server}: {exc.strerror or exc}") from None
            except http.client.HTTPException as exc:  # e.g. BadStatusLine: not an HTTP server at all
                raise ApiError(
                    0, f"{self.server} did not answer like a web server ({network_reason(exc)}); check the server URL"
                ) from None
        raise AssertionError("unreachable")

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200, 201, 202, 204),
    ) -> Response:
        if params:
            query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
            if query:
                path = f"{path}?{query}"
        body = None
        headers = {}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        raw = self.open(method, path, body=body, headers=headers)
        data = raw.read()
        response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data, self.server)
        if response.status not in expect:
            raise error_from(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json_body=body if body is not None else {}).json()

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json_body=body).json()

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json_body=body).json()

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params=params).json()

    def stream(
        self, path: str, *, headers: dict[str, str] | None = None, chunk_size: int = 1 << 20
    ) -> tuple[Response, Iterator[bytes]]:
        """GET a body in chunks; raises ApiError for an error status."""
        raw = self.open("GET", path, headers=headers)
        meta = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, b"")
        if raw.status >= 400:
            meta.body = raw.read()
            raise error_from(meta)

        def chunks() -> Iterator[bytes]:
            while True:
                block = raw.read(chunk_size)
                if not block:
                    break
                yield block

        return meta, chunks()


def error_from(response: Response) -> ApiError:
    """One-line error from a server answer (its message, or the status)."""
    try:
        payload = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, dict) and payload.get("message"):
        field = f" (field: {payload['field']})" if payload.get("field") else ""
        return ApiError(response.status, f"{payload['message']}{field}", str(payload.get("error", "")))
    if response.status == 401:
        return ApiError(401, "not signed in or the token is invalid; run 'agnes login'", "authentication_required")
    return ApiError(response.status, f"the server answered HTTP {response.status}")


def from_config() -> Client:
    """A client for the configured server and token. Raises ConfigError when not logged in."""
    from cli import config

    settings = config.load()
    if not settings.server or not settings.token:
        raise ConfigError("not logged in: run 'agnes login --server https://your-agnes-host'")
    return Client(settings.server, settings.token)
