"""PickScore (Kirstain et al., 2023): a CLIP-H (ViT-H-14) fine-tuned on Pick-a-Pic preferences.

The score is the reference one, ``logit_scale * cos(image, text)``, from a transformers
CLIPModel whose tokenizer and image processor are those of LAION's CLIP-ViT-H-14.
"""

from __future__ import annotations

from typing import Any

import torch

from textnorm.scorers.clip import CLIPScorer

__all__ = ["PickScoreScorer"]

PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


class PickScoreScorer(CLIPScorer):
    """PickScore behind the scorer protocol (a `CLIPScorer` with PickScore's defaults).

    `from_transformers` wraps a loaded PickScore CLIPModel; `from_transformers_config` builds
    one with random weights for tests.
    """

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, name: str = PICKSCORE_MODEL, *, processor: str | None = None,
        device: str | torch.device = "cpu", dtype: torch.dtype | None = None, **kwargs: Any,
    ) -> CLIPScorer:
        """Load PickScore weights by hub id or local folder (transformers CLIPModel format).

        Args:
            name: hub id or folder of the CLIPModel weights.
            processor: hub id or folder of the tokenizer and image processor (defaults to
                LAION's CLIP-ViT-H-14 for the hub model, else to `name`).
            device: where the model goes.
            dtype: model dtype (default float32).
        """
        if processor is None:
            processor = PICKSCORE_PROCESSOR if name == PICKSCORE_MODEL else name
        return super().from_pretrained(name, processor=processor, device=device, dtype=dtype, **kwargs)
