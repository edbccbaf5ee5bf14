"""Decoding scene latents to images: the world's hard renderer, and a soft one for gradients.

`hard_decode` draws exactly what the judge reads: `latent_to_slots` then
`textnorm.world.render_slots`. `soft_render` is a torch re-implementation that is differentiable
in every latent value: each slot's coverage is the shape-score-weighted mixture of the seven
shapes' soft coverages ``sigmoid(-S * d / tau)`` (``d`` the exact signed distance of
`textnorm.world.geometry`), times a soft presence ``sigmoid(k * z_presence)``; its colour is the
colour-score-weighted mixture of the palette; slots are composited in order over the background,
like the hard renderer. `decode` returns the hard image with the soft image's gradient
(straight-through): the reward sees exactly the judge's pixels, and DRaFT still gets a gradient.
"""

from __future__ import annotations

import torch

from textnorm.generator.model import R_MEAN, R_SCALE, XY_MEAN, XY_SCALE, latent_to_slots
from textnorm.world import vocab
from textnorm.world.geometry import signed_distance
from textnorm.world.render import SLOT_INDEX, render_slots

__all__ = ["decode", "hard_decode", "soft_render"]

TAU = 1.0  # edge softness in pixels
SHARPNESS = 3.0  # latent one-hots are +-1: softmax(3 z) puts ~99.8% on the top entry


def hard_decode(latents: torch.Tensor, *, size: int = 64) -> torch.Tensor:
    """Images (B, 3, size, size) in [0, 1] drawn by the world's renderer (no gradient)."""
    images = render_slots(latent_to_slots(latents), size=size)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255.0).to(latents.device)


def soft_render(latents: torch.Tensor, *, size: int = 64, tau: float = TAU) -> torch.Tensor:
    """Differentiable images (B, 3, size, size) in [0, 1] from latents (B, n_slots, SLOT_DIM)."""
    z = latents.float()
    dev = z.device
    centres = (torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / size
    py, px = centres[:, None], centres[None, :]
    palette = torch.tensor([vocab.PALETTE[c] for c in vocab.COLOURS], device=dev, dtype=torch.float32) / 255.0
    img = torch.tensor(vocab.BACKGROUND, device=dev, dtype=torch.float32).div(255.0)
    img = img.view(1, 3, 1, 1).expand(z.shape[0], 3, size, size)
    for k in range(z.shape[1]):
        s = z[:, k]
        presence = torch.sigmoid(4.0 * SHARPNESS * s[:, 0])
        shape_w = torch.softmax(SHARPNESS * s[:, SLOT_INDEX["shape"]], dim=-1)
        colour_w = torch.softmax(SHARPNESS * s[:, SLOT_INDEX["colour"]], dim=-1)
        r = (s[:, SLOT_INDEX["radius"]] * R_SCALE + R_MEAN).clamp(min=0.01)[:, :, None]
        x = (s[:, SLOT_INDEX["x"]] * XY_SCALE + XY_MEAN)[:, :, None]
        y = (s[:, SLOT_INDEX["y"]] * XY_SCALE + XY_MEAN)[:, :, None]
        u, v = (px[None] - x) / r, (py[None] - y) / r
        alpha = torch.zeros(z.shape[0], size, size, device=dev)
        for j, shape in enumerate(vocab.SHAPES):
            d = r * signed_distance(shape, u, v, xp=torch)
            alpha = alpha + shape_w[:, j, None, None] * torch.sigmoid(-size * d / tau)
        alpha = (alpha * presence[:, None, None])[:, None]
        rgb = (colour_w @ palette)[:, :, None, None]
        img = img * (1 - alpha) + rgb * alpha
    return img


def decode(latents: torch.Tensor, *, size: int = 64) -> torch.Tensor:
    """Hard images; with the soft renderer's gradient when `latents` require grad."""
    hard = hard_decode(latents, size=size)
    if not (torch.is_grad_enabled() and latents.requires_grad):
        return hard
    soft = soft_render(latents, size=size)
    return hard + (soft - soft.detach())

