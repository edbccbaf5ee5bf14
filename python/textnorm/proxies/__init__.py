"""The shipped proxy reward models for the synthetic world, and how they were trained.

- `load_proxies()` / `load_proxy(name)`: small CLIP-style scorers (`textnorm.scorers.Scorer`).
- `train_proxy(...)`: reproduce a shipped proxy (``textnorm world train-proxy``).

Names load on first use (this package imports torch; `import textnorm` must not).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ProxyScorer": "textnorm.proxies.scorer",
    "load_proxy": "textnorm.proxies.scorer",
    "load_proxies": "textnorm.proxies.scorer",
    "train_proxy": "textnorm.proxies.training",
    "save_proxy": "textnorm.proxies.training",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'textnorm.proxies' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY)
