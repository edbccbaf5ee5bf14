"""LAION-style aesthetic predictor: an MLP on normalised CLIP image embeddings.

It scores an image without a prompt, so it has no contrastive prompts to compare against:
TextNorm is undefined for it and `score_sets` refuses with an error. As a raw reward
(`textnorm.RawReward`) it works; `score` repeats each image's score across the texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from textnorm._core import ParameterError
from textnorm.scorers._load import call_loader, hub_file
from textnorm.scorers.base import Scorer
from textnorm.scorers.clip import CLIPScorer
from textnorm.scorers.images import Images

__all__ = ["AestheticScorer", "aesthetic_head"]

REFUSAL = (
    "AestheticScorer is prompt-free (it scores images without a prompt), so TextNorm's "
    "contrastive prompts cannot change its score: use it as a raw reward (textnorm.RawReward) "
    "or pick a text-conditioned scorer for TextNormReward"
)


def aesthetic_head(width: int = 768) -> nn.Module:
    """The improved aesthetic predictor's MLP (its ``layers.*`` state-dict names)."""
    head = nn.Module()
    head.layers = nn.Sequential(  # type: ignore[assignment]
        nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
        nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
    )
    head.forward = head.layers.forward  # type: ignore[method-assign]
    return head


class AestheticScorer(Scorer):
    """Aesthetic score of each image: ``head(normalise(clip_image_embedding))``.

    Args:
        clip: the `CLIPScorer` whose image encoder feeds the head.
        head: module mapping (B, D) normalised embeddings to (B, 1) scores (frozen in place).
        id: stable name of CLIP weights and head.
    """

    prompt_free = True

    def __init__(self, clip: CLIPScorer, head: nn.Module, *, id: str | None = None) -> None:
        super().__init__(
            id=id or f"aesthetic:{clip.id}", preprocess=clip.preprocess, device=clip.device,
            dtype=clip.dtype, max_batch_size=clip.max_batch_size, cache_size=0,
        )
        self.clip = clip
        self.head = head.to(clip.device).eval().requires_grad_(False)

    @classmethod
    def from_pretrained(
        cls, head: str, *, clip: CLIPScorer | None = None, filename: str | None = None, **kwargs: Any
    ) -> AestheticScorer:
        """Load head weights (a local file, or `filename` in hub repo `head`) onto a CLIP.

        Args:
            head: local path of the head's state dict, or a hub repo holding `filename`.
            clip: the CLIP scorer the head was trained on (default: open_clip ViT-L-14 openai).
            filename: file name inside the hub repo `head`.
        """
        clip = clip or CLIPScorer.from_pretrained("ViT-L-14", pretrained="openai", **kwargs)
        path = hub_file(cls.__name__, head, filename)

        def load() -> nn.Module:
            visual: Any = getattr(clip.model, "visual", None)
            module = aesthetic_head(int(visual.output_dim) if visual is not None else 768)
            module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return module

        module = call_loader(cls.__name__, str(path), load)
        return cls(clip, module, id=f"aesthetic:{clip.id}:{path}")

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        raise ParameterError(f"texts: {REFUSAL}")

    def encode_images(self, images: Images) -> torch.Tensor:
        return self.clip.encode_images(images)

    def score_images(self, images: Images) -> torch.Tensor:
        """One float32 aesthetic score per image, shape (B,)."""
        features = F.normalize(self.encode_images(images).float(), dim=-1)
        return self.head(features.to(next(self.head.parameters()).dtype)).float().squeeze(-1)

    def score(self, images: Images, texts: Sequence[str]) -> torch.Tensor:
        """(n_images, n_texts): each image's score repeated (the texts do not matter)."""
        return self.score_images(images)[:, None].expand(-1, len(texts))

    def score_sets(
        self, images: Images, prompt_lists: Sequence[Sequence[str]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise ParameterError(f"prompt_lists: {REFUSAL}")

    def score_pairs(self, images: Images, texts: Sequence[str]) -> torch.Tensor:
        return self.score_images(images)
