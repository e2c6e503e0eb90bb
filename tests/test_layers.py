"""The package is in layers and its imports point one way (issue 40): built from the ast of every
module (imports inside functions count; those under `if TYPE_CHECKING:` are for type checkers
only and do not), the graph has no cycle and no import of a higher layer, and no two modules share
a file name. The checks are shown to fail on graphs that break them."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "iclsam"
# lowest first: a module may import its own layer and those before it
LAYERS = ("iclsam.common", "iclsam.method", "iclsam.apps", "iclsam.data", "iclsam.pipeline", "iclsam.cli", "iclsam")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The iclsam modules (or packages) `path` imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (iclsam imports are absolute)"
            found |= {
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(files)) - {name} for name, path in files.items()}


def layer(module: str) -> int:
    """The index in LAYERS of the module's layer (the most specific prefix)."""
    ranks = [i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")]
    assert ranks, f"{module} is in no layer"
    return min(ranks)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer(b) > layer(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_imports_point_down_the_layers_and_form_no_cycle():
    graph = import_graph()
    assert len(graph) > 80 and any(graph.values())
    assert not upward_imports(graph), upward_imports(graph)
    assert not cycles(graph), cycles(graph)


def test_the_checks_find_an_upward_import_and_a_cycle():
    graph = {
        "iclsam.method.model": {"iclsam.apps.volumes"},
        "iclsam.apps.volumes": {"iclsam.common.metrics"},
        "iclsam.pipeline.grid": {"iclsam.pipeline.cluster"},
        "iclsam.pipeline.cluster": {"iclsam.pipeline.grid"},
    }
    assert upward_imports(graph) == ["iclsam.method.model -> iclsam.apps.volumes"]
    assert cycles(graph) == [["iclsam.pipeline.cluster", "iclsam.pipeline.grid"]]


def test_module_file_names_are_unique():
    names = Counter(p.name for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")
    assert not [n for n, count in names.items() if count > 1], names.most_common(3)
