"""ImageReward (Xu et al., 2023) through the `image-reward` package, as a cross-encoder.

ImageReward runs BLIP's text encoder with cross-attention to the image tokens, so every
(image, prompt) pair needs a joint pass. The expensive part, the ViT image encoding, is done
once per image and reused across its K+1 prompts; the "text features" cached here are the
token ids. The score is the package's: an MLP on the joint CLS state, standardised with the
model's mean and std.
"""

from __future__ import annotations

from typing import Any

import torch

from textnorm.scorers._load import call_loader, resolve_source
from textnorm.scorers.base import ModelLoadError, Scorer, freeze, model_device_dtype, unique_id
from textnorm.scorers.images import ImagePreprocess

__all__ = ["ImageRewardScorer"]

_INSTALL = (
    "ImageRewardScorer needs the image-reward package, which is not installed: "
    "`pip install image-reward==1.5` (it loads the ImageReward-v1.0 checkpoint by name, or a "
    "local checkpoint file), or wrap a model you built with ImageRewardScorer.from_model(model)"
)
MAX_TEXT_LENGTH = 35  # the package pads and truncates prompts to 35 tokens


class ImageRewardScorer(Scorer):
    """ImageReward behind the scorer protocol.

    Args:
        model: an ``ImageReward`` model: ``.blip`` with ``visual_encoder``, ``text_encoder``
            and ``tokenizer``, an ``.mlp`` head and ``.mean`` / ``.std`` (frozen in place).
        id: stable name of model and weights.
        preprocess: image preprocessing (224 bicubic, center crop, CLIP normalisation).
        max_batch_size: most images, or image-prompt pairs for the joint pass, per forward.
        cache_size: token-id cache entries (0 disables).
    """

    cross_encoder = True

    def __init__(
        self, model: Any, *, id: str, preprocess: ImagePreprocess | None = None,
        max_batch_size: int = 64, cache_size: int = 4096,
    ) -> None:
        device, dtype = model_device_dtype(model.blip.visual_encoder)
        super().__init__(
            id=id, preprocess=preprocess or ImagePreprocess.of(224), device=device, dtype=dtype,
            max_batch_size=max_batch_size, cache_size=cache_size,
        )
        if isinstance(model, torch.nn.Module):
            freeze(model)
        else:
            freeze(model.blip)
            freeze(model.mlp)
        self.model: Any = model

    @classmethod
    def from_model(cls, model: Any, *, id: str | None = None, **kwargs: Any) -> ImageRewardScorer:
        """Wrap an ImageReward model object that is already built."""
        return cls(model, id=id or unique_id("imagereward"), **kwargs)

    @classmethod
    def from_pretrained(
        cls, name: str = "ImageReward-v1.0", *, device: str | torch.device = "cpu",
        download_root: str | None = None, **kwargs: Any,
    ) -> ImageRewardScorer:
        """Load through the image-reward package: a model name or a local checkpoint file."""
        try:
            import ImageReward as image_reward
        except ImportError as exc:
            raise ModelLoadError(f"{_INSTALL} (tried to load {name!r})") from exc
        label = f"{cls.__name__}({name})"
        model = call_loader(
            label, name,
            lambda: image_reward.load(name, device=str(device), download_root=download_root),
        )
        tag = resolve_source(name)
        return cls(model, id=f"imagereward:{tag}", **kwargs)

    def _encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        enc = self.model.blip.tokenizer(
            texts, padding="max_length", truncation=True, max_length=MAX_TEXT_LENGTH, return_tensors="pt"
        )
        return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).to(self.device)

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.blip.visual_encoder(pixels)  # (B, tokens, width)

    def _paired(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        attention = torch.ones(image_features.shape[:-1], dtype=torch.long, device=image_features.device)
        out = self.model.blip.text_encoder(
            text_features[:, 0], attention_mask=text_features[:, 1],
            encoder_hidden_states=image_features, encoder_attention_mask=attention, return_dict=True,
        )
        reward = self.model.mlp(out.last_hidden_state[:, 0, :].float()).squeeze(-1)
        return (reward - self.model.mean) / self.model.std

    def _similarity(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self._all_pairs(image_features, text_features)
