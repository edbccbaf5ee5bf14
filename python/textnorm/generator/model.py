"""The scene-latent diffusion generator's networks: a word-level prompt encoder and a slot denoiser.

Latent
    A scene is ``n_slots`` object slots (4 by default), each a vector of `SLOT_DIM` numbers laid
    out like `textnorm.world.SLOT_INDEX`: presence, shape scores, colour scores, radius, x, y.
    `slots_to_latent` maps them to roughly unit scale for diffusion: presence and one-hots to
    -1/+1, radius to ``(r - 0.12) / 0.03``, positions to ``(x - 0.5) / 0.25``; an empty slot is
    presence -1 and zeros elsewhere. Objects fill the slots in the order of their prompt's
    phrases, empty slots last. `latent_to_slots` inverts the affine maps (the renderer then reads
    presence > 0.5 and the argmax of the scores).

Networks
    `PromptEncoder`: word embeddings (the world's vocabulary plus ``<bos>``/``<pad>``/``<unk>``)
    and a small transformer encoder; its output is (B, L, width) with exact zeros at padding, so
    the denoiser can tell padding from words. The empty prompt is ``<bos>`` alone (the
    unconditional embedding for classifier-free guidance).

    `SlotDenoiser`: a transformer over the slots (self-attention between slots, cross-attention
    to the prompt's tokens, a feed-forward layer, pre-norm residuals), conditioned on the
    timestep through a sinusoidal embedding added to every slot. Its attention projections are
    named like diffusers' (``to_q``, ``to_k``, ``to_v``, ``to_out.0``), so the training modes'
    default LoRA targets apply unchanged. It predicts the noise (epsilon).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from textnorm._core import ParameterError
from textnorm.world import vocab
from textnorm.world.render import SLOT_DIM, SLOT_INDEX

__all__ = [
    "GeneratorConfig", "PromptEncoder", "SlotDenoiser", "WORDS", "latent_to_slots",
    "slots_to_latent", "tokenize",
]

R_MEAN, R_SCALE = 0.12, 0.03
XY_MEAN, XY_SCALE = 0.5, 0.25

_SPECIAL = ("<pad>", "<bos>", "<unk>")
_EXTRA = ("and", ",", "to", "the", "of", "left", "right", "above", "below", "over", "on", "top",
          "under", "beneath", "underneath", "like", "grey", "violet", "golden")
WORDS: tuple[str, ...] = tuple(dict.fromkeys([
    *_SPECIAL, *vocab.COUNT_WORDS, *vocab.SIZE_WORDS, *vocab.COLOUR_WORDS,
    *vocab.SHAPE_PLURALS, *vocab.SHAPE_PLURALS.values(), *_EXTRA,
]))
_INDEX = {w: i for i, w in enumerate(WORDS)}
_TOKEN = re.compile(r"[a-z0-9]+|,")


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of the generator (stored as JSON beside the weights)."""

    n_slots: int = 4
    width: int = 64
    heads: int = 4
    layers: int = 3
    text_layers: int = 1
    max_tokens: int = 16
    image_size: int = 64
    num_train_timesteps: int = 1000

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GeneratorConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ParameterError(f"config: expected keys among {sorted(known)}, got unknown {sorted(unknown)}")
        values = {k: v for k, v in data.items()}
        for k, v in values.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"config.{k}: expected a positive int, got {v!r}")
        cfg = cls(**values)  # type: ignore[arg-type]
        if cfg.width % cfg.heads:
            raise ParameterError(f"config.width: expected a multiple of heads ({cfg.heads}), got {cfg.width}")
        return cfg


def tokenize(prompts: Sequence[str], *, max_tokens: int) -> torch.Tensor:
    """Word ids (B, max_tokens) int64: ``<bos>``, the words (unknown ones as ``<unk>``), padding.

    Raises:
        ParameterError: `prompts` is not a sequence of strings.
    """
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise ParameterError(f"prompts: expected a list of strings, got {type(prompts).__name__}")
    ids = torch.zeros(len(prompts), max_tokens, dtype=torch.int64)
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ParameterError(f"prompts[{i}]: expected a string, got {type(p).__name__}")
        words = [_INDEX.get(w, _INDEX["<unk>"]) for w in _TOKEN.findall(p.lower())]
        row = [_INDEX["<bos>"], *words][:max_tokens]
        ids[i, : len(row)] = torch.tensor(row)
    return ids


