"""The package's imports go one way (DESIGN.md section 3, issue 15): every import of every module,
including those inside functions, points from a higher layer to a lower one, and no two modules
import each other, directly or through others. Imports under ``if TYPE_CHECKING:`` are for
annotations only and never run, so they do not count."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import textnorm

PKG = Path(textnorm.__file__).parent

# Layer of each top-level unit of the package (a module or a sub-package); an import must go to a
# strictly lower layer, or stay inside its own unit. ``textnorm`` is the package facade.
LAYERS: dict[str, int] = {
    "_core": 0, "_lazy_exports": 0, "_atomic": 0, "_heap": 0,
    "_norm_args": 1, "_torch_norm": 1, "_contrast_args": 1, "world": 1, "scorers": 1, "train": 1,
    "_contrast_lexicon": 2, "normalize": 2,
    "contrast": 3,
    "llm": 4, "reward": 4,
    "generator": 5,
    "proxies": 6,
    "eval": 7,
    "demo": 8,
    "textnorm": 9,
    "cli": 10,
    "__main__": 11,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """textnorm modules imported anywhere in the file (``from textnorm import x`` names x when x
    is a module of the package, else the facade)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "textnorm")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "textnorm":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node, except those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file() or name == "textnorm._core"


def _unit(module: str) -> str:
    parts = module.split(".")
    return "textnorm" if len(parts) == 1 else parts[1]


@functools.cache
def _graph() -> dict[str, frozenset[str]]:
    return {_module_name(p): frozenset(_imports(p)) for p in PKG.rglob("*.py")}


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _graph()}
    assert units <= set(LAYERS), sorted(units - set(LAYERS))


def test_imports_point_down_the_layers():
    bad = []
    for module, imported in _graph().items():
        src = _unit(module)
        for target in imported:
            dst = _unit(target)
            if dst != src and LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{module} -> {target}")
    assert not bad, bad


def test_no_import_cycle_between_modules():
    modules = set(_graph())
    graph = {m: {t for t in ts if t in modules} for m, ts in _graph().items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            # a package's own __init__ importing its submodules lazily is not a cycle of code
            if nxt == node or (nxt.startswith(node + ".") and node.count(".") < nxt.count(".")):
                continue
            if state.get(nxt) == 1:
                cycle.extend(path + [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, path + [node]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, []):
            break
    assert not cycle, " -> ".join(cycle)

