"""``agnes admin``: groups, members, grants and users (needs an admin's token)."""

from __future__ import annotations

from urllib.parse import quote

import click

from cli.client import ApiError, from_config
from cli.lazy import LazyGroup
from cli.output import print_json, print_table

# Other areas add their admin subcommands here (name -> "module:attribute").
ADMIN_COMMANDS: dict[str, str] = {
    "access": "cli.commands.admin_access:access",
    "activity": "cli.commands.admin_activity:activity",
    "sessions": "cli.commands.admin_sessions:sessions",
    "claude-code": "cli.commands.claude_code:claude_code",
    "marketplace": "cli.commands.admin_marketplace:marketplace",
    "register-table": "cli.commands.admin_data:register_table",
    "update-table": "cli.commands.admin_data:update_table",
    "unregister-table": "cli.commands.admin_data:unregister_table",
    "list-tables": "cli.commands.admin_data:list_tables",
    "sync-tables": "cli.commands.admin_data:sync_tables",
    "metrics": "cli.commands.admin_data:metrics",
    "usage": "cli.commands.admin_usage:usage",
    "ask": "cli.commands.admin_usage:ask",
}


@click.group(cls=LazyGroup, lazy_subcommands=ADMIN_COMMANDS)
def admin() -> None:
    """Administer Agnes (groups, grants, users, ...)."""


def resolve_group(client, ref: str) -> dict:  # type: ignore[no-untyped-def]
    """A group by id or case-insensitive name."""
    groups = client.get("/api/admin/groups")["groups"]
    for group in groups:
        if group["id"] == ref or group["name"].lower() == ref.lower():
            return group
    raise click.ClickException(f"no group named '{ref}' (see 'agnes admin group list')")


def resolve_member(client, group: dict, email: str) -> dict:  # type: ignore[no-untyped-def]
    members = client.get(f"/api/admin/groups/{group['id']}/members")["members"]
    for member in members:
        if member["email"].lower() == email.strip().lower():
            return member
    raise click.ClickException(f"{email} is not a member of {group['name']}")


# -- groups --------------------------------------------------------------------------------


@admin.group()
def group() -> None:
    """Groups and their members."""


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def group_list(as_json: bool) -> None:
    """List groups with member and grant counts."""
    groups = from_config().get("/api/admin/groups")["groups"]
    if as_json:
        print_json(groups)
        return
    print_table(
        [(g["name"], g["id"], g["member_count"], g["grant_count"], "yes" if g["is_system"] else "") for g in groups],
        ["NAME", "ID", "MEMBERS", "GRANTS", "SYSTEM"],
    )


@group.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the group is for.")
def group_create(name: str, description: str) -> None:
    """Create a group."""
    created = from_config().post("/api/admin/groups", {"name": name, "description": description})
    click.echo(f"Created group {created['name']} ({created['id']}).")


