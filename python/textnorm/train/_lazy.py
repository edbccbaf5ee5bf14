"""Deferred import of torch for the modules that declare algorithms.

An algorithm's module holds its options, its trainer and its registration. The CLI builds its
parser (every mode's options) on installs without torch, and ``textnorm contrast`` should not pay
for importing torch, so these modules name torch through :data:`torch`, a stand-in that imports
the real module on the first attribute access. Type checkers see the real module::

    if TYPE_CHECKING:
        import torch
    else:
        from textnorm.train._lazy import torch
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for the module ``name``; imports it when an attribute is first read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr in ("_name", "_module"):  # not set yet (copy, pickle): never recurse
            raise AttributeError(attr)
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


torch: Any = LazyModule("torch")
