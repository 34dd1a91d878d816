"""``agnes report``: send feedback to the Agnes admins, with the end of the current session."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.commands.data import WORKSPACE_HELP


@click.command()
@click.option("--message", "-m", help="What went wrong or what is missing (asked for when omitted).")
@click.option("--no-session", is_flag=True, help="Send no part of the current Claude Code session.")
@click.option("--session", "session_id", help="Session id (default: $CLAUDE_CODE_SESSION_ID, else the newest here).")
@click.option("--yes", "-y", is_flag=True, help="Send without asking (needed when there is no terminal).")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def report(message: str | None, no_session: bool, session_id: str | None, yes: bool, workspace: str | None) -> None:
    """Send a feedback report: your message, the last 50 turns of the current Claude Code session
    (secrets masked) and versions (Agnes, Claude Code, OS). Shows exactly what will be sent and
    asks first; with no terminal and no --yes it sends nothing and exits 2."""
    import os

    from cli.client import from_config
    from cli.main import _agnes_version
    from cli.report import bundle, environment, find_transcript, is_private, preview, read_turns
    from cli.workspace import Workspace

    client = from_config()  # not signed in: say so before anything is bundled or asked
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not yes and not interactive:
        click.echo("error: nothing sent: there is no terminal to confirm on; add --yes to send.", err=True)
        sys.exit(2)
    if not message:
        if not interactive:
            click.echo("error: nothing sent: give the report's text with --message.", err=True)
            sys.exit(2)
        message = click.prompt("What went wrong or what is missing")
    root = Workspace(workspace).root
    turns = None
    claude_code = None
    found_id = None
    notes = []
    if not no_session:
        found_id, transcript = find_transcript(session_id or os.environ.get("CLAUDE_CODE_SESSION_ID"), Path.cwd())
        if found_id and is_private(root, found_id):
            notes.append(f"Session {found_id} is marked private: none of it is sent.")
            found_id = None
        elif found_id and transcript is None:
            notes.append(f"The transcript of session {found_id} is not on this machine: no excerpt is sent.")
            found_id = None
        elif transcript is not None:
            turns, claude_code = read_turns(transcript)
        else:
            notes.append("No Claude Code session found here: no excerpt is sent.")
    body = bundle(message, session_id=found_id, turns=turns, env=environment(_agnes_version(), claude_code))
    shown = preview(body)
    for note in notes:
        click.echo(note, err=True)
    click.echo("This report will be sent to your Agnes administrators:")
    click.echo(shown)
    if not yes and not click.confirm("Send it?", default=False):
        click.echo("Nothing sent.")
        return
    sent = client.post("/api/feedback", {**body, "ack_preview": shown})
    click.echo(f"Sent report {sent['id']}. Its status shows on your profile page (/me).")