@group.command("delete")
@click.argument("group_ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def group_delete(group_ref: str, yes: bool) -> None:
    """Delete a group (its memberships and grants go with it)."""
    client = from_config()
    target = resolve_group(client, group_ref)
    if not yes:
        click.confirm(f"Delete group {target['name']} and its {target['grant_count']} grants?", abort=True)
    client.delete(f"/api/admin/groups/{target['id']}")
    click.echo(f"Deleted group {target['name']}.")


@group.command("members")
@click.argument("group_ref")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def group_members(group_ref: str, as_json: bool) -> None:
    """List a group's members."""
    client = from_config()
    target = resolve_group(client, group_ref)
    members = client.get(f"/api/admin/groups/{target['id']}/members")["members"]
    if as_json:
        print_json(members)
        return
    print_table(
        [
            (m["email"], m["name"], ",".join(m["sources"]) or "automatic", "" if m["active"] else "deactivated")
            for m in members
        ],
        ["EMAIL", "NAME", "SOURCE", "STATUS"],
    )


@group.command("add-member")
@click.argument("group_ref")
@click.argument("email")
def group_add_member(group_ref: str, email: str) -> None:
    """Add a user (by email) to a group."""
    client = from_config()
    target = resolve_group(client, group_ref)
    client.post(f"/api/admin/groups/{target['id']}/members", {"email": email})
    click.echo(f"Added {email} to {target['name']}.")


@group.command("remove-member")
@click.argument("group_ref")
@click.argument("email")
def group_remove_member(group_ref: str, email: str) -> None:
    """Remove a user (by email) from a group."""
    client = from_config()
    target = resolve_group(client, group_ref)
    member = resolve_member(client, target, email)
    client.delete(f"/api/admin/groups/{target['id']}/members/{member['user_id']}")
    click.echo(f"Removed {email} from {target['name']}.")


# -- grants --------------------------------------------------------------------------------


@admin.group()
def grant() -> None:
    """Grants of resources (plugins, tables) to groups."""


@grant.command("list")
@click.option("--type", "resource_type", help="Only this resource type.")
@click.option("--group", "group_ref", help="Only this group (name or id).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def grant_list(resource_type: str | None, group_ref: str | None, as_json: bool) -> None:
    """List grants."""
    client = from_config()
    group_id = resolve_group(client, group_ref)["id"] if group_ref else None
    grants = client.get("/api/admin/grants", resource_type=resource_type, group_id=group_id)["grants"]
    if as_json:
        print_json(grants)
        return
    print_table(
        [(g["id"], g["group_name"], g["resource_type"], g["resource_id"]) for g in grants],
        ["ID", "GROUP", "TYPE", "RESOURCE"],
    )


@grant.command("create")
@click.argument("group_ref")
@click.argument("resource_type")
@click.argument("resource_id")
def grant_create(group_ref: str, resource_type: str, resource_id: str) -> None:
    """Grant RESOURCE_TYPE RESOURCE_ID to a group (e.g. marketplace_plugin acme/sql-helper)."""
    client = from_config()
    target = resolve_group(client, group_ref)
    created = client.post(
        "/api/admin/grants",
        {"group_id": target["id"], "resource_type": resource_type, "resource_id": resource_id},
    )
    click.echo(f"Granted {resource_type} {resource_id} to {target['name']} (grant {created['id']}).")


@grant.command("delete")
@click.argument("grant_id", required=False)
@click.option("--group", "group_ref", help="With --type and --resource: find the grant instead of its id.")
@click.option("--type", "resource_type")
@click.option("--resource", "resource_id")
def grant_delete(
    grant_id: str | None, group_ref: str | None, resource_type: str | None, resource_id: str | None
) -> None:
    """Revoke a grant by id, or by --group/--type/--resource."""
    client = from_config()
    if not grant_id:
        if not (group_ref and resource_type and resource_id):
            raise click.UsageError("give a GRANT_ID, or all of --group, --type and --resource")
        target = resolve_group(client, group_ref)
        found = [
            g
            for g in client.get("/api/admin/grants", resource_type=resource_type, group_id=target["id"])["grants"]
            if g["resource_id"] == resource_id
        ]
        if not found:
            raise click.ClickException(f"{target['name']} has no {resource_type} grant for {resource_id}")
        grant_id = found[0]["id"]
    client.delete(f"/api/admin/grants/{quote(grant_id, safe='')}")
    click.echo(f"Revoked grant {grant_id}.")


@grant.command("resource-types")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def grant_resource_types(as_json: bool) -> None:
    """List the resource types that can be granted."""
    types = from_config().get("/api/admin/resource-types")["resource_types"]
    if as_json:
        print_json(types)
        return
    print_table([(t["key"], t["id_format"], t["description"]) for t in types], ["TYPE", "ID FORMAT", "DESCRIPTION"])


# -- users ---------------------------------------------------------------------------------


@admin.group()
def user() -> None:
    """Users."""


@user.command("list")
@click.option("--search", default="", help="Filter by email or name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def user_list(search: str, as_json: bool) -> None:
    """List users (every page)."""
    client = from_config()
    users, page = [], 1
    while True:
        found = client.get("/api/admin/users", q=search or None, page=page, per_page=500)
        users += found["users"]
        if page >= found.get("pages", 1):
            break
        page += 1
    if as_json:
        print_json(users)
        return
    print_table(
        [(u["email"], u["name"], "active" if u["active"] else "deactivated", u["id"]) for u in users],
        ["EMAIL", "NAME", "STATUS", "ID"],
    )


@user.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
def user_add(email: str, name: str) -> None:
    """Add a user, who can then sign in with an email link."""
    try:
        created = from_config().post("/api/admin/users", {"email": email, "name": name})
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added {created['email']} ({created['id']}).")


@user.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every section of the user page).")
def user_show(email: str, as_json: bool) -> None:
    """A user's profile, groups (with each membership's source), tokens and what they are served."""
    found = from_config().get(f"/api/admin/users/{quote(email, safe='@')}")
    if as_json:
        print_json(found)
        return
    sections = found["sections"]
    profile = sections["profile"]["user"]
    click.echo(f"{profile['email']}  {profile['name'] or ''}".rstrip())
    click.echo(f"status: {'active' if profile['active'] else 'deactivated'}")
    click.echo(
        f"last sign-in: {profile['last_login_at'] or 'never'} ({', '.join(sections['profile']['methods']) or '-'})"
    )
    click.echo("")
    print_table(
        [
            (m["group_name"], m["origin"], ",".join(m["sources"]) or "automatic")
            for m in sections["groups"]["memberships"]
        ],
        ["GROUP", "ORIGIN", "MEMBERSHIP"],
    )
    click.echo("")
    print_table(
        [
            (
                t["name"],
                t["prefix"],
                t["status"],
                t["expires_at"] or "never",
                t["last_used_at"] or "",
                t["last_used_ip"] or "",
            )
            for t in sections["tokens"]["tokens"]
        ],
        ["TOKEN", "PREFIX", "STATUS", "EXPIRES", "LAST USE", "FROM"],
    )
    served = sections["stack"]["served"]
    click.echo("")
    click.echo("served to Claude Code: " + (", ".join(p["name"] for p in served) if served else "nothing"))


def _set_active(email: str, active: bool) -> None:
    path = f"/api/admin/users/{quote(email, safe='@')}/{'activate' if active else 'deactivate'}"
    try:
        found = from_config().post(path)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{found['email']} {'reactivated' if active else 'deactivated'}.")


@user.command("deactivate")
@click.argument("email")
def user_deactivate(email: str) -> None:
    """Deactivate a user: sign-in and every token are refused at once (grants stay)."""
    _set_active(email, False)


@user.command("activate")
@click.argument("email")
def user_activate(email: str) -> None:
    """Reactivate a deactivated user."""
    _set_active(email, True)
