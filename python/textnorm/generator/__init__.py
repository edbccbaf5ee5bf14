"""The shipped world generator: a scene-latent diffusion model decoded by the world's renderer.

- `load_generator()`: the shipped weights as a `textnorm.train.T2IModel`.
- `train_generator(...)`: reproduce them (``textnorm world train-generator``).

Names load on first use (this package imports torch; `import textnorm` must not).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SceneDiffusionModel": "textnorm.generator.diffusion",
    "load_generator": "textnorm.generator.diffusion",
    "save_generator": "textnorm.generator.diffusion",
    "train_generator": "textnorm.generator.training",
    "evaluate_generator": "textnorm.generator.training",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'textnorm.generator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY)
