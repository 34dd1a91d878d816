"""Recently resolved callers, reused without the state store while nothing they depend on changed.

Resolving a caller costs a state-store unit (attach, two or three point queries, detach:
about 1 ms on an idle machine, 3-4 ms of CPU under load), which dominated cheap requests
such as the data manifest and the marketplace listing. So a resolved :class:`Principal` is
kept per process for at most :data:`TTL` seconds, keyed by the hash of the session id or the
token's hash and client IP, together with the **access marker** read before the lookup.

The access marker (:data:`agnes.markers.ACCESS`) is replaced whenever something a principal
depends on changes: a token or browser session revoked, a user deactivated, a membership added or removed
(``credentials_changed`` and ``membership_changed`` signals), inside the write unit and again
after its commit, so every process, and every thread of this one, misses the cache on its next
request. :data:`TTL` equals the resolution at which a token's last use is
recorded, so ``last_used_at`` stays as accurate as without the cache; a new client IP is a
different key, so a token's first use from a new address is still seen and audited.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from flask import Flask, current_app

from agnes import markers, signals
from agnes.access import Principal
from agnes.models.tokens import LAST_USED_RESOLUTION

# Seconds a resolved principal is reused (equal to the last-use recording resolution).
TTL = float(LAST_USED_RESOLUTION)
# Principals kept per process before the cache is emptied and refilled.
MAX_ENTRIES = 4096


def token_key(raw: str, ip: str | None) -> tuple[str, str, str]:
    return ("pat", hashlib.sha256(raw.encode()).hexdigest(), ip or "")


def session_key(session_hash: str) -> tuple[str, str, str]:
    """Key of a browser session: the stored hash of its session id (revoking it bumps the marker)."""
    return ("session", session_hash, "")


class PrincipalCache:
    """key → (principal, access marker, monotonic deadline)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[tuple[str, str, str], tuple[Principal, str, float]] = {}

    def get(self, key: tuple[str, str, str], marker: str) -> Principal | None:
        with self.lock:
            entry = self.entries.get(key)
        if entry is None or entry[1] != marker or entry[2] < time.monotonic():
            return None
        return entry[0]

    def put(self, key: tuple[str, str, str], principal: Principal, marker: str, ttl: float = TTL) -> None:
        if ttl <= 0:
            return
        with self.lock:
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.clear()
            self.entries[key] = (principal, marker, time.monotonic() + min(ttl, TTL))

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def principal_cache() -> PrincipalCache:
    return current_app.extensions["agnes_principals"]


def _on_access_change(sender: Any, **kwargs: Any) -> None:
    """Signal receiver (inside the write unit): bump now and again after the commit, so a
    thread that read the old rows while the unit was open cannot keep them."""
    markers.ACCESS.bump()


def init_app(app: Flask) -> None:
    app.extensions["agnes_principals"] = PrincipalCache()
    signals.credentials_changed.connect(_on_access_change, weak=False)
    signals.membership_changed.connect(_on_access_change, weak=False)
