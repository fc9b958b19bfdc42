"""models/ is one layer: its modules import each other without a cycle, and never the tuner above them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "models"
MODELS_DIR = Path(__file__).resolve().parents[2] / PACKAGE
FORBIDDEN = {"hpo", "optuna"}


def module_name(path: Path) -> str:
    return PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"


def imported_names(path: Path) -> set[str]:
    """Every module an ``import`` anywhere in the file names, inside functions too (``from a import b``: a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                base = ".".join([PACKAGE, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the models modules it imports (the package itself only where a module names it)."""
    modules = {module_name(path): path for path in sorted(MODELS_DIR.glob("*.py"))}
    return {name: {n for n in imported_names(path) if n in modules} - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path ``[a, b, ..., a]``, or ``[]``."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_models_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    assert "models.memory" in graph and "models.networks" in graph["models.memory"]  # the graph is read
    cycle = find_cycle(graph)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_models_never_imports_the_tuner() -> None:
    offenders = {
        f"{path.name}: {name}"
        for path in MODELS_DIR.glob("*.py")
        for name in imported_names(path)
        if name.split(".")[0] in FORBIDDEN
    }
    assert not offenders, sorted(offenders)
