"""Small file-system primitives shared by every area: inter-process locks and atomic writes."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path, *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, mode 600, if needed) for the block.

    Serializes processes on this machine (web threads, RQ work-horses, CLI commands); the lock
    is released when the block exits, or by the kernel if the process dies. With
    ``blocking=False`` a lock held elsewhere raises ``BlockingIOError`` instead of waiting.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            fd = -1
            raise
        yield
    finally:
        if fd >= 0:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new file, never a mix.

    The temporary file is created with ``mode`` from the start (a secret is never readable by
    others, even briefly) and renamed over the target.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per call: two threads of one process may replace the same file at once.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
        os.chmod(path, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
