"""A small thread-safe LRU map (``functools.lru_cache`` cannot key on a content hash alone)."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any


class LRU:
    """``get`` / ``put`` with least-recently-used eviction beyond ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[Any, Any] = OrderedDict()
        self.lock = Lock()

    def get(self, key: Any) -> Any:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)
