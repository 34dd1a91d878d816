"""The static scan of an upload: secrets and dangerous commands, in every file, at file and line.

Every file is read, including the ones the original skipped (``.md``, ``.json``, ``.yaml``): a
skill's Markdown and a plugin's ``hooks/hooks.json`` and ``.mcp.json`` are exactly where the
commands Claude Code will run are written down.

Where a match sits decides its weight:

* **code** — scripts (by suffix or ``#!``), configuration (``.json``, ``.yaml``, ``.toml``, ...),
  and in Markdown the frontmatter and fenced code blocks (what Claude is told to run);
* **prose** — the rest of a Markdown or text file (a sentence warning against ``rm -rf ~``).

A secret is ``high`` wherever it is (publishing it leaks it). A dangerous command is ``high`` in
code and ``medium`` in prose, so that documentation about a danger is shown to the reviewer but
does not block. ``high`` findings block the upload (422 ``security_blocked``, by the service).
Messages say what was found and never quote the secret.
"""

from __future__ import annotations

import bisect
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass

# Severities, most serious first; "high" blocks an upload.
SEVERITIES = ("high", "medium", "low")
# Findings kept per upload: enough to act on, bounded for storage and pages.
MAX_FINDINGS = 200
# Suffixes of files that run (the whole file is code).
SCRIPT_SUFFIXES = (
    ".sh", ".bash", ".zsh", ".ksh", ".fish", ".py", ".pyw", ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts",
    ".rb", ".pl", ".pm", ".php", ".lua", ".ps1", ".psm1", ".bat", ".cmd", ".r", ".go", ".rs", ".java",
    ".kt", ".swift", ".scala", ".groovy", ".tcl", ".awk", ".sed", ".applescript", ".vbs", ".makefile",
)  # fmt: skip
# Suffixes and names of configuration that tells Claude Code or a tool what to run (code too).
CONFIG_SUFFIXES = (".json", ".jsonc", ".json5", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".env")
CONFIG_NAMES = ("Makefile", "Dockerfile", "Justfile", ".envrc", ".bashrc", ".zshrc", ".profile")
# Markdown: frontmatter and fences are code, the rest prose.
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")
# Substrings that mark a documentation example rather than a live secret.
FAKE_MARKERS = ("EXAMPLE", "example", "xxxx", "XXXX", "your", "YOUR", "dummy", "DUMMY", "fake", "FAKE", "<", "...")
# Minimum Shannon entropy (bits per character) of a token for it to count as a live secret.
MIN_ENTROPY = 3.0

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Finding:
    """One thing the scan found.

    Attributes:
        file: the path in the bundle.
        line: 1-based line number.
        rule: the rule's id (``aws_access_key``, ``pipe_to_shell``, ...).
        severity: ``high`` | ``medium`` | ``low``.
        message: what was found, in words; never the secret itself.
    """

    file: str
    line: int
    rule: str
    severity: str
    message: str

    def to_dict(self) -> dict:
        """``{"file", "line", "rule", "severity", "message"}``."""
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    """A pattern, what it means, and how serious it is in code and in prose."""

    id: str
    pattern: re.Pattern[str]
    message: str
    code: str = "high"
    prose: str = "medium"
    accept: Callable[[re.Match[str]], bool] | None = None
    # Lowercase substrings one of which a match must contain: a cheap test that skips the regex
    # for most files (Python's re does not skip ahead on patterns that start with ``\b``).
    needles: tuple[str, ...] = ()
    # Whether the match must start a word (checked on the character before it).
    word_start: bool = True


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


def _real_secret(match: re.Match[str]) -> bool:
    """A token that is not a documentation example (``AKIAIOSFODNN7EXAMPLE``, ``sk-xxxx…``)."""
    token = match.group(match.lastindex or 0)
    return not any(marker in token for marker in FAKE_MARKERS) and _entropy(token) >= MIN_ENTROPY


