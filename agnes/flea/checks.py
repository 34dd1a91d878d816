"""What an upload must be before it is stored: the validation half of the flea-market gate.

:func:`check_upload` turns an upload (a ZIP, or one Markdown file) into a :class:`Bundle` in the
plugin layout it is stored in, or raises :class:`UploadRefused`. It writes nothing and does not
scan for secrets or dangerous commands (:func:`agnes.flea.scan.scan_bundle` does, afterwards, so
a validation refusal always comes first and the scan rules cannot be probed). Category, name
uniqueness and the quota need the database and are the service's (``agnes.flea.service``).

Refusals (status, code; ``field`` is ``type``, ``name`` or ``file``):

* 400 ``invalid_type``, ``invalid_name``;
* 413 ``file_too_large`` (:func:`read_limited`), ``zip_too_large_uncompressed``;
* 422 ``zip_invalid``, ``zip_encrypted``, ``zip_unsafe_path``, ``zip_symlink``,
  ``zip_duplicate_path``, ``too_many_files``, ``disallowed_file`` (see :mod:`agnes.flea.archive`);
* 422 ``file_not_text`` (a Markdown file that is not UTF-8);
* 422 ``missing_skill_md``, ``missing_agent_md``, ``missing_command_md``, ``plugin_json_invalid``
  (the upload is not the type chosen);
* 422 ``frontmatter_invalid`` (no frontmatter, no ``name`` or ``description``, YAML aliases);
* 422 ``placeholder_text`` (a description left as template text, see :data:`PLACEHOLDER_PHRASES`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import BinaryIO

from agnes.flea import archive
from agnes.flea.refusal import UploadRefused
from agnes.plugin.frontmatter import parse_frontmatter

__all__ = ["KINDS", "NAME_RE", "Bundle", "UploadRefused", "check_upload", "read_limited"]

# The entity types an analyst can publish.
KINDS = ("skill", "agent", "command", "plugin")
# Entity names: what Claude Code accepts as a plugin/skill name, lowercase so "-by-<handle>" stays readable.
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
# Bytes read from an upload stream per step.
READ_CHUNK = 1024 * 1024
# Where a plugin declares itself (Claude Code's layout).
PLUGIN_JSON = ".claude-plugin/plugin.json"
# Where Claude Code finds a plugin's components when plugin.json does not list them (its default
# locations): a plugin may leave plugin.json out, the marketplace entry naming it.
COMPONENT_DIRS = frozenset({"skills", "agents", "commands", "hooks"})
# Descriptions that are only a placeholder word (compared lowercased, punctuation stripped).
PLACEHOLDER_WORDS = frozenset(
    {"todo", "tbd", "tba", "fixme", "xxx", "description", "desc", "n/a", "na", "none", "placeholder",
     "test", "foo", "bar", "asdf", "skill", "agent", "command", "plugin", "my skill", "my plugin",
     "my agent", "my command", "lorem ipsum"}
)  # fmt: skip
# Template text nobody replaced, anywhere in a description (lowercased substring match).
PLACEHOLDER_PHRASES = (
    "lorem ipsum", "your description here", "description goes here", "description here",
    "describe what this skill does", "describe what the skill does", "describe what this plugin does",
    "insert description", "todo: describe", "todo: write", "todo: add", "[todo", "<todo", "(todo",
    "<description>", "<your description", "<your skill", "{{description}}", "your-skill-name",
    "a short description of what this", "one-line description of", "brief description of what this",
)  # fmt: skip
# Descriptions that start like a note to self rather than a description.
PLACEHOLDER_START = re.compile(r"^\s*(todo|tbd|fixme|xxx)\b", re.IGNORECASE)
# Unfilled {{variable}} templating in a description.
TEMPLATE_VAR = re.compile(r"\{\{\s*[\w.-]+\s*\}\}")
# Skill-creator's scaffold marks unwritten sections like this in the body.
BODY_PLACEHOLDER = re.compile(r"\[TODO[:\]]|lorem ipsum", re.IGNORECASE)


@dataclass(frozen=True)
class Bundle:
    """A checked upload, in the plugin layout stored under ``store/<entity>/v<N>/``.

    Attributes:
        kind: ``skill`` | ``agent`` | ``command`` | ``plugin``.
        name: the name the upload gives itself (frontmatter ``name``, plugin.json ``name``, or for
            a command without one, the entity name); display only, the entity name is the form's.
        description: from the same place, one line.
        files: path -> bytes. ``skills/<entity-name>/SKILL.md`` (+ the ZIP's other files beside
            it), ``agents/<entity-name>.md``, ``commands/<entity-name>.md``, or a plugin's tree
            as uploaded (one enclosing folder stripped). No plugin.json is generated here.
        sha256: hex digest over the sorted (path, bytes) pairs; equal content, equal digest.
        size: total uncompressed bytes.
    """

    kind: str
    name: str
    description: str
    files: dict[str, bytes]
    sha256: str
    size: int


def read_limited(stream: BinaryIO, max_bytes: int) -> bytes:
    """Read ``stream`` to the end, refusing as soon as more than ``max_bytes`` arrive.

    Raises:
        UploadRefused: 413 ``file_too_large`` (field ``file``); nothing past the cap is kept.
    """
    parts: list[bytes] = []
    total = 0
    while chunk := stream.read(READ_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise UploadRefused(
                413, "file_too_large", f"The file is larger than {_mb(max_bytes)}; upload a smaller one.", "file"
            )
        parts.append(chunk)
    return b"".join(parts)


def bundle_sha256(files: dict[str, bytes]) -> str:
    """Hex sha256 over ``path NUL length NUL bytes`` of each file, in path order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        digest.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return digest.hexdigest()


