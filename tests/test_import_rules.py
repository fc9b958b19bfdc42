"""The import rules that keep the house navigable, checked by parsing every module with ``ast``.

* ``hpo/`` is layered: ``storage < samplers < study < results < run < compare < browse < cli``; a
  package imports only packages below it (and its own modules), never one above or beside it.
* No import cycle between modules (imports inside functions count too).
* Nothing outside ``hpo.cli`` imports ``hpo.cli`` (``hpo/__main__.py``, the entry point, aside).
* Outside a package only its public names are imported (``from hpo.run import launch``), never
  its private modules (``hpo.run._launcher``); each package ``__init__`` lists them in ``__all__``.
* ``models/`` and ``data_pipeline/`` never import ``hpo``; ``models/`` never imports Optuna;
  ``data_pipeline/`` never imports ``models``.
* Optuna's private API (``optuna.x._y`` modules, ``trial._trial_id``, ``study._storage``, ...) is
  touched only in ``hpo/storage/_optuna.py`` and in the sampler that subclasses Optuna's GA base.
* ``hpo/`` holds no module at its top level besides ``__init__.py`` and ``__main__.py``.

:data:`ALLOWED` lists known violations; it may only shrink (a listed violation that no longer
occurs fails the test too, so the list is kept honest).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hpo", "models", "data_pipeline")
LAYERS = ("storage", "samplers", "study", "results", "run", "compare", "browse", "cli")
"""The subpackages of ``hpo``, lowest first."""
OPTUNA_PRIVATE_ALLOWED = {"hpo/storage/_optuna.py", "hpo/samplers/_genetic.py"}
TOP_LEVEL_ALLOWED = {"__init__.py", "__main__.py"}
SHIMS = {"hpo.commands", "hpo.commands.worker"}
"""Old entry points kept only to print where the command moved (they import nothing of hpo)."""

ALLOWED: set[str] = set()


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.lru_cache(maxsize=4)
def _modules(root: Path = ROOT) -> dict[str, Path]:
    return {
        _module_name(path, root): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _attached(tree: ast.Module) -> dict[str, list[str]]:
    """The ``{module: names}`` literal of a package's ``attach(__name__, {...})`` (lazy public names), else ``{}``."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "attach"):
            return ast.literal_eval(node.value.args[1])
    return {}


def _imports(path: Path, module: str = "") -> Iterator[tuple[int, str, str | None]]:
    """``(line, module, name)`` for every import of the project's packages or of Optuna, anywhere in the file.

    A package's ``attach(...)`` literal counts as importing each module it names (they load on first use).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for submodule in _attached(tree):
        yield 0, f"{module}.{submodule}", None
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def _target(module: str, name: str | None, modules: dict[str, Path]) -> str:
    """The project module an import refers to: ``from hpo.run import _x`` names a submodule when one exists."""
    if name is not None and f"{module}.{name}" in modules:
        return f"{module}.{name}"
    return module


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "hpo" or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2]) if module.startswith("hpo.") else module.split(".")[0]


def _is_private_module(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split("."))


@functools.lru_cache(maxsize=1)
def _optuna_private_names() -> frozenset[str]:
    """Private functions, classes and attributes Optuna defines (``_trial_id``, ``_storage``, ...)."""
    import optuna

    names: set[str] = set()
    for path in Path(optuna.__file__).parent.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = node.name
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                name = node.attr
            else:
                continue
            if name.startswith("_") and not name.startswith("__"):
                names.add(name)
    return frozenset(names)


def _optuna_private_uses(path: Path) -> Iterator[str]:
    """Imports of Optuna's private modules or names, and accesses of its private attributes (not on self/cls)."""
    private = _optuna_private_names()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "optuna":
            if _is_private_module(node.module) or any(a.name.startswith("_") for a in node.names):
                yield f"imports {node.module}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "optuna" and _is_private_module(alias.name):
                    yield f"imports {alias.name}"
        elif isinstance(node, ast.Attribute) and node.attr in private:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                yield f"uses .{node.attr}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in private:
                yield f"uses .{node.args[1].value} by name"