def _public_ip(match: re.Match[str]) -> bool:
    scheme = match.string[max(0, match.start() - 5) : match.start()].lower()
    if not scheme.endswith(("http", "https", "ftp", "ws", "wss")):
        return False
    try:
        return ipaddress.ip_address(match.group(1)).is_global
    except ValueError:
        return False


def _recursive_rm(match: re.Match[str]) -> bool:
    flags = match.group(1)
    return bool(re.search(r"(^|\s)-[a-zA-Z]*[rR]|--recursive", flags))


_SECRET = dict(code="high", prose="high", accept=_real_secret)
_SHELL = r"(?:sudo\s+(?:-\S+\s+)*)?(?:env\s+)?(?:/usr)?(?:/bin/)?(?:ba|z|k|da|fi)?sh\b"
_DOWNLOAD = r"(?:curl|wget)\b"
_REVERSE = "A reverse shell (a shell connected to a remote host)."
_RUNS_DECODED = re.compile(r"\b(?:eval|exec|Function)\b")
_PIPED_TO_SHELL = re.compile(r"[^\n|;]*\|\s*" + _SHELL)


def _preceded_by(pattern: str) -> Callable[[re.Match[str]], bool]:
    """Accept a match only when the text just before it (same line) ends with ``pattern``."""
    compiled = re.compile(f"(?:{pattern})$")

    def accept(match: re.Match[str]) -> bool:
        line_start = match.string.rfind("\n", 0, match.start()) + 1
        return bool(compiled.search(match.string, max(line_start, match.start() - 40), match.start()))

    return accept


def _runs_decoded(match: re.Match[str]) -> bool:
    """A decoder whose output is evaluated on the same line, or piped into a shell."""
    text, start, end = match.string, match.start(), match.end()
    line_start = text.rfind("\n", 0, start) + 1
    return bool(_RUNS_DECODED.search(text, max(line_start, start - 100), start) or _PIPED_TO_SHELL.match(text, end))