def check_upload(data: bytes, filename: str, kind: str, name: str) -> Bundle:
    """Validate an upload and lay it out as a plugin tree.

    Args:
        data: the uploaded bytes (already capped by :func:`read_limited`).
        filename: the client's file name (only its suffix matters).
        kind: one of :data:`KINDS`.
        name: the entity name from the form, ``^[a-z][a-z0-9-]{0,63}$``.

    Returns:
        The :class:`Bundle`.

    Raises:
        UploadRefused: see the module docstring for every status and code.
    """
    if kind not in KINDS:
        raise UploadRefused(400, "invalid_type", f"Type must be one of: {', '.join(KINDS)}.", "type")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UploadRefused(
            400,
            "invalid_name",
            "The name must start with a lowercase letter and use only lowercase letters, digits and "
            "dashes (at most 64 characters).",
            "name",
        )
    if archive.is_zip(data):
        files = _strip_top_folder(archive.read_zip(data), kind)
    elif filename.lower().endswith((".md", ".markdown")):
        files = _single_markdown(data, filename, kind)
    elif filename.lower().endswith(".zip"):
        raise UploadRefused(422, "zip_invalid", "The file is not a readable ZIP archive.", "file")
    else:
        raise UploadRefused(422, "zip_invalid", "Upload a ZIP archive or a single Markdown (.md) file.", "file")
    layout = {"skill": _skill, "agent": _single_file, "command": _single_file, "plugin": _plugin}[kind]
    files, shown_name, description = layout(files, kind, name)
    for path, content in files.items():
        if path.lower().endswith(".md"):
            _no_aliases(path, content)
    return Bundle(
        kind=kind,
        name=shown_name,
        description=description,
        files=files,
        sha256=bundle_sha256(files),
        size=sum(len(v) for v in files.values()),
    )


def _single_markdown(data: bytes, filename: str, kind: str) -> dict[str, bytes]:
    archive._check_magic(filename, data[: archive.CHUNK])
    if kind == "plugin":
        raise _type_refusal("plugin_json_invalid", f"A plugin is uploaded as a ZIP holding {PLUGIN_JSON}.")
    return {"SKILL.md" if kind == "skill" else "upload.md": data}


def _strip_top_folder(files: dict[str, bytes], kind: str) -> dict[str, bytes]:
    """Drop one folder enclosing everything (``zip -r my-skill.zip my-skill/``), unless the type's
    marker file is already at the top."""
    if not files or any("/" not in path for path in files):
        return files
    if (kind == "plugin" and PLUGIN_JSON in files) or (kind == "skill" and _find_skill_md(files)):
        return files
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) != 1 or (kind == "plugin" and tops <= COMPONENT_DIRS):
        return files
    return {path.split("/", 1)[1]: content for path, content in files.items()}


def _find_skill_md(files: dict[str, bytes]) -> str | None:
    return next((path for path in files if "/" not in path and path.lower() == "skill.md"), None)


def _skill(files: dict[str, bytes], kind: str, name: str) -> tuple[dict[str, bytes], str, str]:
    top = _find_skill_md(files)
    if top is None:
        nested = sorted(path for path in files if path.rsplit("/", 1)[-1].lower() == "skill.md")
        hint = f" (found at '{nested[0]}'; it must be at the top of the archive)" if nested else ""
        if PLUGIN_JSON in files:
            hint = f" (the archive has {PLUGIN_JSON}: choose the type plugin)"
        raise _type_refusal("missing_skill_md", f"A skill needs a SKILL.md file{hint}.")
    shown, description = _main_frontmatter(top, files[top], kind, name)
    base = f"skills/{name}/"
    laid = {base + ("SKILL.md" if path == top else path): content for path, content in files.items()}
    return laid, shown, description


def _single_file(files: dict[str, bytes], kind: str, name: str) -> tuple[dict[str, bytes], str, str]:
    if len(files) != 1 or not next(iter(files)).lower().endswith((".md", ".markdown")):
        found = f"this archive holds {len(files)} files" if len(files) != 1 else f"found '{next(iter(files))}'"
        article = "An" if kind == "agent" else "A"
        raise _type_refusal(f"missing_{kind}_md", f"{article} {kind} is one Markdown (.md) file; {found}.")
    path, content = next(iter(files.items()))
    shown, description = _main_frontmatter(path, content, kind, name)
    folder = "agents" if kind == "agent" else "commands"
    return {f"{folder}/{name}.md": content}, shown, description


