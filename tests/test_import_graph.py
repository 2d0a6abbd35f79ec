"""The house drawn from its imports has no circles, and its layers import one way.

The graph is read from the source with `ast`, not from `sys.modules`: an import inside a
function or under `TYPE_CHECKING` still ties two modules together (it only postpones the
circle to the first call), so every import statement counts wherever it sits.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("graph", "resolvers", "models", "services", "server")


def module_name(path: Path) -> str:
    """`graph/user.py` -> `graph.user`; `graph/__init__.py` -> `graph`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name an import statement anywhere in the module refers to."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # A relative import counts from the module's package.
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from graph import user` names the module graph.user, `from models import
            # Event` a name in models: ours() below picks the module either way.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def ours(name: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted name lives in (its longest prefix that is one), if any.

    Like import-linter, `import a.b` is an edge to `a.b` alone: the package `a` that Python
    initialises on the way is not a dependency the module chose (and counting it would make
    every package that re-exports its modules a circle).
    """
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if (prefix := ".".join(parts[:end])) in modules:
            return prefix
    return None


def import_graph() -> dict[str, set[str]]:
    """For each project module, the project modules it imports (directly, anywhere in it)."""
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = {target for name in imported_names(module, path) if (target := ours(name, modules))}
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def all_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Circles one by one: each found circle's last edge is dropped before looking again."""
    graph = {node: set(edges) for node, edges in graph.items()}
    cycles = []
    while cycle := find_cycle(graph):
        cycles.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])
    return cycles


def imports_from(package: str, roots: set[str]) -> list[str]:
    """`module -> name` for each import in `package` whose top-level name is in `roots`."""
    found = []
    for module, path in project_modules().items():
        if module.split(".")[0] != package:
            continue
        for name in imported_names(module, path):
            if name.split(".")[0] in roots:
                found.append(f"{module} -> {name}")
    return sorted(set(found))


def test_the_finder_sees_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_function_level_and_type_checking_imports_count(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from graph.user import User\n"
        "def f():\n    from resolvers import query\n    import services.users\n"
    )
    modules = project_modules()
    found = {ours(name, modules) for name in imported_names("graph.m", source)}
    assert {"graph.user", "resolvers.query", "services.users"} <= found


def test_the_house_has_no_import_cycles() -> None:
    cycles = all_cycles(import_graph())
    assert cycles == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_services_import_no_strawberry_graph_resolvers_or_server() -> None:
    assert imports_from("services", {"strawberry", "graph", "resolvers", "server"}) == []


def test_models_import_nothing_of_ours() -> None:
    assert imports_from("models", {"graph", "resolvers", "services", "server"}) == []


def test_only_server_imports_server() -> None:
    outside = [p for p in PACKAGES if p != "server"]
    assert [line for p in outside for line in imports_from(p, {"server"})] == []


def test_graph_types_import_no_resolvers() -> None:
    # graph/schema.py is the root: it wires the Query and Mutation fields to resolvers/.
    found = imports_from("graph", {"resolvers"})
    assert [line for line in found if not line.startswith("graph.schema ->")] == []
