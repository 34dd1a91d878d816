"""``agnes push`` (SessionEnd hook: upload transcripts) and ``agnes mark-private``."""

from __future__ import annotations

import os
import sys

import click

from cli.commands.data import WORKSPACE_HELP, _echo


def _workspace(option: str | None, payload: dict | None = None):  # type: ignore[no-untyped-def]
    from pathlib import Path

    from cli.workspace import Workspace

    if option or os.environ.get("AGNES_WORKSPACE"):
        return Workspace(option).root
    cwd = (payload or {}).get("cwd")
    if isinstance(cwd, str) and cwd and Path(cwd).is_dir():
        return Workspace(cwd).root
    return Workspace(None).root


@click.command()
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.option("--dry-run", is_flag=True, help="Show what would be uploaded; send nothing.")
@click.option("--status", "show_status", is_flag=True, help="Show the outcome of the last push and exit.")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def push(quiet: bool, as_json: bool, dry_run: bool, show_status: bool, workspace: str | None) -> None:
    """Upload this workspace's queued Claude Code sessions (run by the SessionEnd hook).

    In a hook (a JSON payload on stdin) it always exits 0 and leaves the outcome for
    'agnes push --status'.
    """
    from cli import push as pushing
    from cli.client import ApiError, ConfigError, from_config
    from cli.output import print_json

    payload = None if show_status else pushing.read_hook_payload(sys.stdin)
    root = _workspace(workspace, payload)
    if show_status:
        status = pushing.read_status(root)
        if as_json:
            print_json(status)
        elif status is None:
            _echo("agnes push has not run in this workspace yet.")
        else:
            _echo(f"last push {status.get('at')}: {status.get('summary', '')}")
            for error in status.get("errors") or []:
                _echo(f"error: {error}", err=True)
        return
    in_hook = payload is not None
    if payload is not None:
        session_id, transcript = payload.get("session_id"), payload.get("transcript_path")
        if isinstance(session_id, str) and isinstance(transcript, str) and transcript:
            try:
                pushing.enqueue(pushing.Paths(root), session_id, transcript)
            except ValueError as exc:
                _echo(f"error: {exc}", err=True)
    try:
        client = from_config()
        result = pushing.push(client, root, dry_run=dry_run)
    except pushing.PushBusy as exc:
        pushing.write_status(root, {"summary": str(exc), "errors": []})
        if not quiet:
            _echo(str(exc))
        return
    except (ApiError, ConfigError, OSError) as exc:
        pushing.write_status(root, {"summary": "failed", "errors": [str(exc)]})
        if in_hook:
            return
        raise click.ClickException(str(exc)) from None
    summary = (
        f"{len(result.uploaded)} uploaded, {len(result.unchanged)} unchanged, {len(result.requeued)} queued for"
        f" retry, {len(result.dropped)} dropped, {len(result.skipped_private)} private"
    )
    if not dry_run:
        pushing.write_status(root, {"summary": summary, **result.to_dict()})
    if as_json:
        print_json(result.to_dict())
    elif dry_run:
        _echo("would upload: " + (", ".join(result.would_upload) or "nothing"))
    elif not quiet:
        _echo(f"agnes push: {summary}")
    if not as_json:
        for error in result.errors:
            _echo(f"error: {error}", err=True)
    if result.errors and not in_hook and not dry_run:
        sys.exit(1)


@click.command("mark-private")
@click.option("--session", "session_id", help="Session id (default: $CLAUDE_CODE_SESSION_ID).")
@click.option("--workspace", type=click.Path(file_okay=False), help=WORKSPACE_HELP)
def mark_private(session_id: str | None, workspace: str | None) -> None:
    """Keep a session off the server: never upload it, and delete what was uploaded of it."""
    from cli import push as pushing
    from cli.client import ApiError, ConfigError, from_config

    session_id = session_id or os.environ.get("CLAUDE_CODE_SESSION_ID")
    if not session_id:
        raise click.ClickException("no session: pass --session ID or run it inside Claude Code (/agnes-private)")
    root = _workspace(workspace)
    try:
        session_id = pushing.check_session_id(session_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    pushing.mark_private_locally(root, session_id)
    try:
        answer = pushing.confirm_private(from_config(), root, session_id)
    except (ApiError, ConfigError) as exc:
        _echo(f"Session {session_id} is private here: it will never be uploaded from {root}.")
        _echo(f"warning: the server was not told yet ({exc}); the next agnes push tells it.", err=True)
        return
    removed = answer.get("files", 0)
    _echo(f"Session {session_id} is private: never uploaded; {removed} uploaded file(s) deleted from the server.")
