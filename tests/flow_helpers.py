"""A tiny random-weight Stable Diffusion 3 pipeline for the flow-matching tests, built from configs.

Sizes follow diffusers' own SD3 pipeline tests (one-layer transformer with 4 heads of 8, two CLIP
text encoders with projection, a T5 encoder, a one-block VAE), with a 16x16 latent so that a
training step takes well under a second on one CPU thread. Nothing is downloaded: the CLIP
tokenizers come from open_clip's bundled vocabulary (textnorm.train.tiny.clip_tokenizer) and the
T5 tokenizer is a character-level Unigram model built here with the tokenizers backend.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import torch

T5_MAX_LENGTH = 16


def t5_tokenizer() -> Any:
    """A small T5 tokenizer (Unigram over characters); checked so a silent breakage fails loudly."""
    from transformers import T5Tokenizer

    chars = string.ascii_lowercase + string.digits + string.punctuation
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + c, -3.0) for c in chars] + [(c, -4.0) for c in chars]
    tok = T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)
    ids = tok("a cat").input_ids
    if ids[-1] != tok.eos_token_id or len(ids) != 5 or tok.unk_token_id in ids:
        raise RuntimeError(f"tiny T5 tokenizer is broken: 'a cat' -> {ids}")
    return tok


def tiny_sd3_pipeline(*, seed: int = 0, with_t5: bool = True, shift: float = 3.0) -> Any:
    """A random-weight ``StableDiffusion3Pipeline``: 16x16 images from 4x16x16 latents."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from textnorm.train.tiny import clip_tokenizer

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        transformer = SD3Transformer2DModel(
            sample_size=16, patch_size=2, in_channels=4, out_channels=4, num_layers=1,
            attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
            joint_attention_dim=32, pooled_projection_dim=64)

        def clip() -> Any:
            return CLIPTextModelWithProjection(CLIPTextConfig(
                vocab_size=49408, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
                bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_act="gelu"))

        text_encoder, text_encoder_2 = clip(), clip()
        t5_tok = t5_tokenizer() if with_t5 else None
        t5 = T5EncoderModel(T5Config(
            vocab_size=len(t5_tok), d_model=32, d_ff=37, d_kv=8, num_heads=4, num_layers=2,
            relative_attention_num_buckets=8)) if t5_tok is not None else None
        vae = AutoencoderKL(
            sample_size=16, in_channels=3, out_channels=3, block_out_channels=(4,),
            layers_per_block=1, latent_channels=4, norm_num_groups=1, use_quant_conv=False,
            use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)
    finally:
        torch.random.set_rng_state(state)
    clip_tok = clip_tokenizer()
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=shift), vae=vae,
        text_encoder=text_encoder, tokenizer=clip_tok, text_encoder_2=text_encoder_2,
        tokenizer_2=clip_tok, text_encoder_3=t5, tokenizer_3=t5_tok)


def save_tiny_sd3(path: Path, **kwargs: Any) -> Path:
    """Build :func:`tiny_sd3_pipeline` and save it as a diffusers folder."""
    tiny_sd3_pipeline(**kwargs).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_sd3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny SD3 pipeline folder (with T5), shared by the flow tests."""
    return save_tiny_sd3(tmp_path_factory.mktemp("tiny-sd3") / "pipeline")


def brightness_reward(images: torch.Tensor, prompts: list[str],
                      metadata: list[dict[str, Any]]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Mean image brightness in [0, 1]: a reward the tiny model learns in a few steps."""
    r = images.float().mean(dim=(1, 2, 3))
    return r, {"brightness": r}
