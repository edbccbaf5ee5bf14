"""The proxy reward's network: a small CLIP-style dual encoder for 64x64 world renders.

- Image tower: a 4x4 stride-4 patch convolution (64x64 -> 16x16), then two stride-2 3x3
  convolutions down to 4x4 (GroupNorm and GELU after each); the 4x4 map is flattened (not pooled,
  so where things are survives for spatial relations) and projected to the shared space. The
  patch stem keeps a training step cheap on a CPU (about a third of four stride-2 convolutions).
- Text tower: a word-level tokenizer over a fixed vocabulary (`default_vocabulary`: the world's
  grammar plus the contrast lexicon's shape, solid, colour, size, material, texture and relation
  words; anything else is ``<unk>``), learned word and position embeddings, a two-layer pre-norm
  transformer, a masked mean over tokens, then the projection.
- Score: ``logit_scale * cosine(image, text)``, CLIP's.

Everything a checkpoint needs to be rebuilt is in `ProxyConfig` (saved as JSON beside the
safetensors weights), including the vocabulary, so a later change of the world's words cannot
silently shift a shipped model's token ids.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from textnorm._core import ParameterError
from textnorm.scorers.images import ImagePreprocess

__all__ = ["PAD", "PREPROCESS", "UNK", "ProxyCLIP", "ProxyConfig", "default_vocabulary", "tokenize"]

PAD, UNK = "<pad>", "<unk>"
#: The proxies' input: 64x64, channels mapped to about [-2, 2] (the background sits near +1.8).
PREPROCESS = ImagePreprocess.of(64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                                interpolation="bilinear", resize_mode="squash")
_WORD = re.compile(r"[a-z]+|[0-9]+")


def default_vocabulary() -> list[str]:
    """Sorted words of the world's grammar and the contrast lexicon's likely substitutes."""
    from textnorm._core import CONTRAST_DEFAULT_LEXICON
    from textnorm.world import vocab

    words: set[str] = {"a", "an", "and", "of", "the", "to", "like"}
    words.update(vocab.SHAPE_PLURALS)
    words.update(vocab.SHAPE_PLURALS.values())
    words.update(vocab.COLOUR_WORDS)
    words.update(vocab.COLOUR_ALIASES)
    words.update(vocab.SIZE_WORDS)
    words.update(vocab.NUMBER_WORDS)
    for phrase in vocab.RELATION_PHRASES:
        words.update(phrase.split())
    lexicon = json.loads(CONTRAST_DEFAULT_LEXICON)
    for group in ("shape", "solid"):
        for noun in lexicon["nouns"].get(group, []):
            words.update((noun, noun + "s", noun + "es"))
    for key in ("colors", "sizes", "materials", "textures"):
        for synonyms in lexicon[key]:
            for phrase in synonyms:
                words.update(phrase.split())
    for pair in lexicon["relations"]:
        for phrase in pair:
            words.update(phrase.split())
    for phrase in lexicon["symmetric_relations"]:
        words.update(phrase.split())
    return sorted(w for w in words if _WORD.fullmatch(w))


@dataclass(frozen=True)
class ProxyConfig:
    """Architecture of one proxy (sizes) and its vocabulary.

    Attributes:
        vocab: the token list; index 0 must be ``<pad>`` and index 1 ``<unk>``.
        embed_dim: dimension of the shared image-text space.
        channels: output channels of the patch stem and the two stride-2 convolutions.
        text_width: width of the text transformer.
        text_layers: transformer layers.
        text_heads: attention heads.
        max_tokens: longer prompts are truncated to this many words.
        image_size: side of the input renders in pixels.
        logit_scale_init: initial value of ``logit_scale`` (learned, clamped to [1, 100]).
    """

    vocab: tuple[str, ...] = field(default_factory=lambda: (PAD, UNK, *default_vocabulary()))
    embed_dim: int = 64
    channels: tuple[int, int, int] = (48, 64, 96)
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_tokens: int = 24
    image_size: int = 64
    logit_scale_init: float = 10.0

    def __post_init__(self) -> None:
        if len(self.vocab) < 3 or self.vocab[0] != PAD or self.vocab[1] != UNK:
            raise ParameterError(f"vocab: expected ['<pad>', '<unk>', words...], got {list(self.vocab[:3])!r}")
        if self.image_size % 16 or self.image_size < 16:
            raise ParameterError(f"image_size: expected a multiple of 16, got {self.image_size!r}")
        if len(self.channels) != 3 or any(c % 8 for c in self.channels):
            raise ParameterError(f"channels: expected three multiples of 8, got {self.channels!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProxyConfig:
        data = dict(data)
        data["vocab"] = tuple(data["vocab"])
        data["channels"] = tuple(data["channels"])
        return cls(**data)


def tokenize(texts: Sequence[str], vocab: Sequence[str], max_tokens: int) -> torch.Tensor:
    """Token ids (len(texts), L) padded with 0; L is the longest text's length (at least 1).

    Lower-cases, splits into runs of letters or digits ("star-like" -> star, like), maps digits to
    number words and unknown words to ``<unk>``; an empty text is one ``<unk>``.
    """
    from textnorm.world.vocab import NUMBER_WORDS

    index = {w: i for i, w in enumerate(vocab)}
    rows = []
    for text in texts:
        words = _WORD.findall(text.lower())
        words = [NUMBER_WORDS[int(w)] if w.isdigit() and int(w) < len(NUMBER_WORDS) else w for w in words]
        ids = [index.get(w, 1) for w in words][:max_tokens] or [1]
        rows.append(ids)
    out = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.int64)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = torch.tensor(ids)
    return out


class _ImageTower(nn.Module):
    def __init__(self, cfg: ProxyConfig) -> None:
        super().__init__()
        c0, c1, c2 = cfg.channels
        layers: list[nn.Module] = [nn.Conv2d(3, c0, 4, stride=4), nn.GroupNorm(8, c0), nn.GELU()]
        c_in = c0
        for c in (c1, c2):
            layers += [nn.Conv2d(c_in, c, 3, stride=2, padding=1), nn.GroupNorm(8, c), nn.GELU()]
            c_in = c
        self.convs = nn.Sequential(*layers)
        side = cfg.image_size // 16
        self.proj = nn.Linear(c_in * side * side, cfg.embed_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(self.convs(pixels).flatten(1))


class _TextTower(nn.Module):
    def __init__(self, cfg: ProxyConfig) -> None:
        super().__init__()
        self.tokens = nn.Embedding(len(cfg.vocab), cfg.text_width, padding_idx=0)
        self.positions = nn.Parameter(torch.zeros(cfg.max_tokens, cfg.text_width))
        layer = nn.TransformerEncoderLayer(
            cfg.text_width, cfg.text_heads, 2 * cfg.text_width, dropout=0.0,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.text_width)
        self.proj = nn.Linear(cfg.text_width, cfg.embed_dim)
        nn.init.normal_(self.tokens.weight, std=0.02)
        nn.init.normal_(self.positions, std=0.02)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == 0
        x = self.tokens(ids) + self.positions[: ids.shape[1]]
        x = self.encoder(x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.proj(self.norm(pooled))


class ProxyCLIP(nn.Module):
    """The dual encoder (see the module docstring). Inputs: normalised pixels and token ids."""

    def __init__(self, cfg: ProxyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = _ImageTower(cfg)
        self.text = _TextTower(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(cfg.logit_scale_init)))

    def scale(self) -> torch.Tensor:
        """``exp(logit_scale)`` clamped to [1, 100] (CLIP's cap)."""
        return self.logit_scale.clamp(0.0, math.log(100.0)).exp()

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unit-norm image embeddings (B, embed_dim)."""
        return F.normalize(self.image(pixels), dim=-1)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Unit-norm text embeddings (N, embed_dim)."""
        return F.normalize(self.text(ids), dim=-1)

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids of `texts` on the model's device."""
        return tokenize(texts, self.cfg.vocab, self.cfg.max_tokens).to(self.logit_scale.device)
