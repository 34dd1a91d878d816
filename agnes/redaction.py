"""Masking secrets in text and values: the one set of rules the audit log, job errors, feedback
excerpts and the CLI's ``agnes report`` preview share. Standard library only (the CLI imports it).

* :func:`redact` copies a JSON-like value: keys that look like secrets get ``[redacted]``, values
  that look like tokens are masked, strings are made storable and cut at :data:`MAX_VALUE`.
* :func:`redact_text` masks secret-looking substrings in free text: tokens, URL userinfo, URL
  query values and URL path segments that look like credentials.
"""

from __future__ import annotations

import re
from typing import Any

# Parameter names whose values are never recorded.
SECRET_KEY_RE = re.compile(r"(token|secret|password|passwd|credential|authorization|api[_-]?key|dsn|csrf)", re.I)
# Prefixes of well-known access tokens (GitHub, GitLab, Slack, AWS keys).
TOKEN_PREFIXES = (
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "gloas-",
    "gldt-",
    "glrt-",
    "glptt-",
    "glcbt-",
    "glft-",
    "xoxb-",
    "xoxp-",
    "AKIA",
)
# A URL path segment that is a credential: a known token prefix, or 32+ hex / base62 characters.
CREDENTIAL_SEGMENT_RE = re.compile(
    "(?:" + "|".join(re.escape(p) for p in TOKEN_PREFIXES) + r")[A-Za-z0-9_-]{8,}|[0-9a-fA-F]{32,}|[A-Za-z0-9]{32,}"
)
# Values that look like secrets even under an innocent key (our PATs, bearer strings, URLs with
# userinfo: ``user:password@`` and also a bare ``token@``, the form git hosts accept for tokens),
# well-known tokens anywhere, and the values of a URL's query string (``?access_token=...``).
SECRET_VALUE_RE = re.compile(
    r"(agnes_pat_[A-Za-z0-9_-]+|Bearer\s+\S+|://[^/\s@]+@"
    r"|(?<=[?&])[^=&\s#/]+=[^&\s#'\"]+"
    r"|(?<![A-Za-z0-9_-])(?:" + "|".join(re.escape(p) for p in TOKEN_PREFIXES) + r")[A-Za-z0-9_-]{8,})"
)
# An http(s)/git URL in free text, whose path segments are checked for credentials.
URL_RE = re.compile(r"\b(?:https?|git|ssh)://[^\s'\"<>]+")
# UTF-16 surrogate code points: a JSON body can carry them (``"\ud800"``), UTF-8 cannot.
SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
# The name of an environment variable (``AGNES_MARKETPLACE_ACME_TOKEN``): what the database stores
# instead of a secret. Kept under a key ending ``_env`` (``token_env``), where a value would be masked.
ENV_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]{0,127}")
REDACTED = "[redacted]"
# Longest string kept in audit params (characters); longer values are cut.
MAX_VALUE = 2000


def storable(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so it can be stored as UTF-8."""
    return SURROGATE_RE.sub("\ufffd", text)


def redact(value: Any, *, key: str = "") -> Any:
    """Copy of ``value`` with secret-looking keys and values replaced by ``[redacted]`` (``None``
    stays ``None``; a key ending ``_env`` keeps an environment variable's name, :data:`ENV_NAME_RE`) and every string
    made storable (:func:`storable`) and cut at :data:`MAX_VALUE` characters."""
    if key and SECRET_KEY_RE.search(key):
        if value is None:  # nothing to hide: "no token" stays visible as such
            return None
        if key.endswith("_env") and isinstance(value, str) and ENV_NAME_RE.fullmatch(value):
            return redact_text(value)  # a variable's name, not its value
        return REDACTED
    if isinstance(value, dict):
        return {storable(str(k)): redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return storable(redact_text(value))[:MAX_VALUE]
    return value


def redact_text(text: str) -> str:
    """Mask secret-looking substrings in free text (error messages, log lines): tokens, URL
    userinfo, URL query values (``?access_token=[redacted]``) and URL path segments that look like
    credentials (``https://host/[redacted]/x.git``)."""
    return SECRET_VALUE_RE.sub(_mask, URL_RE.sub(_mask_url_path, text))


def looks_like_credential(segment: str) -> bool:
    """True for a URL path segment that is a token (a known prefix, or 32+ hex/base62 characters)."""
    return CREDENTIAL_SEGMENT_RE.fullmatch(segment) is not None


def _mask_url_path(match: re.Match[str]) -> str:
    url = match.group()
    head, sep, rest = url.partition("://")
    parts = rest.split("/")
    for index in range(1, len(parts)):  # parts[0] is the host
        segment = parts[index].split("?", 1)[0].split("#", 1)[0]
        if segment.endswith(".git"):
            segment = segment[:-4]
        if looks_like_credential(segment):
            parts[index] = parts[index].replace(segment, REDACTED, 1)
    return head + sep + "/".join(parts)


def _mask(match: re.Match[str]) -> str:
    """``[redacted]``; URL userinfo keeps the URL's shape (``https://[redacted]@host``), a query
    parameter keeps its name (``access_token=[redacted]``)."""
    text = match.group()
    if text.startswith("://"):
        return f"://{REDACTED}@"
    if "=" in text and not text.startswith(("agnes_pat_", "Bearer")):
        return text.split("=", 1)[0] + "=" + REDACTED
    return REDACTED
