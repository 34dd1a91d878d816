"""``agnes marketplace``: your plugin stack, and connecting Claude Code to Agnes.

``agnes marketplace setup`` keeps the access token out of Claude Code's files: it installs a
git credential helper (``agnes git-credential``) scoped to the Agnes server in your git
config, then runs ``claude plugin marketplace add <server>/marketplace.git``. Claude Code's
git asks the helper, which answers from the agnes config (mode 600).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from urllib.parse import urlsplit

import click

from cli.client import from_config
from cli.lazy import LazyGroup
from cli.output import print_json, print_listing, print_table

MARKETPLACE_NAME = "agnes"
# Subcommands kept in other modules, imported only when they run.
LAZY_COMMANDS = {
    "search": "cli.commands.marketplace_browse:search",
    "show": "cli.commands.marketplace_browse:show",
}


@click.group(cls=LazyGroup, lazy_subcommands=LAZY_COMMANDS)
def marketplace() -> None:
    """Plugins available to you, your stack, and Claude Code setup."""


@marketplace.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_plugins(as_json: bool) -> None:
    """Curated plugins granted to you; INSTALLED ones are in your served marketplace."""
    print_listing(
        from_config().get("/api/my-stack")["plugins"],
        as_json,
        lambda p: (
            p["id"],
            p["version"] or "",
            "yes" if p["subscribed"] else "",
            "system" if p["is_system"] else "",
            "" if p["available"] else "unavailable",
            (p["description"] or "")[:60],
        ),
        ["PLUGIN", "VERSION", "INSTALLED", "", "", "DESCRIPTION"],
    )


def _split(plugin_id: str) -> tuple[str, str]:
    slug, sep, name = plugin_id.partition("/")
    if not sep or not slug or not name:
        raise click.UsageError("name the plugin as <marketplace>/<plugin>, e.g. acme/sql-helper")
    return slug, name


@marketplace.command("install")
@click.argument("plugin_id", metavar="MARKETPLACE/PLUGIN|FLEA-ID")
def install(plugin_id: str) -> None:
    """Add a granted plugin, or a flea-market entry by its id, to your stack (Claude Code gets it
    on its next marketplace update)."""
    if plugin_id and "/" not in plugin_id:
        result = from_config().post(f"/api/flea/entities/{plugin_id}/install")
        entity = result["entity"]
        click.echo(f"Added {entity['plugin_name']} to your stack. In Claude Code, run:")
        click.echo(f"  claude plugin marketplace update {MARKETPLACE_NAME}")
        click.echo(f"  claude plugin install {entity['plugin_name']}@{MARKETPLACE_NAME}")
        return
    slug, name = _split(plugin_id)
    entry = from_config().post(f"/api/marketplace/curated/{slug}/{name}/install")
    click.echo(f"Added {entry['id']} to your stack. In Claude Code, run:")
    for command in entry.get("claude_commands") or [f"claude plugin marketplace update {MARKETPLACE_NAME}"]:
        click.echo(f"  {command}")


@marketplace.command("uninstall")
@click.argument("plugin_id", metavar="MARKETPLACE/PLUGIN|FLEA-ID")
def uninstall(plugin_id: str) -> None:
    """Remove a plugin (or a flea-market entry, by its id) from your stack."""
    if plugin_id and "/" not in plugin_id:
        result = from_config().delete(f"/api/flea/entities/{plugin_id}/install")
        entity = result["entity"]
        if not result.get("changed"):
            click.echo(f"{entity['plugin_name']} was not in your stack.")
            return
        click.echo(f"Removed {entity['plugin_name']} from your stack. To remove the installed copy, run:")
        click.echo(f"  claude plugin uninstall {entity['plugin_name']}@{MARKETPLACE_NAME}")
        return
    slug, name = _split(plugin_id)
    result = from_config().delete(f"/api/marketplace/curated/{slug}/{name}/install")
    if not result.get("removed"):
        click.echo(f"{result['id']} was not in your stack.")
        return
    click.echo(f"Removed {result['id']} from your stack. To remove the installed copy from Claude Code, run:")
    for command in result.get("claude_commands") or []:
        click.echo(f"  {command}")


@marketplace.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(as_json: bool) -> None:
    """What Agnes serves you right now (the plugins Claude Code sees) and its ETag."""
    data = from_config().get("/marketplace/info")
    if as_json:
        print_json(data)
        return
    click.echo(f"Marketplace '{data['marketplace_name']}', {data['plugin_count']} plugins, ETag {data['etag']}")
    print_table(
        [(p["name"], p["prefixed_name"], p["marketplace"], p["version"] or "") for p in data["plugins"]],
        ["NAME", "DIRECTORY", "MARKETPLACE", "VERSION"],
    )


def credential_scope(server: str) -> str:
    """``scheme://host[:port]``: the git config context the helper is limited to."""
    parts = urlsplit(server)
    return f"{parts.scheme}://{parts.netloc}"