# Patterns start with a literal where they can (Python's re skips ahead only to a literal prefix;
# a leading \b makes it try every position): word starts are checked after the match instead.
RULES: tuple[Rule, ...] = (
    # Secrets.
    Rule("aws_access_key", re.compile(r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![0-9A-Za-z])"),
         "An AWS access key ID; remove it and rotate the key.", **_SECRET),
    Rule("aws_secret_key",
         re.compile(r"(?i)aws_?secret_?(?:access_?)?key[\"'\s]*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
         "An AWS secret access key; remove it and rotate the key.", **_SECRET,
         needles=("aws_secret", "awssecret"), word_start=False),
    Rule("gcp_service_account_key",
         re.compile(r"\"private_key\"\s*:\s*\"-----BEGIN (?:RSA )?PRIVATE KEY-----(?:\\n)+([A-Za-z0-9+/]{40,})"),
         "A Google Cloud service-account private key; remove the key file and revoke the key.", **_SECRET,
         word_start=False),
    Rule("private_key",
         re.compile(r"-----BEGIN (?:(?:RSA|EC|DSA|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY(?: BLOCK)?-----"
                    r"(?:\\n|\s|[A-Za-z-]+:[^\n]*\n)*([A-Za-z0-9+/]{40,})"),
         "A private key (PEM block); remove it and replace the key.", **_SECRET, word_start=False),
    Rule("github_token", re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![\w])"),
         "A GitHub token; remove it and revoke the token.", **_SECRET),
    Rule("anthropic_api_key", re.compile(r"sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{32,}"),
         "An Anthropic API key; remove it and revoke the key.", **_SECRET),
    Rule("openai_api_key",
         re.compile(r"sk-(?:(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}"
                    r"|(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{48})(?![\w-])"),
         "An OpenAI API key; remove it and revoke the key.", **_SECRET),
    Rule("slack_token", re.compile(r"x(?:ox[abposr]-[0-9]{6,}-[A-Za-z0-9-]{10,}|app-\d-[A-Za-z0-9-]{20,})"),
         "A Slack token; remove it and revoke the token.", **_SECRET),
    Rule("slack_webhook", re.compile(r"hooks\.slack\.com/services/(T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,})"),
         "A Slack incoming-webhook URL (anyone holding it can post); remove it and regenerate it.", **_SECRET),
    # Dangerous commands.
    Rule("pipe_to_shell",
         re.compile(_DOWNLOAD + r"[^\n|;&]*\|\s*(?:" + _SHELL
                    + r"|(?:python[0-9.]*|perl|ruby|node)(?=\s*(?:-\s|-$|$|[;&)|\"'`])))", re.MULTILINE),
         "A download piped into a shell or interpreter (curl … | sh) runs code nobody reviewed.",
         needles=("curl", "wget")),
    Rule("pipe_to_shell", re.compile(r"<\(\s*" + _DOWNLOAD), "A downloaded script is run directly (bash <(curl …)).",
         accept=_preceded_by(r"\b(?:(?:ba|z)?sh|source|\.)\s+"), word_start=False, needles=("curl", "wget")),
    Rule("pipe_to_shell", re.compile(r"\$\(\s*" + _DOWNLOAD),
         "A downloaded script is run directly (sh -c \"$(curl …)\", eval \"$(curl …)\").",
         accept=_preceded_by(r"\b(?:(?:ba|z)?sh\s+-c|eval)\s+[\"']?"), word_start=False, needles=("curl", "wget")),
    Rule("pipe_to_shell",
         re.compile(r"(?:iex|Invoke-Expression)\b[^\n]{0,80}(?:DownloadString|iwr|irm|Invoke-WebRequest|Invoke-RestMethod)"
                    r"|(?:iwr|irm|Invoke-WebRequest|Invoke-RestMethod)\b[^\n]{0,200}\|\s*(?:iex|Invoke-Expression)\b",
                    re.IGNORECASE),
         "A downloaded PowerShell script is run directly (iex (iwr …)).", needles=("iex", "invoke-expression")),
    Rule("rm_rf_home",
         re.compile(r"rm\s+((?:-{1,2}[A-Za-z-]+\s+)+)(?:--\s+)?[\"']?(?:~/?\*?|\$\{?HOME\}?/?\*?|/\*?)[\"']?"
                    r"(?=$|[\s;&|)`\"'\\])", re.MULTILINE),
         "A recursive delete of the home directory or the filesystem root (rm -rf ~ or /).", accept=_recursive_rm),
    Rule("rm_rf_home", re.compile(r"--no-preserve-root\b"),
         "rm --no-preserve-root, which allows deleting the whole filesystem.", word_start=False),
    Rule("reverse_shell", re.compile(r"/dev/(?:tcp|udp)/[\w.-]+/\d+"), _REVERSE, word_start=False),
    Rule("reverse_shell", re.compile(r"(?:nc|ncat|netcat)[ \t][^\n|;]*?-[ec][ \t]+\S*(?:sh|cmd)\b"), _REVERSE,
         needles=(" -e ", " -c ")),
    Rule("reverse_shell", re.compile(r"mkfifo\b[^\n]*\|\s*(?:nc|ncat|netcat)\b"), _REVERSE),
    Rule("reverse_shell",
         re.compile(r"pty\.spawn\(\s*[\"'](?:/bin/)?(?:ba|z)?sh|os\.dup2\(\s*\w+\.fileno\(\)"), _REVERSE),
    Rule("reverse_shell",
         re.compile(r"socat\b[^\n]*\bexec:[^\n]*\b(?:ba|z)?sh\b|-MIO::Socket::INET\b[^\n]*\bexec\b", re.IGNORECASE),
         _REVERSE, needles=("socat", "io::socket")),
    Rule("eval_decoded",
         re.compile(r"base64\s+(?:-d|--decode|-D)\b|b64decode|atob\s*\(|FromBase64String|Buffer\.from\([^)\n]*base64"),
         "Code decoded from base64 and run (eval/exec of decoded data) hides what it does.",
         accept=_runs_decoded, word_start=False),
    Rule("raw_ip_url",
         re.compile(r"://(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])"),
         "A URL that names a public IP address instead of a host name.", accept=_public_ip, word_start=False),
)  # fmt: skip