def _public_names(package: str, modules: dict[str, Path]) -> set[str]:
    path = modules[package]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    attached = _attached(tree)
    if attached:
        return {name for names in attached.values() for name in names}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def _violations(root: Path = ROOT) -> set[str]:
    found: set[str] = set()
    modules = _modules(root)
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted((root / "hpo").glob("*.py")):
        if path.name not in TOP_LEVEL_ALLOWED:
            found.add(f"hpo/{path.name}: a module at hpo's top level")
    for module, path in modules.items():
        relative = path.relative_to(root).as_posix()
        own_package, own_layer = _package(module), _layer(module)
        for line, imported, name in _imports(path, module):
            top = imported.split(".")[0]
            if top == "optuna" and module.split(".")[0] == "models":
                found.add(f"{relative}: imports optuna (models never import the tuner)")
            if top not in PACKAGES:
                continue
            target = _target(imported, name, modules)
            if target in modules and target != module:
                graph[module].add(target)
            if top == "hpo" and module.split(".")[0] in ("models", "data_pipeline"):
                found.add(f"{relative}: imports {target} (models/ and data_pipeline/ never import hpo)")
            if top == "models" and module.split(".")[0] == "data_pipeline":
                found.add(f"{relative}: imports {target} (data_pipeline/ never imports models)")
            if top != "hpo" or module.split(".")[0] != "hpo":
                continue
            target_package = _package(target)
            if target_package == "hpo.cli" and own_package != "hpo.cli" and module != "hpo.__main__":
                found.add(f"{relative}: imports {target} (only hpo.cli and hpo/__main__.py import the CLI)")
                continue
            if target_package == own_package or module == "hpo.__main__":
                continue
            target_layer = _layer(target)
            if own_layer is not None and target_layer is not None and target_layer >= own_layer:
                found.add(f"{relative}: imports {target} ({LAYERS[target_layer]} is not below {LAYERS[own_layer]})")
            if _is_private_module(target.removeprefix(target_package)):
                found.add(f"{relative}: imports private module {target} from outside {target_package}")
            elif name is not None and target == target_package and target_package in modules:
                if name not in _public_names(target_package, modules):
                    found.add(f"{relative}: imports {name} from {target_package}, which does not export it (__all__)")
        if relative not in OPTUNA_PRIVATE_ALLOWED and module.split(".")[0] == "hpo":
            for use in sorted(set(_optuna_private_uses(path))):
                found.add(f"{relative}: {use} (Optuna's private API belongs in hpo/storage/_optuna.py)")
    for cycle in _cycles(graph):
        found.add("import cycle: " + " -> ".join(cycle))
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_breaks_the_rules() -> None:
    new = sorted(_violations() - ALLOWED)
    assert not new, "import rules broken:\n" + "\n".join(new)


def test_the_allow_list_only_lists_what_still_happens() -> None:
    gone = sorted(ALLOWED - _violations())
    assert not gone, "no longer violated, remove from ALLOWED:\n" + "\n".join(gone)


def test_every_package_lists_its_public_names() -> None:
    modules = _modules()
    for layer in LAYERS:
        package = f"hpo.{layer}"
        if package not in modules:
            continue
        public = _public_names(package, modules)
        assert public, f"{package}/__init__.py has no __all__"
        module = __import__(package, fromlist=["__all__"])
        missing = sorted(name for name in public if not hasattr(module, name))
        assert not missing, f"{package}.__all__ names what it does not define: {missing}"


def test_the_checker_catches_each_kind_of_violation(tmp_path: Path) -> None:
    """A small tree breaking every rule once: each break is reported, and the clean module is not."""
    files = {
        "hpo/__init__.py": "",
        "hpo/loose.py": "",
        "hpo/storage/__init__.py": "__all__ = ['open_storage']\nfrom hpo.storage._urls import open_storage\n",
        "hpo/storage/_urls.py": "def open_storage(): pass\nimport hpo.run\n",
        "hpo/run/__init__.py": "__all__ = ['launch']\nfrom hpo.run._launcher import launch\n",
        "hpo/run/_launcher.py": (
            "from hpo.storage import open_storage\nfrom hpo.storage import secret\nfrom hpo.storage._urls import x\n"
            "from hpo.cli import main\ndef launch(trial): return trial._trial_id\n"
        ),
        "hpo/cli/__init__.py": "__all__ = ['main']\nfrom hpo.run import launch\ndef main(): pass\n",
        "models/__init__.py": "import optuna\nfrom hpo.run import launch\n",
        "data_pipeline/__init__.py": "import models\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = "\n".join(sorted(_violations(tmp_path)))
    for expected in (
        "hpo/loose.py: a module at hpo's top level",
        "hpo/storage/_urls.py: imports hpo.run (run is not below storage)",
        "hpo/run/_launcher.py: imports secret from hpo.storage, which does not export it",
        "hpo/run/_launcher.py: imports private module hpo.storage._urls from outside hpo.storage",
        "hpo/run/_launcher.py: imports hpo.cli (only hpo.cli and hpo/__main__.py import the CLI)",
        "hpo/run/_launcher.py: uses ._trial_id",
        "models/__init__.py: imports optuna",
        "models/__init__.py: imports hpo.run (models/ and data_pipeline/ never import hpo)",
        "data_pipeline/__init__.py: imports models (data_pipeline/ never imports models)",
    ):
        assert expected in found, f"not reported: {expected}\nreported:\n{found}"
    (cycle,) = [line for line in found.splitlines() if line.startswith("import cycle:")]
    assert "hpo.run._launcher" in cycle and "hpo.storage._urls" in cycle
    assert "hpo/cli/__init__.py" not in found
