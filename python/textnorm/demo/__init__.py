"""The demo experiment: fine-tune the shipped world generator against a shipped proxy, raw and
calibrated by TextNorm, and judge both exactly (``textnorm demo``).

Names load on first use (this package imports torch; `import textnorm` must not).
"""

from __future__ import annotations

from textnorm._lazy_exports import lazy_getattr

_LAZY = {
    "run_demo": "textnorm.demo.experiment",
    "DemoConfig": "textnorm.demo.experiment",
}

__getattr__ = lazy_getattr("textnorm.demo", _LAZY)


__all__ = sorted(_LAZY)