def slots_to_latent(slots: np.ndarray) -> np.ndarray:
    """World slot arrays (N, n_slots, SLOT_DIM) -> latents of the same shape (float32)."""
    s = np.asarray(slots, dtype=np.float32)
    z = np.zeros_like(s)
    present = s[..., 0] > 0.5
    z[..., 0] = np.where(present, 1.0, -1.0)
    for name in ("shape", "colour"):
        sl = SLOT_INDEX[name]
        z[..., sl] = np.where(present[..., None], 2.0 * s[..., sl] - 1.0, 0.0)
    for name, mean, scale in (("radius", R_MEAN, R_SCALE), ("x", XY_MEAN, XY_SCALE), ("y", XY_MEAN, XY_SCALE)):
        sl = SLOT_INDEX[name]
        z[..., sl] = np.where(present[..., None], (s[..., sl] - mean) / scale, 0.0)
    return z


def latent_to_slots(latents: torch.Tensor | np.ndarray) -> np.ndarray:
    """Latents (N, n_slots, SLOT_DIM) -> world slot arrays (float64) for `render_slots`.

    Presence becomes 1/0 at latent 0; radii are kept in [0.01, 0.5] (a positive size the renderer
    draws); non-finite values make the slot absent.
    """
    z = latents.detach().cpu().double().numpy() if isinstance(latents, torch.Tensor) else np.asarray(latents, np.float64)
    s = z.copy()
    finite = np.isfinite(z).all(axis=-1)
    s = np.where(finite[..., None], s, 0.0)
    s[..., 0] = ((z[..., 0] > 0) & finite).astype(np.float64)
    s[..., SLOT_INDEX["radius"]] = np.clip(s[..., SLOT_INDEX["radius"]] * R_SCALE + R_MEAN, 0.01, 0.5)
    for name in ("x", "y"):
        s[..., SLOT_INDEX[name]] = s[..., SLOT_INDEX[name]] * XY_SCALE + XY_MEAN
    return s


class Attention(nn.Module):
    """Multi-head attention with diffusers-style projection names (LoRA targets)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(width, width)
        self.to_k = nn.Linear(width, width)
        self.to_v = nn.Linear(width, width)
        self.to_out = nn.Sequential(nn.Linear(width, width))

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, w = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, t.shape[1], h, w // h).transpose(1, 2)

        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        attn_mask = None if mask is None else ~mask[:, None, None, :]  # True = attend
        out = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.to_out(out.transpose(1, 2).reshape(b, n, w))


class Block(nn.Module):
    """Pre-norm: slot self-attention, cross-attention to the prompt, feed-forward."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn1 = Attention(width, heads)
        self.attn2 = Attention(width, heads)
        self.ff = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn1(h, h)
        x = x + self.attn2(self.norm2(x), cond, pad)
        return x + self.ff(self.norm3(x))


def timestep_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding (B, width) of (B,) timesteps."""
    half = width // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class SlotDenoiser(nn.Module):
    """Epsilon prediction over scene slots; see the module docstring."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.proj_in = nn.Linear(SLOT_DIM, w)
        self.slot_embed = nn.Parameter(torch.randn(cfg.n_slots, w) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(Block(w, cfg.heads) for _ in range(cfg.layers))
        self.norm_out = nn.LayerNorm(w)
        self.proj_out = nn.Linear(w, SLOT_DIM)

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """latents (B, n_slots, SLOT_DIM), timesteps (B,), cond (B, L, width) -> epsilon."""
        pad = (cond == 0).all(dim=-1)
        temb = self.time_mlp(timestep_embedding(timesteps, self.cfg.width))
        x = self.proj_in(latents) + self.slot_embed[None, : latents.shape[1]] + temb[:, None]
        for block in self.blocks:
            x = block(x, cond.to(x.dtype), pad)
        return self.proj_out(self.norm_out(x))


class PromptEncoder(nn.Module):
    """Word embeddings + a small transformer encoder; zeros at padding (see the module docstring)."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(len(WORDS), cfg.width)
        self.pos = nn.Parameter(torch.randn(cfg.max_tokens, cfg.width) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 2 * cfg.width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == 0
        x = self.embed(ids) + self.pos[None, : ids.shape[1]]
        x = self.norm(self.encoder(x, src_key_padding_mask=pad))
        return x.masked_fill(pad[..., None], 0.0)

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Conditioning (B, max_tokens, width) of prompts."""
        ids = tokenize(prompts, max_tokens=self.cfg.max_tokens).to(self.embed.weight.device)
        return self(ids)
