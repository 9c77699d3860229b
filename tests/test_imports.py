"""The package's imports form no cycle, and pure modules import no I/O.

Imports under `if TYPE_CHECKING:` are left out: they never run. Imports inside functions
count, since they run whenever the function does.
"""

from __future__ import annotations

import ast
import os

import harmony

ROOT = os.path.dirname(harmony.__file__)


def module_name(path: str) -> str:
    relative = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
    return relative.removesuffix(".__init__")


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: str, name: str) -> set[str]:
    """The harmony modules `path` (module `name`) imports at run time."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("harmony"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.startswith("harmony"):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


MODULES: dict[str, str] = {}
for directory, _, files in os.walk(ROOT):
    for file in files:
        if file.endswith(".py"):
            path = os.path.join(directory, file)
            MODULES[module_name(path)] = path


def graph() -> dict[str, set[str]]:
    return {name: imports_of(path, name) & set(MODULES) for name, path in MODULES.items()}


def test_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                walk(target)
        stack.pop()
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            walk(name)


def test_pure_modules_import_no_io() -> None:
    io_modules = {"harmony.db", "harmony.upstream", "harmony.spotify", "harmony.context", "harmony.web_base"}
    edges = graph()
    for pure in ("harmony.matching", "harmony.ranking", "harmony.naming"):
        if pure in edges:
            assert not edges[pure] & io_modules, f"{pure} imports {edges[pure] & io_modules}"


def test_route_modules_stand_on_the_base_not_the_factory() -> None:
    edges = graph()
    for name, targets in edges.items():
        if name.startswith("harmony.web_"):
            assert "harmony.web" not in targets, f"{name} imports the factory"
