"""The embedded default: models the package ships for the synthetic world, and the demo on them.

- `load_generator()`: the scene-latent diffusion generator (a `textnorm.train.T2IModel`).
- `textnorm.embedded.proxy.load_proxies()`: small CLIP-style proxy reward models.
- `run_demo(...)`: raw proxy reward against TextNorm, the same fine-tuning budget, judged exactly.

Names load on first use (this package's modules import torch; `import textnorm` must not).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "SceneDiffusionModel": "textnorm.embedded.generator",
    "load_generator": "textnorm.embedded.generator",
    "save_generator": "textnorm.embedded.generator",
    "train_generator": "textnorm.embedded.generator_train",
    "evaluate_generator": "textnorm.embedded.generator_train",
    "run_demo": "textnorm.embedded.demo",
    "DemoConfig": "textnorm.embedded.demo",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'textnorm.embedded' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_LAZY)
