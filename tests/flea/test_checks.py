"""The validation half of the flea-market gate: hostile archives, layouts, frontmatter, placeholders."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from agnes.flea import archive
from agnes.flea.checks import Bundle, UploadRefused, check_upload, read_limited
from tests.flea import hostile
from tests.flea.hostile import SKILL_MD, build_zip


def refusal(
    data: bytes, kind: str = "skill", filename: str = "upload.zip", name: str = "churn-report"
) -> UploadRefused:
    with pytest.raises(UploadRefused) as caught:
        check_upload(data, filename, kind, name)
    return caught.value


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return hostile.bomb(100)


# -- hostile archives: each gets its status and code ----------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../evil.md", "skills/../../evil.md", "/etc/cron.d/evil", "..\\evil.md", "C:/Windows/evil.md", "c:evil.md"],
)
def test_zip_slip_variants_are_refused(name: str) -> None:
    data = build_zip({"SKILL.md": SKILL_MD, name: b"x"})
    assert name in zipfile.ZipFile(io.BytesIO(data)).namelist()  # the name really is in the archive
    error = refusal(data)
    assert (error.status, error.error, error.field) == (422, "zip_unsafe_path", "file")
    assert "write outside" in error.message


def test_nul_in_a_name_is_refused() -> None:
    error = refusal(hostile.with_nul_name())
    assert (error.status, error.error) == (422, "zip_unsafe_path")
    assert "NUL" in error.message


@pytest.mark.parametrize("kind", sorted(hostile.EXAMPLE_MODES))
def test_links_devices_and_fifos_are_refused(kind: str) -> None:
    error = refusal(hostile.with_mode("evil", hostile.EXAMPLE_MODES[kind], b"/home/analyst/.ssh/id_rsa"))
    assert (error.status, error.error) == (422, "zip_symlink")


def test_a_hard_link_two_names_for_one_member_is_refused() -> None:
    data = hostile.hard_link()
    assert len({i.header_offset for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}) == 1
    error = refusal(data)
    assert (error.status, error.error) == (422, "zip_symlink")
    assert "hard link" in error.message


def test_a_bomb_of_100_kb_is_refused_while_inflating(bomb: bytes) -> None:
    assert len(bomb) < 200_000
    error = refusal(bomb)
    assert (error.status, error.error, error.field) == (413, "zip_too_large_uncompressed", "file")
    assert "times" in error.message  # stopped on the ratio, long before 100 MB


def test_a_bomb_whose_headers_lie_about_sizes_is_still_refused(bomb: bytes) -> None:
    data = hostile.lying_bomb(bomb)
    assert all(i.file_size == 100 for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    error = refusal(data)
    assert error.status in (413, 422) and error.error in ("zip_too_large_uncompressed", "zip_invalid")


def test_the_uncompressed_cap_counts_bytes_not_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_UNCOMPRESSED", 5_000)
    data = build_zip({"SKILL.md": SKILL_MD, "notes.md": b"plain text\n" * 1_000}, method=zipfile.ZIP_STORED)
    error = refusal(data)
    assert (error.status, error.error) == (413, "zip_too_large_uncompressed")
    assert "once unpacked" in error.message  # the absolute cap, not the ratio


def test_ten_thousand_entries_are_refused() -> None:
    error = refusal(hostile.many_entries(10_000))
    assert (error.status, error.error) == (422, "too_many_files")
    assert "10,000" in error.message


def test_an_encrypted_member_is_refused() -> None:
    error = refusal(hostile.encrypted())
    assert (error.status, error.error) == (422, "zip_encrypted")


@pytest.mark.parametrize(
    "names",
    [("SKILL.md", "skill.md"), ("docs/Guide.md", "docs/guide.md"), ("Docs/a.md", "docs/b.md"), ("notes", "notes/a")],
)
def test_duplicate_paths_also_differing_only_in_case_are_refused(names: tuple[str, str]) -> None:
    entries = {"SKILL.md": SKILL_MD} if "SKILL.md" not in names else {}
    entries.update({name: b"x" for name in names})
    if names[0] == "SKILL.md":
        entries["SKILL.md"] = SKILL_MD
    error = refusal(build_zip(entries))
    assert (error.status, error.error) == (422, "zip_duplicate_path")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bin/tool", hostile.ELF_HEADER),
        ("bin/tool-mac", hostile.MACHO_FAT),
        ("bin/tool.txt", hostile.PE_HEADER),
        ("lib/native.so", b"not even an ELF"),
        ("lib/helper.jar", b"PK"),
    ],
)
def test_executables_by_magic_bytes_and_binaries_by_name_are_refused(name: str, content: bytes) -> None:
    error = refusal(build_zip({"SKILL.md": SKILL_MD, name: content}))
    assert (error.status, error.error) == (422, "disallowed_file")
    assert name in error.message


def test_an_elf_uploaded_as_a_single_markdown_file_is_refused() -> None:
    error = refusal(hostile.ELF_HEADER, filename="SKILL.md")
    assert (error.status, error.error) == (422, "disallowed_file")


def test_text_that_merely_starts_with_mz_is_not_an_executable() -> None:
    body = SKILL_MD + b"\nMZ is the name of a mountain pass\n"
    bundle = check_upload(build_zip({"SKILL.md": SKILL_MD, "notes.md": b"MZ " + body}), "s.zip", "skill", "s")
    assert "skills/s/notes.md" in bundle.files


@pytest.mark.parametrize("data", [b"PK\x03\x04 truncated", b"not a zip at all"])
def test_garbage_is_zip_invalid(data: bytes) -> None:
    error = refusal(data)
    assert (error.status, error.error) == (422, "zip_invalid")


def test_bzip2_members_are_refused_as_unsupported() -> None:
    error = refusal(build_zip({"SKILL.md": SKILL_MD}, method=zipfile.ZIP_BZIP2))
    assert (error.status, error.error) == (422, "zip_invalid")
    assert "compression" in error.message


# -- type, name and size -------------------------------------------------------------------------


def test_type_and_name_are_checked_first() -> None:
    assert (refusal(SKILL_MD, kind="theme", filename="SKILL.md").status, refusal(SKILL_MD, "theme").error) == (
        400,
        "invalid_type",
    )
    for name in ("Churn", "1churn", "churn_report", "", "a" * 65, "churn report"):
        error = refusal(SKILL_MD, filename="SKILL.md", name=name)
        assert (error.status, error.error, error.field) == (400, "invalid_name", "name")


def test_read_limited_stops_at_the_cap() -> None:
    assert read_limited(io.BytesIO(b"x" * 100), 100) == b"x" * 100
    with pytest.raises(UploadRefused) as caught:
        read_limited(io.BytesIO(b"x" * 3_000_000), 2_000_000)
    assert (caught.value.status, caught.value.error, caught.value.field) == (413, "file_too_large", "file")
    assert caught.value.to_dict() == {"error": "file_too_large", "message": caught.value.message, "field": "file"}


# -- layouts ----------------------------------------------------------------------------------------


def test_a_single_skill_md_becomes_a_skill_folder() -> None:
    bundle = check_upload(SKILL_MD, "SKILL.md", "skill", "churn")
    assert isinstance(bundle, Bundle)
    assert bundle.files == {"skills/churn/SKILL.md": SKILL_MD}
    assert (bundle.kind, bundle.name, bundle.size) == ("skill", "churn-report", len(SKILL_MD))
    assert bundle.description.startswith("Builds the weekly churn report")


def test_a_skill_zip_keeps_its_files_and_drops_the_enclosing_folder_and_junk() -> None:
    data = build_zip(
        {
            "churn/SKILL.md": SKILL_MD,
            "churn/scripts/report.py": b"print('hi')\n",
            "churn/.DS_Store": b"\0\0",
            "__MACOSX/churn/._SKILL.md": b"\0",
        }
    )
    bundle = check_upload(data, "churn.zip", "skill", "churn")
    assert sorted(bundle.files) == ["skills/churn/SKILL.md", "skills/churn/scripts/report.py"]


def test_equal_content_gives_equal_sha256_whatever_the_zip_order() -> None:
    one = check_upload(build_zip({"SKILL.md": SKILL_MD, "a.md": b"a"}), "x.zip", "skill", "x")
    two = check_upload(build_zip({"a.md": b"a", "SKILL.md": SKILL_MD}), "y.zip", "skill", "x")
    three = check_upload(build_zip({"a.md": b"b", "SKILL.md": SKILL_MD}), "y.zip", "skill", "x")
    assert one.sha256 == two.sha256 != three.sha256
    assert len(one.sha256) == 64


def test_agent_and_command_files_are_laid_out_by_entity_name() -> None:
    agent = b"---\nname: sql-reviewer\ndescription: Reviews SQL for correctness and cost before it runs.\n---\nBody\n"
    command = b"---\ndescription: Summarise yesterday's pipeline failures.\n---\nRun the summary.\n"
    assert check_upload(agent, "reviewer.md", "agent", "reviewer").files == {"agents/reviewer.md": agent}
    bundle = check_upload(build_zip({"cmd/summary.md": command}), "c.zip", "command", "summary")
    assert bundle.files == {"commands/summary.md": command}
    assert bundle.name == "summary"  # commands have no name in their frontmatter


def test_a_plugin_keeps_its_tree() -> None:
    manifest = b'{"name": "revenue-kit", "description": "Revenue dashboards and the checks behind them."}'
    data = build_zip(
        {
            "revenue-kit/.claude-plugin/plugin.json": manifest,
            "revenue-kit/skills/mrr/SKILL.md": SKILL_MD,
            "revenue-kit/hooks/hooks.json": b"{}",
        }
    )
    bundle = check_upload(data, "kit.zip", "plugin", "revenue")
    assert sorted(bundle.files) == [".claude-plugin/plugin.json", "hooks/hooks.json", "skills/mrr/SKILL.md"]
    assert (bundle.name, bundle.description) == ("revenue-kit", "Revenue dashboards and the checks behind them.")


@pytest.mark.parametrize(
    ("kind", "entries", "code"),
    [
        ("skill", {"README.md": b"# hi"}, "missing_skill_md"),
        ("skill", {"a/b/SKILL.md": SKILL_MD, "c.md": b""}, "missing_skill_md"),
        ("plugin", {"SKILL.md": SKILL_MD}, "plugin_json_invalid"),
        ("plugin", {".claude-plugin/plugin.json": b"{not json"}, "plugin_json_invalid"),
        ("plugin", {".claude-plugin/plugin.json": b"[1]"}, "plugin_json_invalid"),
        ("plugin", {".claude-plugin/plugin.json": b'{"name": "x"}'}, "plugin_json_invalid"),
        ("agent", {"a.md": SKILL_MD, "b.md": SKILL_MD}, "missing_agent_md"),
        ("command", {"run.sh": b"echo"}, "missing_command_md"),
    ],
)
def test_the_wrong_layout_for_the_type_is_refused(kind: str, entries: dict[str, bytes], code: str) -> None:
    error = refusal(build_zip(entries), kind=kind)
    assert (error.status, error.error, error.field) == (422, code, "file")


def test_a_plugin_must_be_a_zip() -> None:
    assert refusal(SKILL_MD, kind="plugin", filename="SKILL.md").error == "plugin_json_invalid"


# -- frontmatter and placeholders ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"# No frontmatter\n\nJust text.\n", "no frontmatter"),
        (b"---\ndescription: Builds the weekly churn report.\n---\nBody\n", "'name'"),
        (b"---\nname: churn\n---\nBody\n", "'description'"),
        (b"---\nname: &n churn\ndescription: *n\n---\nBody\n", "aliases"),
    ],
)
def test_frontmatter_needs_name_and_description_and_no_aliases(text: bytes, words: str) -> None:
    error = refusal(text, filename="SKILL.md")
    assert (error.status, error.error) == (422, "frontmatter_invalid")
    assert words in error.message and "SKILL.md" in error.message


def test_aliases_in_any_markdown_file_of_a_plugin_are_refused() -> None:
    manifest = b'{"name": "kit", "description": "Revenue dashboards and the checks behind them."}'
    bad = b"---\nx: &a [1]\ny: [*a, *a]\n---\n"
    error = refusal(build_zip({".claude-plugin/plugin.json": manifest, "commands/x.md": bad}), kind="plugin")
    assert error.error == "frontmatter_invalid"


@pytest.mark.parametrize(
    "description",
    ["TODO", "TODO: describe", "<your description>", "Lorem ipsum dolor sit amet", "{{description}}", "tbd",
     "[TODO: Complete and informative explanation of what the skill does]", "Description"],
)  # fmt: skip
def test_placeholder_descriptions_are_refused(description: str) -> None:
    text = f"---\nname: churn\ndescription: '{description}'\n---\nBody\n".encode()
    error = refusal(text, filename="SKILL.md")
    assert (error.status, error.error, error.field) == (422, "placeholder_text", "file")


def test_the_skill_creator_scaffold_body_is_a_placeholder() -> None:
    text = SKILL_MD + b"\n## Overview\n\n[TODO: 1-2 sentences explaining what this skill enables]\n"
    assert refusal(text, filename="SKILL.md").error == "placeholder_text"


@pytest.mark.parametrize(
    "description",
    ["Helps fill in the quarterly tax forms from the ledger.", "Adds a description to every undocumented table.",
     "Finds TODO comments in the dbt project and files them as tickets."],
)  # fmt: skip
def test_real_descriptions_that_mention_template_words_pass(description: str) -> None:
    text = f"---\nname: helper\ndescription: {description}\n---\nBody\n".encode()
    assert check_upload(text, "SKILL.md", "skill", "helper").description == description


def test_every_skill_and_agent_of_the_fixture_marketplaces_passes() -> None:
    from tests.conftest import FIXTURES_DIR

    root = FIXTURES_DIR / "marketplaces"
    skills = sorted(root.rglob("SKILL.md"))
    agents = sorted(p for p in root.rglob("*.md") if p.parent.name == "agents")
    assert len(skills) > 300 and len(agents) > 100
    for path in skills:
        check_upload(path.read_bytes(), "SKILL.md", "skill", "s")
    for path in agents:
        check_upload(path.read_bytes(), path.name, "agent", "a")


def test_modes_of_regular_files_and_folders_are_fine() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        folder = zipfile.ZipInfo("churn/")
        folder.create_system, folder.external_attr = 3, (stat.S_IFDIR | 0o755) << 16 | 0x10
        out.writestr(folder, b"")
        info = zipfile.ZipInfo("churn/SKILL.md")
        info.create_system, info.external_attr = 3, (stat.S_IFREG | 0o644) << 16
        out.writestr(info, SKILL_MD)
    assert list(check_upload(buf.getvalue(), "c.zip", "skill", "churn").files) == ["skills/churn/SKILL.md"]


def test_a_plugin_without_plugin_json_is_accepted_by_its_components() -> None:
    """Marketplaces often keep a plugin's manifest in marketplace.json only (the plugin folder holds
    just skills/, agents/, commands/): Claude Code loads such a plugin, so the flea market takes it
    and generates plugin.json when serving."""
    agent = b"---\nname: reviewer\ndescription: Reviews pull requests for style.\n---\nBe thorough.\n"
    data = build_zip({"kit/skills/mrr/SKILL.md": SKILL_MD, "kit/agents/reviewer.md": agent})
    bundle = check_upload(data, "kit.zip", "plugin", "revenue")
    assert sorted(bundle.files) == ["agents/reviewer.md", "skills/mrr/SKILL.md"]
    assert (bundle.name, bundle.description) == ("revenue", "")
    only_skills = check_upload(build_zip({"skills/mrr/SKILL.md": SKILL_MD}), "kit.zip", "plugin", "revenue")
    assert sorted(only_skills.files) == ["skills/mrr/SKILL.md"]  # the component folder is not stripped
    nothing = refusal(build_zip({"kit/README.md": b"# kit"}), kind="plugin")
    assert (nothing.error, nothing.field) == ("plugin_json_invalid", "file")
