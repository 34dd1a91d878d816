"""Real processes for the deployment tests: start a command with an environment, read its log,
stop it with a signal and measure how long it takes to exit."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

# The interpreter's bin directory: gunicorn and the other console scripts of this virtualenv.
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nothing listens on at the moment (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Agnes/Redis settings, plus ``extra``; this checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "REDIS_URL", "PORT"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", AGNES_LOG_LEVEL="INFO")
    env.update(extra)
    return env


class Service:
    """One long-running process; its stdout and stderr go to ``log_path``.

    It runs in a session of its own, so a signal reaches the process itself only, as
    ``docker compose stop`` sends SIGTERM to a container's main process.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until the log matches ``pattern`` (a regex); fails if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log_text())
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before /{pattern}/:\n{self.tail()}")
            time.sleep(0.1)
        raise AssertionError(f"{self.name}: no /{pattern}/ within {timeout} s:\n{self.tail()}")

    def tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def signal(self, sig: int = signal.SIGTERM) -> float:
        """Send ``sig`` to the process; returns the monotonic time it was sent."""
        self.proc.send_signal(sig)
        return time.monotonic()

    def wait_exit(self, since: float, timeout: float = 10.0) -> float:
        """Seconds from ``since`` until the process exited; fails (and kills it) after ``timeout``."""
        try:
            self.proc.wait(timeout=max(0.0, since + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} still running {timeout} s after the signal:\n{self.tail()}") from None
        return time.monotonic() - since

    def stop(self, timeout: float = 10.0) -> float:
        """SIGTERM, then the seconds it took to exit (at most ``timeout``)."""
        return self.wait_exit(self.signal(signal.SIGTERM), timeout)

    def kill(self) -> None:
        """Clean-up: SIGKILL the process and everything it started (its session)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        self._log.close()