def scan_bundle(files: dict[str, bytes]) -> list[Finding]:
    """Scan every file of a bundle.

    Args:
        files: path -> bytes (a :attr:`agnes.flea.checks.Bundle.files`).

    Returns:
        Findings ordered by file, then line (high ones first on the same line), at most
        :data:`MAX_FINDINGS`; the same rule is reported once per line.
    """
    findings: list[Finding] = []
    for path in sorted(files):
        findings.extend(scan_file(path, files[path]))
        if len(findings) >= MAX_FINDINGS:
            break
    return findings[:MAX_FINDINGS]


def scan_file(path: str, data: bytes) -> list[Finding]:
    """Findings in one file (see :func:`scan_bundle`)."""
    binary = b"\x00" in data[:8192]
    text = data.decode("utf-8", errors="replace")
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    code = _code_ranges(path, text, starts)
    seen: set[tuple[int, str]] = set()
    found: list[Finding] = []
    lowered = text.lower()
    for rule in RULES:
        if binary and rule.prose != "high":  # commands in a binary are noise; secrets are not
            continue
        if rule.needles and not any(needle in lowered for needle in rule.needles):
            continue
        for match in rule.pattern.finditer(text):
            start = match.start()
            if rule.word_start and start and (text[start - 1].isalnum() or text[start - 1] == "_"):
                continue
            if rule.accept and not rule.accept(match):
                continue
            line = bisect.bisect_right(starts, start)
            if (line, rule.id) in seen:
                continue
            seen.add((line, rule.id))
            severity = rule.code if _inside(code, start) else rule.prose
            found.append(Finding(path, line, rule.id, severity, rule.message))
    found.sort(key=lambda f: (f.line, SEVERITIES.index(f.severity), f.rule))
    return found


def blocking(findings: list[Finding]) -> list[Finding]:
    """The findings that block an upload (severity ``high``)."""
    return [f for f in findings if f.severity == "high"]


def _code_ranges(path: str, text: str, starts: list[int]) -> list[tuple[int, int]]:
    """Character ranges of ``text`` that are code (see the module docstring)."""
    name = path.rsplit("/", 1)[-1]
    lowered = name.lower()
    if lowered.endswith(MARKDOWN_SUFFIXES):
        return _markdown_code(text, starts)
    if lowered.endswith(SCRIPT_SUFFIXES + CONFIG_SUFFIXES) or name in CONFIG_NAMES or text.startswith("#!"):
        return [(0, len(text))]
    if "/hooks/" in f"/{path}" or "/bin/" in f"/{path}" or "/scripts/" in f"/{path}":
        return [(0, len(text))]  # extension-less executables beside a plugin's hooks and scripts
    return []


def _markdown_code(text: str, starts: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    lines = text.split("\n")
    index = 0
    if lines and lines[0].rstrip() == "---":  # frontmatter: hooks and allowed tools live here
        for end in range(1, len(lines)):
            if lines[end].rstrip() in ("---", "..."):
                ranges.append((0, starts[end]))
                index = end + 1
                break
    fence: str | None = None
    opened = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if fence is None and match:
            fence, opened = match.group(1), starts[index]
        elif fence is not None and match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            if not lines[index].strip().lstrip(fence[0]):
                ranges.append((opened, starts[index]))
                fence = None
        index += 1
    if fence is not None:  # an unclosed fence runs to the end (CommonMark)
        ranges.append((opened, len(text)))
    return ranges


def _inside(ranges: list[tuple[int, int]], offset: int) -> bool:
    return any(start <= offset < end for start, end in ranges)
