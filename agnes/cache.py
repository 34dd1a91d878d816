"""Short-lived values every process sees: cached aggregates, once-per-window claims, heartbeats.

With ``REDIS_URL`` the values live in Redis (the job queue's connection), so web processes,
workers and the cron process share them. In the embedded mode there is one process, and they
live in a dictionary of that process (the only place a per-process value is the shared one).

Redis being unreachable never fails a caller: :meth:`SharedCache.get` misses,
:meth:`SharedCache.set` is skipped and :meth:`SharedCache.claim` grants the claim (doing the
work twice beats never doing it). Keys are prefixed with ``agnes:cache:``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from flask import current_app

log = logging.getLogger(__name__)

# Prefix of every key this module writes in Redis.
PREFIX = "agnes:cache:"


class SharedCache:
    """JSON values with a time to live, in Redis or (embedded) in this process.

    Args:
        redis: a ``redis.Redis`` client, or None for the in-process store.
    """

    def __init__(self, redis: Any = None) -> None:
        self.redis = redis
        self.lock = threading.Lock()
        self.local: dict[str, tuple[str, float | None]] = {}  # key -> (JSON, monotonic deadline)

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None when absent, expired or unreachable."""
        if self.redis is not None:
            try:
                raw = self.redis.get(PREFIX + key)
            except Exception as exc:
                log.warning("shared cache unreachable (get %s): %s", key, type(exc).__name__)
                return None
            return json.loads(raw) if raw is not None else None
        with self.lock:
            entry = self.local.get(key)
            if entry is None:
                return None
            if entry[1] is not None and entry[1] <= time.monotonic():
                del self.local[key]
                return None
            return json.loads(entry[0])

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store ``value`` (JSON-serializable) for ``ttl`` seconds (None: until replaced)."""
        raw = json.dumps(value, default=str)
        if self.redis is not None:
            try:
                self.redis.set(PREFIX + key, raw, px=int(ttl * 1000) if ttl else None)
            except Exception as exc:
                log.warning("shared cache unreachable (set %s): %s", key, type(exc).__name__)
            return
        with self.lock:
            self.local[key] = (raw, time.monotonic() + ttl if ttl else None)

    def claim(self, key: str, ttl: float) -> bool:
        """True for the first caller in ``ttl`` seconds to claim ``key`` (in any process), False
        for the others; True as well when Redis cannot be asked."""
        if self.redis is not None:
            try:
                return bool(self.redis.set(PREFIX + key, "1", nx=True, px=int(ttl * 1000)))
            except Exception as exc:
                log.warning("shared cache unreachable (claim %s): %s", key, type(exc).__name__)
                return True
        now = time.monotonic()
        with self.lock:
            entry = self.local.get(key)
            if entry is not None and (entry[1] is None or entry[1] > now):
                return False
            self.local[key] = ("1", now + ttl)
            if len(self.local) > 10_000:  # claims of many filters: drop the expired ones
                self.local = {k: v for k, v in self.local.items() if v[1] is None or v[1] > now}
            return True

    def delete(self, key: str) -> None:
        if self.redis is not None:
            try:
                self.redis.delete(PREFIX + key)
            except Exception as exc:
                log.warning("shared cache unreachable (delete %s): %s", key, type(exc).__name__)
            return
        with self.lock:
            self.local.pop(key, None)


def shared_cache() -> SharedCache:
    """The app's :class:`SharedCache` (created by :func:`agnes.jobs.init_app`, which owns the
    Redis connection)."""
    return current_app.extensions["agnes_cache"]
