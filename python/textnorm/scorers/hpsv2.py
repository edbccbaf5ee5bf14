"""HPS v2 / v2.1 (Wu et al., 2023): open_clip ViT-H-14 fine-tuned on human preference pairs.

The reference score is the plain cosine of the normalised embeddings (no logit scale), so
`HPSv2Scorer` fixes ``logit_scale=1``; TextNorm's default min-max mode is unaffected by it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from textnorm._core import ParameterError
from textnorm.scorers._load import call_loader, hub_file
from textnorm.scorers.clip import _PRECISION, CLIPScorer

__all__ = ["HPSv2Scorer"]

HPS_REPO = "xswu/HPSv2"
HPS_FILES = {"v2": "HPS_v2_compressed.pt", "v2.1": "HPS_v2.1_compressed.pt"}


class HPSv2Scorer(CLIPScorer):
    """HPS v2 behind the scorer protocol (a `CLIPScorer` scoring with the plain cosine)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["logit_scale"] = 1.0 if kwargs.get("logit_scale") is None else kwargs["logit_scale"]
        super().__init__(*args, **kwargs)

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls, checkpoint: str | None = None, *, version: str = "v2.1", architecture: str = "ViT-H-14",
        device: str | torch.device = "cpu", dtype: torch.dtype | None = None, **kwargs: Any,
    ) -> CLIPScorer:
        """Load an HPS checkpoint into open_clip's ViT-H-14.

        Args:
            checkpoint: a local checkpoint file; None fetches `version` from the hub repo.
            version: "v2" or "v2.1" (when `checkpoint` is None).
            architecture: the open_clip architecture the checkpoint was trained on.
            device: where the model goes.
            dtype: model dtype (default float32).
        """
        if version not in HPS_FILES:
            raise ParameterError(f"version: expected one of {sorted(HPS_FILES)}, got {version!r}")
        label = f"{cls.__name__}({architecture})"
        if checkpoint:
            path = hub_file(label, checkpoint, None)
        else:
            path = hub_file(label, HPS_REPO, HPS_FILES[version])
        dtype = dtype or torch.float32
        if dtype not in _PRECISION:
            raise ParameterError(f"dtype: expected float32, float16 or bfloat16, got {dtype}")
        import open_clip

        def load() -> torch.nn.Module:
            model = open_clip.create_model(
                architecture, pretrained=None, precision=_PRECISION[dtype], device=device
            )
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
            model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
            return model

        model = call_loader(label, str(path), load)
        tokenizer = open_clip.get_tokenizer(architecture)
        tag = str(Path(path).resolve()) if checkpoint else f"{HPS_REPO}/{HPS_FILES[version]}"
        return cls.from_open_clip(model, tokenizer, id=f"hpsv2:{architecture}:{tag}", **kwargs)
