"""``agnes marketplace search|show``: browse the marketplace from a terminal.

The same data as the ``/marketplace`` pages (``GET /api/marketplace/items`` and
``GET /api/marketplace/curated/<slug>/<plugin>``; the flea tab ``GET /api/flea/entities`` and an
entry ``GET /api/flea/entities/<id>``), so terminal and browser agree.
"""

from __future__ import annotations

import click

from cli.client import from_config
from cli.output import print_json, print_table

REFRESH_HINT = "claude plugin marketplace update agnes"


def _stack_label(item: dict) -> str:  # type: ignore[type-arg]
    if item.get("is_system"):
        return "required"
    return "yes" if item.get("in_stack") else ""


@click.command("search")
@click.argument("words", nargs=-1)
@click.option("-q", "--query", default="", help="Words to find in name, description, author or category.")
@click.option(
    "--tab",
    type=click.Choice(["curated", "my", "flea"]),
    default="curated",
    show_default=True,
    help="curated: plugins granted to you; my: your stack; flea: the flea market.",
)
@click.option("--category", default="", help="Only this category ('Other' = plugins without one).")
@click.option(
    "--type",
    "item_type",
    type=click.Choice(["any", "skill", "agent", "command", "plugin"]),
    default="any",
    show_default=True,
    help="Only plugins that contain this kind of item (flea: entries of this type).",
)
@click.option(
    "--sort",
    type=click.Choice(["recent", "name", "most_installed", "updated"]),
    default="recent",
    show_default=True,
    help="most_installed and updated: the flea tab only.",
)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option("--limit", type=click.IntRange(1, 100), default=24, show_default=True, help="Plugins per page.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer.")
def search(
    words: tuple[str, ...],
    query: str,
    tab: str,
    category: str,
    item_type: str,
    sort: str,
    page: int,
    limit: int,
    as_json: bool,
) -> None:
    """Search the marketplace (WORDS and --query are combined; every word must match)."""
    q = " ".join([query, *words]).strip()
    if tab == "flea":
        _search_flea(q, category, item_type, sort, page, as_json)
        return
    data = from_config().get(
        "/api/marketplace/items", tab=tab, q=q, category=category, type=item_type, sort=sort, page=page, page_size=limit
    )
    if as_json:
        print_json(data)
        return
    print_table(
        [
            (
                i["id"],
                i["version"],
                i["category"],
                f"{i['skills']}/{i['agents']}/{i['commands']}",
                _stack_label(i),
                (i["description"] or "")[:60],
            )
            for i in data["items"]
        ],
        ["PLUGIN", "VERSION", "CATEGORY", "SKILLS/AGENTS/CMDS", "IN STACK", "DESCRIPTION"],
    )
    shown = len(data["items"])
    if data["total"] > shown:
        click.echo(f"\n{shown} of {data['total']} (page {data['page']} of {data['pages']}; --page to see more)")
    elif data["empty"] == "no_grants":
        click.echo("Nothing is shared with you yet: ask an Agnes administrator to grant one of your groups a plugin.")


def _search_flea(q: str, category: str, item_type: str, sort: str, page: int, as_json: bool) -> None:
    kind = "" if item_type == "any" else item_type
    data = from_config().get("/api/flea/entities", q=q, category=category, type=kind, sort=sort, page=page)
    if as_json:
        print_json(data)
        return
    print_table(
        [
            (
                i["id"],
                i["name"],
                i["owner_label"],
                i["kind"],
                str(i["install_count"]),
                "under review" if i.get("under_review") else ("yes" if i.get("installed") else ""),
                (i["description"] or "")[:50],
            )
            for i in data["items"]
        ],
        ["ID", "NAME", "OWNER", "TYPE", "INSTALLS", "IN STACK", "DESCRIPTION"],
    )
    if data["total"] > len(data["items"]):
        click.echo(
            f"\n{len(data['items'])} of {data['total']} (page {data['page']} of {data['pages']}; --page to see more)"
        )


