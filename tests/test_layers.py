"""The package layering of ARCHITECTURE.md, checked on the source: every import points down, and no
import cycle exists anywhere (function-level imports included, since they only hide a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Each top-level package or module and its layer; a module may import only from lower layers or
#: from its own package.
LAYERS = {
    "settings": 0,
    "logs": 0,
    "models": 1,
    "messaging": 2,
    "providers": 3,
    "middleware": 4,
    "actors": 5,
    "web": 5,
    "scripts": 6,
}
#: The web services, which ``web.common`` must not import.
SERVICES = ("web.gateway", "web.users", "web.templates")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the Herald modules it imports (``from a import b`` counts ``a.b`` when it is a module)."""
    files = [
        p
        for top in LAYERS
        for p in ([ROOT / f"{top}.py"] if (ROOT / f"{top}.py").exists() else sorted((ROOT / top).rglob("*.py")))
    ]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def test_every_import_points_down_or_stays_in_its_package():
    upward = []
    for module, imports in _graph().items():
        top = module.split(".")[0]
        for target in imports:
            other = target.split(".")[0]
            if other != top and LAYERS[other] >= LAYERS[top]:
                upward.append(f"{module} -> {target}")
    assert not upward, upward


def test_web_common_imports_no_service():
    leaks = [
        f"{m} -> {t}"
        for m, imports in _graph().items()
        if m.startswith("web.common")
        for t in imports
        if t.startswith(SERVICES)
    ]
    assert not leaks, leaks


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            # a package imports its own modules by design (``from pkg import mod``); that is not a cycle
            if state.get(nxt) == 1 and not node.startswith(nxt + "."):
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, cycles
