"""The house drawn from its imports: which way imports run (STYLE.md, "One rule, one place").

Imports are read from the source (every `import`, also those inside functions), so a rule
here cannot be dodged by importing late. Only the circle check leaves out imports under
`if TYPE_CHECKING:`, which never run (the usual way for a type to name its way back).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "services", "graph", "resolvers", "server")
# What the core may reach: identity routes keys to users and moves a merged user's rows;
# derived data follows through the `Followers` its callers pass (services/projections.py).
IDENTITY_MAY_REACH = {
    "services",
    "services.identity",
    "services.clock",
    "services.errors",
    "services.limits",  # input limits (user property caps), not a feature
    "services.locks",
    "services.sql",
}
ABOVE_SERVICES = ("strawberry", "graph", "resolvers", "server")


@cache
def modules() -> dict[str, Path]:
    """Our modules by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


@cache
def imported(module: str, *, runtime: bool = False) -> frozenset[str]:
    """Every name `module` imports (`runtime`: leaving out those under `if TYPE_CHECKING:`)."""
    return names_imported(modules()[module].read_text(), runtime=runtime)


def names_imported(source: str, *, runtime: bool = False) -> frozenset[str]:
    """Imported modules, and `package.name` for each `from package import name`."""
    tree = ast.parse(source)
    if runtime:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
                node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def ours(module: str, *, runtime: bool = False) -> set[str]:
    """The modules of ours that `module` imports."""
    return {
        name for name in imported(module, runtime=runtime) if name in modules() and name != module
    }


def reach(module: str, *, runtime: bool = False) -> set[str]:
    """Every module of ours that importing `module` imports, directly or not."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in ours(todo.pop(), runtime=runtime):
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def test_the_reader_sees_every_kind_of_import() -> None:
    # The checks below are only as good as this reading of imports.
    assert "services.identity" in ours("services.ingest")
    assert "services.projections" in ours("services.ingest")
    assert "sqlalchemy" in imported("services.identity")
    assert "services.definitions" in reach("services.ingest")
    late = (
        "def f():\n    import services.ingest\nif TYPE_CHECKING:\n    from services import links\n"
    )
    assert names_imported(late) == {"services.ingest", "services", "services.links"}
    assert names_imported(late, runtime=True) == {"services.ingest"}


def test_identity_imports_no_feature() -> None:
    features = {
        name for name in reach("services.identity") if not name.startswith("models")
    } - IDENTITY_MAY_REACH
    assert not features, f"services/identity.py reaches features: {sorted(features)}"


def test_services_never_import_the_layers_above() -> None:
    wrong = {
        module: sorted(name for name in imported(module) if name.split(".")[0] in ABOVE_SERVICES)
        for module in modules()
        if module.startswith("services")
    }
    assert not {m: names for m, names in wrong.items() if names}


def test_models_import_nothing_of_ours_but_models() -> None:
    wrong = {
        module: sorted(name for name in ours(module) if not name.startswith("models"))
        for module in modules()
        if module.startswith("models")
    }
    assert not {m: names for m, names in wrong.items() if names}


def test_services_and_models_have_no_import_circles() -> None:
    lower = [m for m in modules() if m.split(".")[0] in ("services", "models")]
    circles = sorted(m for m in lower if m in reach(m, runtime=True))
    assert not circles, f"modules that import themselves through others: {circles}"
