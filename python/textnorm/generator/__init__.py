"""The shipped world generator: a scene-latent diffusion model decoded by the world's renderer.

- `load_generator()`: the shipped weights as a `textnorm.train.T2IModel`.
- `train_generator(...)`: reproduce them (``textnorm world train-generator``).

Names load on first use (this package imports torch; `import textnorm` must not).
"""

from __future__ import annotations

from textnorm._lazy_exports import lazy_getattr

_LAZY = {
    "SceneDiffusionModel": "textnorm.generator.diffusion",
    "load_generator": "textnorm.generator.diffusion",
    "save_generator": "textnorm.generator.diffusion",
    "train_generator": "textnorm.generator.training",
    "evaluate_generator": "textnorm.generator.training",
}

__getattr__ = lazy_getattr("textnorm.generator", _LAZY)


__all__ = sorted(_LAZY)
