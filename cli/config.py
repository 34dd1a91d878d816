"""CLI configuration: ``~/.config/agnes/config.toml`` (mode 600) with server URL and token.

``AGNES_URL`` and ``AGNES_TOKEN`` override the file; ``AGNES_CONFIG_DIR`` moves it
(``XDG_CONFIG_HOME`` is honoured too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """The CLI is not configured (no server or token), or its configuration is damaged."""


def config_dir() -> Path:
    if os.environ.get("AGNES_CONFIG_DIR"):
        return Path(os.environ["AGNES_CONFIG_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agnes"


def config_path() -> Path:
    return config_dir() / "config.toml"


@dataclass(frozen=True)
class CliConfig:
    server: str
    token: str


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_file() -> dict[str, str]:
    import tomllib

    try:
        with config_path().open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path()} is not valid TOML ({exc}); fix it or run 'agnes login' again") from None
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


def load() -> CliConfig:
    """Settings from the environment, then the file; empty strings when unset."""
    stored = read_file() if not (os.environ.get("AGNES_URL") and os.environ.get("AGNES_TOKEN")) else {}
    server = os.environ.get("AGNES_URL") or stored.get("server", "")
    token = os.environ.get("AGNES_TOKEN") or stored.get("token", "")
    return CliConfig(server=server.rstrip("/"), token=token)


def save(server: str, token: str) -> Path:
    """Write the config atomically with mode 600 (the token is a secret)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"server = {_toml_string(server.rstrip('/'))}\ntoken = {_toml_string(token)}\n")
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return path


def clear() -> bool:
    try:
        config_path().unlink()
        return True
    except FileNotFoundError:
        return False
