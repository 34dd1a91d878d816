"""The structure docs/architecture.md describes: no import loop inside ``agnes/``, imports at module
level (function-level ones only where they save a real start-up cost, each with a comment), and
domain code that never starts jobs itself."""

from __future__ import annotations

import ast
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "agnes"
# Areas below the views and jobs layers: they never import agnes.jobs (jobs start in agnes/jobs/).
DOMAIN_PACKAGES = (
    "agnes.marketplace",
    "agnes.data",
    "agnes.plugin",
    "agnes.models",
    "agnes.auth",
    "agnes.feedback",
    "agnes.telemetry",
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, module: str, modules: dict[str, Path]) -> list[tuple[str, ast.stmt]]:
    """``(imported agnes module, statement)`` for every import anywhere in the file."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    edges = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for target in targets:
            while target and target not in modules:  # `import agnes.x.y` of a name, not a module
                target = target.rpartition(".")[0]
            if target.startswith("agnes") and target != module:
                edges.append((target, node))
    return edges


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {target for target, _ in _imports(path, name, modules)} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_loop_inside_agnes() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import loops (break them by moving code down a layer):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_loop_check_finds_a_loop() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_function_level_imports_of_agnes_say_why() -> None:
    """An import inside a function hides a loop or costs a reader; each one left says why."""
    modules = _modules()
    unexplained = []
    for name, path in modules.items():
        lines = path.read_text().splitlines()
        for target, node in _imports(path, name, modules):
            if node.col_offset == 0:
                continue
            above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
            if not above.startswith("#"):
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert unexplained == []


def test_domain_code_never_imports_jobs() -> None:
    modules = _modules()
    offenders = [
        f"{name} imports {target}"
        for name, path in modules.items()
        if name.startswith(DOMAIN_PACKAGES)
        for target, _ in _imports(path, name, modules)
        if target == "agnes.jobs" or target.startswith("agnes.jobs.")
    ]
    assert offenders == []


def test_the_app_does_not_load_what_only_a_job_or_a_rare_request_needs() -> None:
    """Every web, worker and cron process imports the app: SDKs that only one job or one rare request
    use (the Anthropic SDK alone takes over a second) are imported where they are used."""
    code = (
        "import os, sys; os.environ['AGNES_DATA_DIR'] = sys.argv[1]; import agnes.app; "
        "print(' '.join(m for m in ('anthropic', 'google.auth', 'google.oauth2', 'httpx') if m in sys.modules))"
    )
    with tempfile.TemporaryDirectory() as data_dir:
        result = subprocess.run([sys.executable, "-c", code, data_dir], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
