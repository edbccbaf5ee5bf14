"""The demo experiment: fine-tune the shipped world generator against a shipped proxy, raw and
calibrated by TextNorm, and judge both exactly (``textnorm demo``).

Names load on first use (this package imports torch; `import textnorm` must not).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run_demo": "textnorm.demo.experiment",
    "DemoConfig": "textnorm.demo.experiment",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'textnorm.demo' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY)