def helper_command() -> str:
    """How git runs ``agnes git-credential`` (this interpreter, so virtualenvs keep working).

    ``-P``: git runs helpers in the repository it works on, and ``python -m`` would otherwise
    import a ``cli`` package from that directory (any project can have one) instead of ours.
    """
    return f"!{shlex.quote(sys.executable)} -P -m cli.main git-credential"


def credential_helper_commands(server: str) -> list[list[str]]:
    """The git commands that make ``agnes git-credential`` the only credential helper for ``server``."""
    key = f"credential.{credential_scope(server)}.helper"
    return [
        ["git", "config", "--global", "--unset-all", key],
        # An empty helper first resets helpers configured elsewhere for this host, then ours.
        ["git", "config", "--global", "--add", key, ""],
        ["git", "config", "--global", "--add", key, helper_command()],
    ]


def install_credential_helper(server: str) -> None:
    """Configure git (``~/.gitconfig``) to ask ``agnes git-credential`` for ``server``'s password.

    Raises:
        click.ClickException: git is missing or ``git config`` failed.
    """
    if shutil.which("git") is None:
        raise click.ClickException("git is not installed; Claude Code needs it to fetch marketplaces")
    unset, *adds = credential_helper_commands(server)
    subprocess.run(unset, capture_output=True)  # exit 5 when nothing was set: fine
    for command in adds:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise click.ClickException(f"git config failed: {done.stderr.strip() or done.returncode}")


@marketplace.command("setup")
@click.option("--print", "print_only", is_flag=True, help="Show the commands instead of running them.")
@click.option(
    "--claude",
    "claude_bin",
    envvar="AGNES_CLAUDE_BIN",
    default="claude",
    show_default=True,
    help="The Claude Code executable.",
)
def setup(print_only: bool, claude_bin: str) -> None:
    """Register Agnes in Claude Code, keeping the token in a git credential helper."""
    client = from_config()
    git_url = client.server + "/marketplace.git"
    claude_add = [claude_bin, "plugin", "marketplace", "add", git_url]
    if print_only:
        for command in [*credential_helper_commands(client.server), claude_add]:
            click.echo(shlex.join(command))
        click.echo(f"# then: claude plugin install <plugin>@{MARKETPLACE_NAME}")
        return
    install_credential_helper(client.server)
    if shutil.which(claude_bin) is None and not os.path.isfile(claude_bin):
        raise click.ClickException(
            f"Claude Code ('{claude_bin}') was not found. The credential helper is set up; after installing"
            f" Claude Code run: claude plugin marketplace add {git_url}"
        )
    known = known_marketplace_url()
    if known is not None and known.rstrip("/") != git_url:
        raise click.ClickException(
            f"Claude Code already has a marketplace named '{MARKETPLACE_NAME}' from {_without_userinfo(known)};"
            f" remove it with 'claude plugin marketplace remove {MARKETPLACE_NAME}' and run setup again"
        )
    if known is not None:  # set up before: refresh it instead
        claude_add = [claude_bin, "plugin", "marketplace", "update", MARKETPLACE_NAME]
    added = subprocess.run(claude_add, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if added.returncode != 0:
        lines = (added.stderr or added.stdout).strip().splitlines()
        raise click.ClickException(f"claude could not add the marketplace: {lines[-1] if lines else added.returncode}")
    click.echo(f"Claude Code now uses the '{MARKETPLACE_NAME}' marketplace from {git_url}.")
    click.echo(f"Install plugins with: claude plugin install <plugin>@{MARKETPLACE_NAME}")


def known_marketplace_url() -> str | None:
    """The URL Claude Code has for the ``agnes`` marketplace, from its own records (None if absent)."""
    import json
    from pathlib import Path

    path = Path.home() / ".claude" / "plugins" / "known_marketplaces.json"
    try:
        entry = json.loads(path.read_text()).get(MARKETPLACE_NAME)
    except (OSError, ValueError, AttributeError):
        return None
    source = entry.get("source") if isinstance(entry, dict) else None
    url = source.get("url") if isinstance(source, dict) else None
    return url if isinstance(url, str) else None


def _without_userinfo(url: str) -> str:
    """The URL without ``user:token@`` (never print a token)."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=host).geturl()


@click.command("git-credential")
@click.argument("operation")
def git_credential(operation: str) -> None:
    """Git credential helper: answers 'get' for the Agnes server with your access token.

    Git calls it as configured by 'agnes marketplace setup'; it reads git's request on stdin
    and prints nothing for any other host, so git moves on to its other helpers.
    """
    if operation != "get":
        return  # store/erase: the token lives in the agnes config, nothing to do
    request = {}
    for line in sys.stdin.read().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            request[key] = value
    from cli import config

    settings = config.load()
    if not settings.server or not settings.token:
        return
    server = urlsplit(settings.server)
    if request.get("protocol") != server.scheme or request.get("host") != server.netloc:
        return
    click.echo(f"username=agnes\npassword={settings.token}")
