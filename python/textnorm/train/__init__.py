"""Fine-tuning text-to-image diffusion models against a reward: best-of-n, reward-weighted SFT,
DDPO and DRaFT-K, on diffusers + peft + accelerate.

The trainers see the generator only through :class:`textnorm.train.model.T2IModel` and the reward
only as a callable ``(images, prompts, metadata) -> (rewards, info)``; this package never imports
textnorm's scorers or reward modules. Modules import torch: import them explicitly, e.g.
``from textnorm.train.runner import train``.
"""
