"""The shipped proxy reward models for the synthetic world, and how they were trained.

- `load_proxies()` / `load_proxy(name)`: small CLIP-style scorers (`textnorm.scorers.Scorer`).
- `train_proxy(...)`: reproduce a shipped proxy (``textnorm world train-proxy``).

Names load on first use (this package imports torch; `import textnorm` must not).
"""

from __future__ import annotations

from textnorm._lazy_exports import lazy_getattr

_LAZY = {
    "ProxyScorer": "textnorm.proxies.scorer",
    "load_proxy": "textnorm.proxies.scorer",
    "load_proxies": "textnorm.proxies.scorer",
    "train_proxy": "textnorm.proxies.training",
    "save_proxy": "textnorm.proxies.training",
}

__getattr__ = lazy_getattr("textnorm.proxies", _LAZY)


__all__ = sorted(_LAZY)