def _has_components(files: dict[str, bytes]) -> bool:
    """Whether the archive holds something Claude Code loads from a plugin's default locations."""
    for path in files:
        parts = path.split("/")
        if (
            (parts[0] == "skills" and len(parts) == 3 and parts[2] == "SKILL.md")
            or (parts[0] in ("agents", "commands") and len(parts) == 2 and path.endswith(".md"))
            or path in ("hooks/hooks.json", ".mcp.json")
        ):
            return True
    return False


def _plugin(files: dict[str, bytes], kind: str, name: str) -> tuple[dict[str, bytes], str, str]:
    if PLUGIN_JSON not in files:
        if not _has_components(files):
            hint = " (the archive has a SKILL.md: choose the type skill)" if _find_skill_md(files) else ""
            raise _type_refusal(
                "plugin_json_invalid",
                f"A plugin needs {PLUGIN_JSON} or components where Claude Code looks for them"
                f" (skills/<name>/SKILL.md, agents/*.md, commands/*.md, hooks/hooks.json, .mcp.json){hint}.",
            )
        # Many marketplaces keep a plugin's manifest in marketplace.json only: Agnes generates
        # plugin.json when it serves the plugin; the description comes from the upload form.
        _check_components(files, name)
        return files, name, ""
    try:
        manifest = json.loads(files[PLUGIN_JSON].decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _type_refusal("plugin_json_invalid", f"{PLUGIN_JSON} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict):
        raise _type_refusal("plugin_json_invalid", f"{PLUGIN_JSON} must be a JSON object.")
    shown = manifest.get("name", name)
    description = manifest.get("description")
    if not isinstance(shown, str) or not shown.strip():
        raise _type_refusal("plugin_json_invalid", f"The name in {PLUGIN_JSON} must be text.")
    if not isinstance(description, str) or not description.strip():
        raise _type_refusal("plugin_json_invalid", f"{PLUGIN_JSON} needs a description saying what the plugin does.")
    _no_placeholder(PLUGIN_JSON, " ".join(description.split()))
    _check_components(files, name)
    return files, shown.strip(), " ".join(description.split())


def _check_components(files: dict[str, bytes], name: str) -> None:
    """A plugin's skills and agents need the frontmatter their own uploads need."""
    for path, content in files.items():
        parts = path.split("/")
        if parts[0] == "skills" and parts[-1] == "SKILL.md":
            _main_frontmatter(path, content, "skill", name)
        elif parts[0] == "agents" and len(parts) == 2 and path.endswith(".md"):
            _main_frontmatter(path, content, "agent", name)


def _main_frontmatter(path: str, content: bytes, kind: str, name: str) -> tuple[str, str]:
    """(name, description) from a component's frontmatter, or a 422 refusal naming the file."""
    text = _text(path, content)
    parsed = parse_frontmatter(text)
    if parsed.error and "aliases" in parsed.error:
        raise _frontmatter(path, "uses YAML aliases (*name), which are not allowed")
    if not parsed.fields:
        raise _frontmatter(
            path,
            "has no frontmatter; start it with a '---' block giving name and description"
            if kind != "command"
            else "has no frontmatter; start it with a '---' block giving a description",
        )
    shown = parsed.text("name") or (name if kind == "command" else "")
    description = parsed.text("description")
    if not shown:
        raise _frontmatter(path, "has no 'name' in its frontmatter")
    if not description:
        raise _frontmatter(path, "has no 'description' in its frontmatter")
    _no_placeholder(path, description)
    match = BODY_PLACEHOLDER.search(parsed.body)
    if match:
        raise UploadRefused(
            422, "placeholder_text",
            f"{path} still contains template text ('{match.group(0)}'); write the instructions before publishing.",
            "file",
        )  # fmt: skip
    return shown, description


def _no_placeholder(path: str, description: str) -> None:
    lowered = description.lower()
    bare = re.sub(r"[^\w/ ]+", "", lowered).strip()
    if (
        bare in PLACEHOLDER_WORDS
        or PLACEHOLDER_START.match(description)
        or TEMPLATE_VAR.search(description)
        or any(phrase in lowered for phrase in PLACEHOLDER_PHRASES)
    ):
        raise UploadRefused(
            422,
            "placeholder_text",
            f"The description in {path} is placeholder text; say what it does and when to use it.",
            "file",
        )


def _no_aliases(path: str, content: bytes) -> None:
    parsed = parse_frontmatter(content.decode("utf-8", errors="replace"))
    if parsed.error and "aliases" in parsed.error:
        raise _frontmatter(path, "uses YAML aliases (*name), which are not allowed")


def _text(path: str, content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadRefused(422, "file_not_text", f"{path} is not UTF-8 text.", "file") from None


def _frontmatter(path: str, problem: str) -> UploadRefused:
    return UploadRefused(422, "frontmatter_invalid", f"{path} {problem}.", "file")


def _type_refusal(code: str, message: str) -> UploadRefused:
    return UploadRefused(422, code, message, "file")


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"