def _show_flea(entity_id: str, as_json: bool) -> None:
    data = from_config().get(f"/api/flea/entities/{entity_id}")
    if as_json:
        print_json(data)
        return
    entity = data["entity"]
    click.echo(f"{entity['name']} {entity.get('served_label') or ''}".rstrip())
    click.echo(entity["description"] or "(no description)")
    click.echo(
        f"Flea market · by {entity['owner_label']}    Type: {entity['kind']}    Category: {entity['category']}"
        f"    Installs: {entity['install_count']}"
    )
    if data["installed"]:
        click.echo(
            f"Stack: in your stack as {entity['plugin_name']}@agnes"
            f" (remove with 'agnes marketplace uninstall {entity['id']}')"
        )
    elif data["can_install"]:
        click.echo(
            f"Stack: not in your stack (add with 'agnes marketplace install {entity['id']}', then run '{REFRESH_HINT}')"
        )
    else:
        click.echo(
            "Stack: cannot be added "
            + ("(archived)" if data["install_refusal"] == "entity_archived" else "(not approved yet)")
        )
    for version in data["versions"]:
        status = f" {version['status']}" if version.get("status") else ""
        reason = f" — {version['reason']}" if version.get("reason") else ""
        click.echo(f"  version {version['label']}{status}{reason}")
    if data["files"]:
        click.echo(f"\nFiles ({len(data['files'])})")
        for f in data["files"]:
            click.echo(f"  {f['path']} ({f['size']} bytes)")


@click.command("show")
@click.argument("plugin_id", metavar="MARKETPLACE/PLUGIN|FLEA-ID")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer.")
def show(plugin_id: str, as_json: bool) -> None:
    """A plugin's details (or a flea-market entry's, by its id): contents and whether it is in your stack."""
    if "/" not in plugin_id and plugin_id:
        _show_flea(plugin_id, as_json)
        return
    slug, sep, name = plugin_id.partition("/")
    if not sep or not slug or not name:
        raise click.UsageError("name the plugin as <marketplace>/<plugin>, e.g. acme/sql-helper")
    data = from_config().get(f"/api/marketplace/curated/{slug}/{name}")
    if as_json:
        print_json(data)
        return
    click.echo(f"{data['name']} {data['version'] or ''}".rstrip())
    click.echo(data["description"] or "(no description)")
    curator = f" · {data['curator']}" if data["curator"] else ""
    click.echo(f"Marketplace: {data['marketplace_name']}{curator}    Category: {data['category']}")
    if data["is_system"]:
        click.echo("Stack: required by your organization (every user has it)")
    elif data["in_stack"]:
        click.echo(f"Stack: in your stack (remove with 'agnes marketplace uninstall {data['id']}')")
    elif data["granted"]:
        click.echo(
            f"Stack: not in your stack (add with 'agnes marketplace install {data['id']}', then run '{REFRESH_HINT}')"
        )
    else:
        click.echo("Stack: not granted to any of your groups")
    for key, title in (("skills", "Skills"), ("agents", "Agents"), ("commands", "Commands")):
        items = data[key]
        click.echo(f"\n{title} ({len(items)})")
        for item in items:
            label = "/" + item["id"].replace("/", ":") if key == "commands" else item["name"]
            click.echo(f"  {label}" + (f" — {item['description'][:90]}" if item["description"] else ""))
    if data["hooks"]:
        click.echo(f"\nHooks ({len(data['hooks'])})")
        for hook in data["hooks"]:
            extra = [f"if {hook['condition']}"] if hook.get("condition") else []
            extra += [f"timeout {hook['timeout']:g} s"] if hook.get("timeout") else []
            extra += ["async"] if hook.get("async") else []
            detail = f" ({', '.join(extra)})" if extra else ""
            click.echo(f"  {hook['event']} [{hook['matcher'] or '*'}]{detail} {hook['command'][:80]}")
    if data["mcp_servers"]:
        click.echo(f"\nMCP servers ({len(data['mcp_servers'])})")
        for server in data["mcp_servers"]:
            click.echo(f"  {server['name']} ({server['type']}) {server['target']}")
