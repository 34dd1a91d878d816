"""Helpers shared by the benchmark scripts (run as ``python bench/<name>.py``)."""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(port: int, path: str = "/healthz", timeout: float = 30) -> None:
    """Block until ``GET path`` on the port answers (any status). Raises RuntimeError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def bench_app(data_dir: Path) -> Any:
    """An Agnes app on ``data_dir`` with embedded jobs and quiet logs, seed admin admin@example.com."""
    from agnes import create_app

    return create_app(
        {
            "AGNES_DATA_DIR": str(data_dir),
            "REDIS_URL": "",
            "AGNES_LOG_LEVEL": "WARNING",
            "AGNES_SEED_ADMIN_EMAIL": "admin@example.com",
        }
    )
