"""The normaliser's modules depend in one direction (issue 15): ``normalize`` validates through
``_norm_args`` and chooses the path; ``_torch_norm`` and ``_norm_args`` never import back. Every
import counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import textnorm

PKG = Path(textnorm.__file__).parent


def _imports(module: str) -> set[str]:
    """Every module ``module`` imports (absolute names; ``from a import b`` gives a and a.b)."""
    tree = ast.parse((PKG / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _textnorm_imports(module: str) -> set[str]:
    return {m for m in _imports(module) if m == "textnorm" or m.startswith("textnorm.")}


def test_argument_checks_are_a_leaf():
    assert _textnorm_imports("_norm_args") <= {"textnorm._core", "textnorm._core.LayoutError",
                                               "textnorm._core.ParameterError"}
    assert "torch" not in _imports("_norm_args")


def test_torch_maths_never_imports_the_facade():
    assert {m for m in _textnorm_imports("_torch_norm") if not m.startswith("textnorm._core")} == set()


def test_the_facade_imports_the_checks_and_the_torch_maths_only_downwards():
    assert _textnorm_imports("normalize") <= {
        "textnorm", "textnorm._core", "textnorm._norm_args", "textnorm._torch_norm",
    }  # fmt: skip
