"""textnorm: confidence-calibrated rewards for fine-tuning text-to-image models.

TextNorm (Kim et al., ICLR 2024) scores an image against its prompt and a set of
semantically contrastive prompts and uses the softmax probability of the true prompt
as the reward. ``import textnorm`` stays light: it never imports torch; names whose
modules need torch are resolved on first use through ``__getattr__``.
"""

from __future__ import annotations

import importlib
from typing import Any

from textnorm._core import (
    BUILD_PROFILE,
    LayoutError,
    NonFiniteError,
    ParameterError,
    TextnormError,
    __version__,
)
from textnorm.contrast import ContrastiveSets, Lexicon, contrast
from textnorm.llm import contrast_llm
from textnorm.normalize import confidence, ensemble, probabilities

# Public names imported on first access: {name: module}.
_LAZY: dict[str, str] = {
    "TextNormReward": "textnorm.reward",
    "RawReward": "textnorm.reward",
    "AestheticScorer": "textnorm.scorers",
    "BLIP2Scorer": "textnorm.scorers",
    "CLIPScorer": "textnorm.scorers",
    "HPSv2Scorer": "textnorm.scorers",
    "ImageRewardScorer": "textnorm.scorers",
    "PickScoreScorer": "textnorm.scorers",
    "TrainConfig": "textnorm.train.config",
    "T2IModel": "textnorm.train.model",
    "StableDiffusionModel": "textnorm.train.model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'textnorm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BUILD_PROFILE",
    "ContrastiveSets",
    "LayoutError",
    "Lexicon",
    "NonFiniteError",
    "ParameterError",
    "TextnormError",
    "__version__",
    "confidence",
    "contrast",
    "contrast_llm",
    "ensemble",
    "probabilities",
]
