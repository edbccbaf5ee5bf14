"""CLIP-style dual encoders (open_clip and transformers CLIPModel): logit_scale * cosine.

Text embeddings are L2-normalised and cached, so scoring an image against K+1 prompts costs
one image encoding and K+1 lookups once the prompts have been seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from textnorm._core import ParameterError
from textnorm.scorers._load import (
    call_loader,
    check_tokenizer,
    clip_tokenizer,
    hf_tokenizer,
    looks_like_path,
    resolve_source,
)
from textnorm.scorers.base import Scorer, freeze, model_device_dtype, unique_id
from textnorm.scorers.images import CLIP_MEAN, CLIP_STD, ImagePreprocess

__all__ = ["CLIPScorer"]

_PRECISION = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def open_clip_preprocess(model: torch.nn.Module) -> ImagePreprocess:
    """The preprocessing an open_clip model was configured with."""
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    return ImagePreprocess.of(
        cfg.get("size", 224),
        mean=cfg.get("mean", CLIP_MEAN),
        std=cfg.get("std", CLIP_STD),
        interpolation="bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic",
        resize_mode="squash" if cfg.get("resize_mode") == "squash" else "shortest",
    )


def transformers_preprocess(model: Any, source: str | None = None) -> ImagePreprocess:
    """CLIPImageProcessor settings from `source` when readable, else the config's image size."""
    if source is not None:
        try:
            from transformers import CLIPImageProcessor

            proc = CLIPImageProcessor.from_pretrained(source)
            crop = proc.crop_size or {}
            size = model.config.vision_config.image_size
            size = (crop["height"], crop["width"]) if "height" in crop else size
            return ImagePreprocess.of(size, mean=proc.image_mean, std=proc.image_std)
        except Exception:  # no processor files: CLIP's standard settings at the model's size
            pass
    return ImagePreprocess.of(model.config.vision_config.image_size)


