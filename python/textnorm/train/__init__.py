"""Fine-tuning text-to-image diffusion models against a reward: best-of-n, reward-weighted SFT,
DDPO, GRPO and DRaFT-K, on diffusers + peft + accelerate.

Every algorithm implements one protocol and registers itself (:mod:`textnorm.train.registry`;
:func:`mode_names` lists the modes), with its options beside its code.

The trainers see the generator only through :class:`T2IModel` and the reward only as a callable
``(images, prompts, metadata) -> (rewards, info)``; this package never imports textnorm's scorers
or reward modules. Names are resolved on first use (importing this package does not import torch)::

    from textnorm.train import StableDiffusionModel, load_config, train
"""

from __future__ import annotations

from textnorm._lazy_exports import lazy_getattr

_LAZY = {
    "train": "textnorm.train.runner",
    "TrainResult": "textnorm.train.runner",
    "load_model": "textnorm.train.runner",
    "TrainConfig": "textnorm.train.config",
    "load_config": "textnorm.train.config",
    "T2IModel": "textnorm.train.model",
    "StableDiffusionModel": "textnorm.train.model",
    "FlowMatchingModel": "textnorm.train.flow_model",
    "PerPromptStatTracker": "textnorm.train.stat_tracker",
    "tiny_pipeline": "textnorm.train.tiny",
    "Algorithm": "textnorm.train.registry",
    "Trainer": "textnorm.train.registry",
    "TrainerBase": "textnorm.train.registry",
    "register": "textnorm.train.registry",
    "mode_names": "textnorm.train.registry",
    "get_algorithm": "textnorm.train.registry",
}

__getattr__ = lazy_getattr("textnorm.train", _LAZY)


__all__ = sorted(_LAZY)
