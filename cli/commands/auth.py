"""``agnes login``, ``agnes logout``, ``agnes whoami``."""

from __future__ import annotations

import click

from cli import config
from cli.client import ApiError, Client, ConfigError, from_config
from cli.output import print_json


@click.command()
@click.option("--server", envvar="AGNES_URL", help="Agnes server URL, e.g. https://agnes.example.com.")
@click.option("--token", help="Personal access token (prompted for, hidden, when omitted).")
@click.option(
    "--git-helper/--no-git-helper",
    default=True,
    show_default=True,
    help="Install 'agnes git-credential' as git's credential helper for this server (in ~/.gitconfig).",
)
def login(server: str | None, token: str | None, git_helper: bool) -> None:
    """Store the server URL and a personal access token (checked before saving), and let git use
    it for this server's marketplace."""
    try:
        current = config.load()
    except ConfigError:  # a damaged config file is what login replaces
        current = config.CliConfig(server="", token="")
    server = (server or current.server or click.prompt("Agnes server URL")).rstrip("/")
    if not token:
        click.echo(f"Create a token at {server}/me (Personal access tokens), then paste it here.")
        token = click.prompt("Token", hide_input=True).strip()
    client = Client(server, token)
    try:
        me = client.get("/api/me")
    except ApiError as exc:
        # A bad token never replaces a working configuration.
        raise click.ClickException(f"login failed, nothing saved: {exc}") from None
    if not isinstance(me, dict) or not isinstance(me.get("user"), dict):
        raise click.ClickException(f"login failed, nothing saved: {server} is not an Agnes server")
    path = config.save(server, token)
    click.echo(f"Logged in to {server} as {me['user']['email']} (saved to {path}).")
    if git_helper:
        from cli.commands.marketplace import install_credential_helper

        try:
            install_credential_helper(server)
        except click.ClickException as exc:
            click.echo(f"note: the git credential helper was not installed: {exc.format_message()}", err=True)
        else:
            click.echo(f"git now gets your token for {server} from 'agnes git-credential'.")


@click.command()
def logout() -> None:
    """Forget the stored server and token."""
    click.echo("Logged out." if config.clear() else "Not logged in.")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def whoami(as_json: bool) -> None:
    """Show who the stored token belongs to."""
    client = from_config()
    me = client.get("/api/me")
    if as_json:
        print_json({**me, "server": client.server})
        return
    groups = ", ".join(g["name"] for g in me["groups"])
    click.echo(f"{me['user']['email']} on {client.server}")
    click.echo(f"groups: {groups}{'  (admin)' if me['is_admin'] else ''}")