class CLIPScorer(Scorer):
    """CLIP score: ``logit_scale * cos(image, text)`` (the model's own learned scale by default).

    Build with `from_pretrained`, `from_open_clip`, `from_transformers`, or with random weights
    for tests with `from_open_clip_config` / `from_transformers_config`.

    Args:
        model: an open_clip CLIP model or a transformers CLIPModel (frozen in place).
        tokenizer: open_clip tokenizer (callable -> LongTensor) or a transformers tokenizer.
        backend: "open_clip" or "transformers".
        id: stable name of model and weights.
        preprocess: image preprocessing; defaults to the model's own settings.
        logit_scale: fixed multiplier instead of the model's ``logit_scale.exp()``.
        max_batch_size: most images or texts per forward pass.
        cache_size: text-cache entries (0 disables).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        backend: str,
        id: str,
        preprocess: ImagePreprocess,
        logit_scale: float | None = None,
        max_batch_size: int = 64,
        cache_size: int = 4096,
    ) -> None:
        if backend not in ("open_clip", "transformers"):
            raise ParameterError(f"backend: expected 'open_clip' or 'transformers', got {backend!r}")
        device, dtype = model_device_dtype(model)
        super().__init__(
            id=id, preprocess=preprocess, device=device, dtype=dtype,
            max_batch_size=max_batch_size, cache_size=cache_size,
        )
        self.model: Any = freeze(model)
        self.tokenizer = tokenizer
        self.backend = backend
        if logit_scale is None:
            logit_scale = float(self.model.logit_scale.detach().float().exp())
        self.logit_scale = float(logit_scale)

    # ---- constructors ----------------------------------------------------------------
    @classmethod
    def from_open_clip(
        cls, model: torch.nn.Module, tokenizer: Any = None, *, id: str | None = None,
        preprocess: ImagePreprocess | None = None, **kwargs: Any,
    ) -> CLIPScorer:
        """Wrap an open_clip model; the tokenizer defaults to CLIP's BPE at the model's length."""
        if tokenizer is None:
            import open_clip

            tokenizer = open_clip.tokenizer.SimpleTokenizer(
                context_length=getattr(model, "context_length", 77)
            )
        return cls(
            model, tokenizer, backend="open_clip", id=id or unique_id("open_clip"),
            preprocess=preprocess or open_clip_preprocess(model), **kwargs,
        )

    @classmethod
    def from_transformers(
        cls, model: torch.nn.Module, tokenizer: Any = None, *, id: str | None = None,
        preprocess: ImagePreprocess | None = None, **kwargs: Any,
    ) -> CLIPScorer:
        """Wrap a transformers CLIPModel; the tokenizer defaults to `clip_tokenizer()`."""
        tokenizer = clip_tokenizer() if tokenizer is None else tokenizer
        check_tokenizer(tokenizer, cls.__name__, "the tokenizer passed")
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or None
        return cls(
            model, tokenizer, backend="transformers",
            id=id or (f"transformers:{name}" if name else unique_id("transformers")),
            preprocess=preprocess or transformers_preprocess(model), **kwargs,
        )

    @classmethod
    def from_open_clip_config(
        cls, config: str | dict[str, Any], *, seed: int | None = None, **kwargs: Any
    ) -> CLIPScorer:
        """Random weights: an open_clip architecture name ("ViT-B-32") or a config dict
        ``{"embed_dim", "vision_cfg", "text_cfg"}`` as in open_clip's model configs."""
        import open_clip

        if seed is not None:
            torch.manual_seed(seed)
        if isinstance(config, str):
            model = open_clip.create_model(config, pretrained=None)
            name = config
        else:
            model = open_clip.CLIP(**config)
            name = "custom"
        tag = f"random-seed{seed}" if seed is not None else unique_id("random")
        return cls.from_open_clip(model, id=kwargs.pop("id", None) or f"open_clip:{name}:{tag}", **kwargs)

    @classmethod
    def from_transformers_config(
        cls, config: Any, *, seed: int | None = None, tokenizer: Any = None, **kwargs: Any
    ) -> CLIPScorer:
        """Random weights from a transformers `CLIPConfig`."""
        from transformers import CLIPModel

        if seed is not None:
            torch.manual_seed(seed)
        model = CLIPModel(config)
        tag = f"random-seed{seed}" if seed is not None else unique_id("random")
        return cls.from_transformers(
            model, tokenizer, id=kwargs.pop("id", None) or f"transformers:clip:{tag}", **kwargs
        )

    @classmethod
    def from_pretrained(
        cls, name: str, *, pretrained: str | None = None, processor: str | None = None,
        tokenizer: Any = None, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> CLIPScorer:
        """Load trained weights.

        Args:
            name: an open_clip architecture ("ViT-H-14", "hf-hub:org/repo", "local-dir:/path")
                or a transformers CLIPModel hub id / local folder.
            pretrained: for open_clip architectures, a pretrained tag ("laion2b_s32b_b79k")
                or a checkpoint file.
            processor: transformers only: where the tokenizer and image processor live when
                not beside the weights (PickScore uses the CLIP-H processor).
            tokenizer: a tokenizer to use instead of loading one.
            device: where the model goes.
            dtype: model dtype (default float32).
        """
        label = f"{cls.__name__}({name})"
        dtype = dtype or torch.float32
        if dtype not in _PRECISION:
            raise ParameterError(f"dtype: expected float32, float16 or bfloat16, got {dtype}")
        import open_clip

        is_open_clip = name.startswith(("hf-hub:", "local-dir:")) or name in open_clip.list_models()
        if is_open_clip:
            if pretrained is None and not name.startswith(("hf-hub:", "local-dir:")):
                raise ParameterError(
                    f"pretrained: expected a pretrained tag or checkpoint path for open_clip "
                    f"architecture {name!r}, got None (use from_open_clip_config for random weights)"
                )
            source = pretrained or name
            if pretrained is not None and looks_like_path(pretrained):
                source = str(Path(pretrained).expanduser().resolve())
            built = call_loader(label, source, lambda: open_clip.create_model(
                name, pretrained=source if pretrained else None, device=device,
                precision=_PRECISION[dtype], require_pretrained=True,
            ), what="open_clip pretrained tag" if pretrained else None)
            tok = tokenizer or call_loader(label, name, lambda: open_clip.get_tokenizer(name))
            return cls.from_open_clip(built, tok, id=f"open_clip:{name}:{source}", **kwargs)

        from transformers import CLIPModel

        source = resolve_source(name)
        model: Any = call_loader(label, source, lambda: CLIPModel.from_pretrained(source, dtype=dtype))
        model = model.to(device)
        proc = processor or source
        tokenizer = hf_tokenizer(tokenizer, label, proc)
        return cls.from_transformers(
            model, tokenizer, id=f"transformers:{source}",
            preprocess=kwargs.pop("preprocess", None) or transformers_preprocess(model, proc), **kwargs,
        )

    # ---- hooks -----------------------------------------------------------------------
    def _encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        if self.backend == "open_clip":
            tokens = self.tokenizer(texts).to(self.device)
            features = self.model.encode_text(tokens)
        else:
            enc = self.tokenizer(
                texts, padding=True, truncation=True,
                max_length=self.model.config.text_config.max_position_embeddings, return_tensors="pt",
            ).to(self.device)
            features = _pooled(
                self.model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            )
        return F.normalize(features.float(), dim=-1)

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.backend == "open_clip":
            features = self.model.encode_image(pixels)
        else:
            features = _pooled(self.model.get_image_features(pixel_values=pixels))
        return F.normalize(features.float(), dim=-1)

    def _similarity(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * image_features @ text_features.T

    def _paired(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self.logit_scale * (image_features * text_features).sum(-1)


def _pooled(output: Any) -> torch.Tensor:
    """transformers 5 returns model outputs from get_*_features; 4 returned tensors."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output
