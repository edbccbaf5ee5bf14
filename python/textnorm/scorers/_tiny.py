"""Tiny randomly initialised scorers for tests (about 0.05-1.6M parameters, no download).

Builders are memoised, so every test in a process shares one model of each kind. Each returns
a fresh scorer around the shared model when `cache_size` differs, so cache on/off can be
compared on identical weights.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

__all__ = [
    "TINY_WORDS",
    "tiny_bert_tokenizer",
    "tiny_blip2",
    "tiny_image_reward",
    "tiny_open_clip",
    "tiny_open_clip_config",
    "tiny_transformers_clip",
]

# Vocabulary of the tiny BERT tokenizer (BLIP-2 / ImageReward test models).
TINY_WORDS = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] a an the of on in and with photo picture cat cats dog dogs "
    "bird birds horse one two three four five red blue green yellow black white left right "
    "above below next to big small ##s"
).split()


def tiny_open_clip_config(image_size: int = 32) -> dict[str, Any]:
    """An open_clip CLIP config: 2-layer ViT and text tower of width 32."""
    return {
        "embed_dim": 32,
        "vision_cfg": {"image_size": image_size, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }


@functools.lru_cache(maxsize=None)
def _open_clip_model() -> torch.nn.Module:
    import open_clip

    torch.manual_seed(0)
    return open_clip.CLIP(**tiny_open_clip_config())


def tiny_open_clip(*, cache_size: int = 4096, max_batch_size: int = 64) -> Any:
    """A CLIPScorer around a shared tiny open_clip model."""
    from textnorm.scorers.clip import CLIPScorer

    return CLIPScorer.from_open_clip(
        _open_clip_model(), id="open_clip:tiny:seed0", cache_size=cache_size, max_batch_size=max_batch_size
    )


def tiny_clip_config() -> Any:
    """A transformers CLIPConfig with CLIP's real vocabulary and 2-layer towers of width 32."""
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config={
            "vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "max_position_embeddings": 77, "bos_token_id": 49406,
            "eos_token_id": 49407, "pad_token_id": 49407,
        },
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "image_size": 32, "patch_size": 8,
        },
        projection_dim=16,
    )  # fmt: skip


@functools.lru_cache(maxsize=None)
def _transformers_clip() -> tuple[torch.nn.Module, Any]:
    from transformers import CLIPModel

    from textnorm.scorers._load import clip_tokenizer

    torch.manual_seed(1)
    return CLIPModel(tiny_clip_config()), clip_tokenizer()


def tiny_transformers_clip(*, cache_size: int = 4096, max_batch_size: int = 64) -> Any:
    """A CLIPScorer around a shared tiny transformers CLIPModel."""
    from textnorm.scorers.clip import CLIPScorer

    model, tokenizer = _transformers_clip()
    return CLIPScorer.from_transformers(
        model, tokenizer, id="transformers:tiny:seed1", cache_size=cache_size, max_batch_size=max_batch_size
    )


@functools.lru_cache(maxsize=None)
def tiny_bert_tokenizer() -> Any:
    """A BERT WordPiece tokenizer over `TINY_WORDS`."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab={word: i for i, word in enumerate(TINY_WORDS)})


def tiny_blip2_config() -> Any:
    """A Blip2Config for Blip2ForImageTextRetrieval: 1-layer ViT and Q-Former, 4 queries."""
    from transformers import Blip2Config

    return Blip2Config(
        vision_config={
            "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
        },
        qformer_config={
            "vocab_size": len(TINY_WORDS), "hidden_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 64, "encoder_hidden_size": 32,
            "max_position_embeddings": 64, "pad_token_id": 0, "use_qformer_text_input": True,
        },
        num_query_tokens=4,
        image_text_hidden_size=16,
    )  # fmt: skip


@functools.lru_cache(maxsize=None)
def _blip2_model() -> torch.nn.Module:
    from transformers import Blip2ForImageTextRetrieval

    torch.manual_seed(2)
    return Blip2ForImageTextRetrieval(tiny_blip2_config())


def tiny_blip2(*, cache_size: int = 4096, max_batch_size: int = 64, head: str = "itc") -> Any:
    """A BLIP2Scorer (ITC or ITM head) around a shared tiny Blip2ForImageTextRetrieval."""
    from textnorm.scorers.blip2 import BLIP2Scorer

    return BLIP2Scorer.from_transformers(
        _blip2_model(), tiny_bert_tokenizer(), id="blip2:tiny:seed2",
        cache_size=cache_size, max_batch_size=max_batch_size, head=head,
    )


class _PatchEncoder(nn.Module):
    """Image -> (B, tokens, width) patch tokens, standing in for BLIP's ViT."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, width, kernel_size=8, stride=8)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.patch(pixels).flatten(2).transpose(1, 2)


class _CrossTextEncoder(nn.Module):
    """Token embeddings, one non-causal layer with cross-attention to image tokens (BLIP's
    text encoder call signature)."""

    def __init__(self, vocab: int, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.layer = nn.TransformerDecoderLayer(
            width, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True
        )

    def forward(
        self, input_ids: torch.Tensor, *, attention_mask: torch.Tensor, encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor, return_dict: bool = True,
    ) -> Any:
        hidden = self.layer(
            self.embed(input_ids), encoder_hidden_states,
            tgt_key_padding_mask=attention_mask == 0, memory_key_padding_mask=encoder_attention_mask == 0,
        )
        return SimpleNamespace(last_hidden_state=hidden)


@functools.lru_cache(maxsize=None)
def _image_reward_model() -> nn.Module:
    torch.manual_seed(3)
    model = nn.Module()
    model.blip = nn.Module()
    model.blip.visual_encoder = _PatchEncoder(32)
    model.blip.text_encoder = _CrossTextEncoder(len(TINY_WORDS), 32)
    model.blip.tokenizer = tiny_bert_tokenizer()
    model.mlp = nn.Sequential(nn.Linear(32, 16), nn.GELU(), nn.Linear(16, 1))
    model.mean, model.std = 0.17, 1.03  # type: ignore[assignment]
    return model


def tiny_image_reward(*, cache_size: int = 4096, max_batch_size: int = 64) -> Any:
    """An ImageRewardScorer around a tiny stand-in with ImageReward's attribute layout."""
    from textnorm.scorers.images import ImagePreprocess
    from textnorm.scorers.imagereward import ImageRewardScorer

    return ImageRewardScorer.from_model(
        _image_reward_model(), id="imagereward:tiny:seed3", preprocess=ImagePreprocess.of(32),
        cache_size=cache_size, max_batch_size=max_batch_size,
    )
