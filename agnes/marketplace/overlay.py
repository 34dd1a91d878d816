"""Marketplace access tokens in the secrets overlay (see :mod:`agnes.secrets`).

The database stores only the variable *name* (``AGNES_MARKETPLACE_<SLUG>_TOKEN``).
"""

from __future__ import annotations

import re

from agnes.secrets import overlay_path, read_secret, write_secret

__all__ = ["overlay_path", "read_secret", "token_env_name", "valid_token", "write_secret"]

# Token values are single-line printable text; anything else would corrupt the file.
_VALUE_OK = re.compile(r"^[\x21-\x7e]{1,4096}$")


def token_env_name(slug: str) -> str:
    """``acme-tools`` → ``AGNES_MARKETPLACE_ACME_TOOLS_TOKEN``."""
    return "AGNES_MARKETPLACE_" + re.sub(r"[^A-Z0-9]", "_", slug.upper()) + "_TOKEN"


def valid_token(value: str) -> bool:
    return bool(_VALUE_OK.match(value))
