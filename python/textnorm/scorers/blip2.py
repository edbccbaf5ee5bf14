"""BLIP-2 scores through transformers' Blip2ForImageTextRetrieval: ITC (default) or ITM.

ITC score: the Q-Former's query outputs for an image, projected and normalised (Q vectors),
against the projected and normalised text CLS embedding; the score is the maximum over the Q
query tokens of the cosine (as transformers' ``use_image_text_matching_head=False``). Image and
text are encoded separately, so text embeddings are cached like CLIP's.

ITM score (``head="itm"``): a cross-encoder. The Q-Former attends jointly to the query tokens,
the prompt and the image; the ITM head's two logits, averaged over the queries (as
``use_image_text_matching_head=True``), give the log-odds ``match - no_match``. The ViT runs
once per image; the Q-Former runs once per (image, prompt) pair; token ids are cached.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from textnorm._core import ParameterError
from textnorm.scorers._load import call_loader, check_tokenizer, hf_tokenizer, resolve_source
from textnorm.scorers.base import Scorer, freeze, model_device_dtype, unique_id
from textnorm.scorers.images import ImagePreprocess

__all__ = ["BLIP2Scorer"]

BLIP2_MODEL = "Salesforce/blip2-itm-vit-g"
ITM_TEXT_LENGTH = 64  # ITM token ids are cached padded to one length; longer prompts truncate


def blip_preprocess(model: Any, source: str | None = None) -> ImagePreprocess:
    """BlipImageProcessor settings (squash resize, no crop) from `source` when readable."""
    if source is not None:
        try:
            from transformers import BlipImageProcessor

            proc = BlipImageProcessor.from_pretrained(source)
            size = (proc.size["height"], proc.size["width"])
            return ImagePreprocess.of(size, mean=proc.image_mean, std=proc.image_std, resize_mode="squash")
        except Exception:  # no processor files: BLIP's standard settings at the model's size
            pass
    return ImagePreprocess.of(model.config.vision_config.image_size, resize_mode="squash")


class BLIP2Scorer(Scorer):
    """BLIP-2 ITC score ``logit_scale * max_q cos(query_q(image), cls(text))``, or ITM log-odds.

    Args:
        model: a transformers `Blip2ForImageTextRetrieval` (frozen in place).
        tokenizer: its BERT tokenizer.
        id: stable name of model and weights.
        preprocess: image preprocessing (BLIP's squash resize by default).
        logit_scale: multiplier of the score (1 as in transformers' output).
        head: "itc" (dual encoder, cached text embeddings) or "itm" (cross-encoder).
        max_batch_size: most images or texts per forward pass.
        cache_size: text-cache entries (0 disables).
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, id: str, preprocess: ImagePreprocess,
        logit_scale: float = 1.0, head: str = "itc", max_batch_size: int = 64, cache_size: int = 4096,
    ) -> None:
        if head not in ("itc", "itm"):
            raise ParameterError(f"head: expected 'itc' or 'itm', got {head!r}")
        device, dtype = model_device_dtype(model.vision_model)
        super().__init__(
            id=id, preprocess=preprocess, device=device, dtype=dtype,
            max_batch_size=max_batch_size, cache_size=cache_size,
        )
        self.model: Any = freeze(model)
        self.tokenizer = tokenizer
        self.logit_scale = float(logit_scale)
        self.head = head
        self.cross_encoder = head == "itm"
        if head == "itm":
            self.id = f"{id}:itm"  # another score: score caches must not mix them
        qformer = model.config.qformer_config
        tokenizer_max = getattr(tokenizer, "model_max_length", 512) or 512
        self.max_text_length = min(tokenizer_max, qformer.max_position_embeddings)

    @classmethod
    def from_transformers(
        cls, model: torch.nn.Module, tokenizer: Any, *, id: str | None = None,
        preprocess: ImagePreprocess | None = None, **kwargs: Any,
    ) -> BLIP2Scorer:
        """Wrap a loaded Blip2ForImageTextRetrieval and its tokenizer."""
        check_tokenizer(tokenizer, cls.__name__, "the tokenizer passed")
        name = getattr(model.config, "_name_or_path", "") or None
        return cls(
            model, tokenizer, id=id or (f"blip2:{name}" if name else unique_id("blip2")),
            preprocess=preprocess or blip_preprocess(model), **kwargs,
        )

    @classmethod
    def from_config(
        cls, config: Any, tokenizer: Any, *, seed: int | None = None, **kwargs: Any
    ) -> BLIP2Scorer:
        """Random weights from a `Blip2Config` (its Q-Former needs ``use_qformer_text_input``)."""
        from transformers import Blip2ForImageTextRetrieval

        if not getattr(config.qformer_config, "use_qformer_text_input", False):
            raise ParameterError(
                "config: expected qformer_config.use_qformer_text_input=True (the Q-Former must "
                "encode text for ITC scores), got False"
            )
        if seed is not None:
            torch.manual_seed(seed)
        model = Blip2ForImageTextRetrieval(config)
        tag = f"random-seed{seed}" if seed is not None else unique_id("random")
        return cls.from_transformers(model, tokenizer, id=kwargs.pop("id", None) or f"blip2:{tag}", **kwargs)

    @classmethod
    def from_pretrained(
        cls, name: str = BLIP2_MODEL, *, processor: str | None = None, tokenizer: Any = None,
        device: str | torch.device = "cpu", dtype: torch.dtype | None = None, **kwargs: Any,
    ) -> BLIP2Scorer:
        """Load a BLIP-2 retrieval model (e.g. Salesforce/blip2-itm-vit-g) by hub id or folder."""
        from transformers import Blip2ForImageTextRetrieval

        label = f"{cls.__name__}({name})"
        source = resolve_source(name)
        model: Any = call_loader(
            label, source,
            lambda: Blip2ForImageTextRetrieval.from_pretrained(source, dtype=dtype or torch.float32),
        )  # fmt: skip
        model = model.to(device)
        proc = processor or source
        tokenizer = hf_tokenizer(tokenizer, label, proc)
        return cls.from_transformers(
            model, tokenizer, id=f"blip2:{source}",
            preprocess=kwargs.pop("preprocess", None) or blip_preprocess(model, proc), **kwargs,
        )

    def _encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        if self.head == "itm":
            enc = self.tokenizer(
                texts, padding="max_length", truncation=True,
                max_length=min(ITM_TEXT_LENGTH, self.max_text_length), return_tensors="pt",
            )  # fmt: skip
            return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1).to(self.device)
        enc = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_text_length, return_tensors="pt"
        ).to(self.device)
        embeds = self.model.embeddings(input_ids=enc["input_ids"])
        out = self.model.qformer(query_embeds=embeds, query_length=0, attention_mask=enc["attention_mask"])
        cls_state = out.last_hidden_state[:, 0, :].to(self.model.text_projection.weight.dtype)
        return F.normalize(self.model.text_projection(cls_state).float(), dim=-1)

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        image_embeds = self.model.vision_model(pixel_values=pixels).last_hidden_state
        image_embeds = image_embeds.to(self.model.query_tokens.dtype)  # the Q-Former stays fp32
        if self.head == "itm":
            return image_embeds  # (B, tokens, width): the Q-Former runs per pair
        attention = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        queries = self.model.query_tokens.expand(image_embeds.shape[0], -1, -1)
        out = self.model.qformer(
            query_embeds=queries, encoder_hidden_states=image_embeds, encoder_attention_mask=attention
        )
        hidden = out.last_hidden_state.to(self.model.vision_projection.weight.dtype)
        return F.normalize(self.model.vision_projection(hidden).float(), dim=-1)  # (B, Q, D)

    def _similarity(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        if self.head == "itm":
            return self._all_pairs(image_features, text_features)
        return self.logit_scale * torch.einsum("iqd,td->itq", image_features, text_features).amax(-1)

    def _paired(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        if self.head == "itm":
            return self.logit_scale * self._itm_log_odds(image_features, text_features)
        return self.logit_scale * torch.einsum("nqd,nd->nq", image_features, text_features).amax(-1)

    def _itm_log_odds(self, image_embeds: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        queries = self.model.query_tokens.expand(image_embeds.shape[0], -1, -1)
        n_queries = queries.shape[1]
        query_mask = torch.ones(queries.shape[:-1], dtype=torch.long, device=queries.device)
        embeds = self.model.embeddings(input_ids=tokens[:, 0], query_embeds=queries)
        out = self.model.qformer(
            query_embeds=embeds, query_length=n_queries,
            attention_mask=torch.cat([query_mask, tokens[:, 1]], dim=1),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=torch.ones_like(image_embeds[..., 0], dtype=torch.long),
        )  # fmt: skip
        hidden = out.last_hidden_state[:, :n_queries, :].to(self.model.itm_head.weight.dtype)
        logits = self.model.itm_head(hidden).mean(dim=1).float()
        return logits[:, 1] - logits[:, 0]
