"""Entry point of the ``agnes`` command. Subcommands load lazily, so ``agnes pull`` in a
SessionStart hook does not pay for modules it does not use."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from cli.lazy import LazyGroup

COMMANDS = {
    "login": "cli.commands.auth:login",
    "logout": "cli.commands.auth:logout",
    "whoami": "cli.commands.auth:whoami",
    "admin": "cli.commands.admin:admin",
    "marketplace": "cli.commands.marketplace:marketplace",
    "flea": "cli.commands.flea:flea",
    "git-credential": "cli.commands.marketplace:git_credential",
    "otel-headers": "cli.commands.claude_code:otel_headers",
    "pull": "cli.commands.data:pull",
    "query": "cli.commands.data:query",
    "catalog": "cli.commands.data:catalog",
    "schema": "cli.commands.data:schema",
    "describe": "cli.commands.data:describe",
    "sample": "cli.commands.remote:sample",
    "snapshot": "cli.commands.remote:snapshot",
    "disk-info": "cli.commands.remote:disk_info",
    "init": "cli.commands.init:init",
    "report": "cli.commands.report:report",
    "push": "cli.commands.push:push",
    "mark-private": "cli.commands.push:mark_private",
}


def _agnes_version() -> str:
    """``agnes.__version__`` read from the source file: importing ``agnes`` would load Flask, and
    ``importlib.metadata`` (click's version_option) scans every installed distribution."""
    import re
    from importlib.util import find_spec

    spec = find_spec("agnes")
    if spec is None or not spec.origin:
        return "unknown"
    with open(spec.origin, encoding="utf-8") as fh:
        match = re.search(r'^__version__ = "([^"]+)"', fh.read(), re.M)
    return match.group(1) if match else "unknown"


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"agnes, version {_agnes_version()}")
        ctx.exit()


@click.group(cls=LazyGroup, lazy_subcommands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """Agnes: your organization's Claude Code marketplace, data tables and telemetry."""


def _tolerant_streams() -> None:
    """Never crash on a console that cannot encode a character (Windows cs-CZ code pages, ASCII pipes)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``exit_code`` (the one way the CLI reports errors)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


def main() -> None:
    from cli.client import ApiError, ConfigError

    _tolerant_streams()
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        if exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
            click.echo(f"Try '{exc.ctx.command_path} -h' for help.", err=True)
        fail(exc.format_message(), exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except (ApiError, ConfigError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # a bug or an unforeseen OS error: one line, the traceback on request
        if os.environ.get("AGNES_DEBUG"):
            raise
        fail(f"{str(exc).strip() or 'unexpected failure'} (run again with AGNES_DEBUG=1 to see where it happened)")


if __name__ == "__main__":
    main()
