"""Reading plugin contents for the marketplace pages: markdown sanitizing, frontmatter, safe paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from agnes.markdown import render_markdown
from agnes.plugin.contents import plugin_contents, read_item, read_plugin_contents
from agnes.plugin.frontmatter import parse_frontmatter
from agnes.plugin.paths import safe_join
from tests.conftest import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "marketplaces"


# -- markdown ---------------------------------------------------------------------------------


def test_markdown_with_script_is_neutralized() -> None:
    html = str(
        render_markdown(
            "# Title\n\n<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n"
            '<a href="javascript:alert(2)" onclick="steal()">raw</a> [md](javascript:alert(3)) '
            '[ok](https://example.com/docs)\n\n<iframe src="https://evil.example"></iframe>'
            '<div style="position:fixed">styled</div><form action="/x"><input name=a></form>'
        )
    )
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("h1").get_text() == "Title"
    assert soup.find_all(["script", "img", "iframe", "form", "input"]) == []
    for tag in soup.find_all(True):
        assert not [a for a in tag.attrs if a.startswith("on") or a == "style"], tag
    hrefs = [a.get("href") for a in soup.find_all("a")]
    assert "https://example.com/docs" in hrefs
    assert not [h for h in hrefs if h and h.lower().startswith("javascript")]
    assert "alert('x')" not in soup.get_text()
    ok = soup.find("a", href="https://example.com/docs")
    assert "noopener" in ok["rel"] and "nofollow" in ok["rel"]


def test_markdown_keeps_tables_code_and_details() -> None:
    soup = BeautifulSoup(
        str(
            render_markdown(
                "| a | b |\n|---|---|\n| 1 | 2 |\n\n```py\nx = 1\n```\n\n<details><summary>More</summary>body</details>"
            )
        ),
        "html.parser",
    )
    assert [td.get_text() for td in soup.find_all("td")] == ["1", "2"]
    assert soup.find("pre").find("code").get_text() == "x = 1\n"
    assert soup.find("details").find("summary").get_text() == "More"
    assert str(render_markdown(None)) == "" and str(render_markdown("  \n")) == ""


# -- frontmatter ------------------------------------------------------------------------------


def test_frontmatter_plain() -> None:
    doc = parse_frontmatter("---\nname: wcag-audit\ndescription: Audit pages.\n---\n\n# Body\n")
    assert doc.fields == {"name": "wcag-audit", "description": "Audit pages."}
    assert doc.body == "# Body\n"
    assert doc.error is None


@pytest.mark.parametrize(
    ("text", "fields", "body"),
    [
        ("# No frontmatter\nText", {}, "# No frontmatter\nText"),
        ("\ufeff---\r\nname: Bom Crlf\r\n---\r\nBody\r\n", {"name": "Bom Crlf"}, "Body\n"),
        ("---  \nname: trailing\n---   \nB", {"name": "trailing"}, "B"),
        ("---\nname: only\n---", {"name": "only"}, ""),
        ("---\n---\nBody", {}, "Body"),
        ("---\nname: never closed\nBody", {}, "---\nname: never closed\nBody"),
        ("---\nname: Dots end\n...\nBody", {"name": "Dots end"}, "Body"),
    ],
)
def test_frontmatter_oddities(text: str, fields: dict[str, str], body: str) -> None:
    doc = parse_frontmatter(text)
    assert doc.fields == fields
    assert doc.body == body


def test_frontmatter_invalid_yaml_falls_back_to_key_lines() -> None:
    doc = parse_frontmatter("---\nname: My Skill/Thing\ndescription: Use when: the user asks: x\n  and more\n---\nB")
    assert doc.error and "YAML" in doc.error
    assert doc.fields["name"] == "My Skill/Thing"
    assert doc.fields["description"] == "Use when: the user asks: x and more"
    assert doc.body == "B"


def test_frontmatter_not_a_mapping_and_typed_values() -> None:
    assert parse_frontmatter("---\n- a\n- b\n---\nB").fields == {}
    assert parse_frontmatter("---\n- a\n---\nB").error
    doc = parse_frontmatter("---\nname: x\ntools: [Read, Write]\ncreated: 2024-01-02\nbeta: true\n---\n")
    assert doc.text("tools") == "Read, Write"
    assert doc.text("created") == "2024-01-02"
    assert doc.text("beta") == "yes"
    assert doc.text("missing") == ""


def test_every_fixture_markdown_file_parses() -> None:
    count = 0
    for path in FIXTURES.rglob("*.md"):
        doc = parse_frontmatter(path.read_text(errors="replace"))
        assert isinstance(doc.fields, dict)
        count += 1
    assert count > 500


# -- safe paths -------------------------------------------------------------------------------


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    root = tmp_path / "plugin"
    (root / "skills" / "ok").mkdir(parents=True)
    (root / "skills" / "ok" / "SKILL.md").write_text("---\nname: ok\n---\nHello")
    (tmp_path / "secret.md").write_text("---\nname: secret\n---\nTop secret")
    return root


@pytest.mark.parametrize(
    "relpath",
    ["../secret.md", "skills/../../secret.md", "/etc/passwd", "skills\\ok\\SKILL.md", "", "a\x00b", "C:/x", "nope.md"],
)
def test_safe_join_rejects_escapes(plugin_dir: Path, relpath: str) -> None:
    assert safe_join(plugin_dir, relpath) is None


def test_safe_join_accepts_inside_and_blocks_symlink_escape(plugin_dir: Path) -> None:
    assert safe_join(plugin_dir, "skills/ok/SKILL.md") == (plugin_dir / "skills/ok/SKILL.md").resolve()
    (plugin_dir / "skills" / "leak").symlink_to(plugin_dir.parent)
    (plugin_dir / "skills" / "file-link.md").symlink_to(plugin_dir.parent / "secret.md")
    (plugin_dir / "skills" / "inside-link.md").symlink_to(plugin_dir / "skills" / "ok" / "SKILL.md")
    assert safe_join(plugin_dir, "skills/leak/secret.md") is None
    assert safe_join(plugin_dir, "skills/file-link.md") is None
    assert safe_join(plugin_dir, "skills/inside-link.md") is not None


def test_symlinked_skill_outside_plugin_is_not_listed(plugin_dir: Path) -> None:
    outside = plugin_dir.parent / "outside-skill"
    outside.mkdir()
    (outside / "SKILL.md").write_text("---\nname: outside\n---\nNo")
    (plugin_dir / "skills" / "linked").symlink_to(outside)
    (plugin_dir / "agents").mkdir()
    (plugin_dir / "agents" / "evil.md").symlink_to(plugin_dir.parent / "secret.md")
    contents = read_plugin_contents(plugin_dir)
    assert [s.id for s in contents.skills] == ["ok"]
    assert contents.agents == ()


# -- contents of real plugins -----------------------------------------------------------------


def test_contents_of_a_wshobson_plugin() -> None:
    contents = read_plugin_contents(FIXTURES / "wshobson-agents" / "plugins" / "accessibility-compliance")
    assert [s.id for s in contents.skills] == ["screen-reader-testing", "wcag-audit-patterns"]
    assert [a.id for a in contents.agents] == ["ui-visual-validator"]
    assert [c.id for c in contents.commands] == ["accessibility-audit"]
    assert contents.skills[1].description.startswith("Conduct WCAG 2.2")
    assert contents.skills[1].relpath == "skills/wcag-audit-patterns/SKILL.md"


def test_contents_with_path_overrides_hooks_mcp_and_nested_skills() -> None:
    pptx = read_plugin_contents(FIXTURES / "wshobson-agents" / "plugins" / "pptx-deck-creation")
    assert len(pptx.skills) == 5 and len(pptx.agents) == 1
    protect = read_plugin_contents(FIXTURES / "wshobson-agents" / "plugins" / "protect-mcp")
    assert {h.event for h in protect.hooks} == {"PreToolUse", "PostToolUse"}
    zoom = read_plugin_contents(FIXTURES / "anthropics-knowledge-work-plugins" / "partner-built" / "zoom-plugin")
    ids = {s.id for s in zoom.skills}
    assert {"meeting-sdk", "meeting-sdk/web", "meeting-sdk/web/client-view"} <= ids
    bio = read_plugin_contents(FIXTURES / "anthropics-knowledge-work-plugins" / "bio-research")
    assert "pubmed" in {m.name for m in bio.mcp_servers}
    assert bio.readme_html


def test_strict_false_entry_lists_skills_from_the_entry(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for name in ("one", "two"):
        (root / name).mkdir(parents=True)
        (root / name / "SKILL.md").write_text(f"---\nname: {name.title()} Skill\n---\nBody {name}")
    contents = read_plugin_contents(root, {"name": "x", "source": "./", "strict": False, "skills": ["./one", "./two"]})
    assert [(s.id, s.name) for s in contents.skills] == [("one", "One Skill"), ("two", "Two Skill")]


def test_read_item_lists_skill_files_and_caches_by_hash(tmp_path: Path) -> None:
    src = FIXTURES / "wshobson-agents" / "plugins" / "accessibility-compliance"
    root = tmp_path / "p"
    shutil.copytree(src, root)
    contents = plugin_contents(root, "hash-1")
    assert plugin_contents(root, "hash-1") is contents
    skill = contents.find("skill", "wcag-audit-patterns")
    assert skill is not None
    doc = read_item(root, skill)
    assert doc is not None
    assert {f.relpath for f in doc.files} == {"SKILL.md", "references/details.md"}
    assert doc.frontmatter.fields["name"] == "wcag-audit-patterns"
    assert BeautifulSoup(str(doc.body_html), "html.parser").find("h1").get_text() == "WCAG Audit Patterns"
    assert read_plugin_contents(tmp_path / "missing").warnings


# -- plugin pages: YAML aliases in a third-party SKILL.md must not expand ("billion laughs") -------


def test_frontmatter_aliases_are_not_expanded(tmp_path):
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 5)]
    skill = tmp_path / "plugin" / "skills" / "bomb"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: bomb\n" + "\n".join(lines) + "\ndescription: *l4\n---\nBody.\n")
    contents = read_plugin_contents(tmp_path / "plugin")
    [item] = contents.skills
    assert item.name == "bomb" and len(item.description) < 100
    document = read_item(tmp_path / "plugin", item)
    assert document is not None and "aliases" in (document.frontmatter.error or "")
    assert all(len(str(v)) < 1000 for v in document.frontmatter.fields.values())
