"""A tiny random-weight Stable Diffusion pipeline (about 1M UNet parameters) for tests and smoke runs.

Nothing is downloaded: the UNet, VAE and text encoder are built from configs, and the CLIP tokenizer
is built from the BPE vocabulary that open_clip ships inside its wheel (its ids equal the real CLIP
tokenizer's). ``textnorm train --model.path tiny`` uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def clip_tokenizer() -> Any:
    """A transformers ``CLIPTokenizer`` from open_clip's bundled vocabulary (offline)."""
    import open_clip
    from transformers import CLIPTokenizer

    simple = open_clip.get_tokenizer("ViT-B-32")
    merges: list[tuple[str, ...]] = [pair for pair, _ in sorted(simple.bpe_ranks.items(), key=lambda kv: kv[1])]
    tok = CLIPTokenizer(vocab=dict(simple.encoder), merges=merges,  # type: ignore[arg-type]  # pairs: the tokenizers backend's format
                        bos_token="<start_of_text>", eos_token="<end_of_text>",
                        pad_token="<end_of_text>", unk_token="<end_of_text>", model_max_length=77)
    # transformers 5 can silently produce a broken tokenizer; fail loudly instead.
    ids = tok("a cat").input_ids
    if len(tok) != 49408 or ids != [49406, 320, 2368, 49407]:
        raise RuntimeError(f"tiny CLIP tokenizer is broken: size {len(tok)}, 'a cat' -> {ids}")
    return tok


def tiny_pipeline(*, seed: int = 0) -> Any:
    """A random-weight ``StableDiffusionPipeline`` producing 64x64 images from 4x32x32 latents."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        unet = UNet2DConditionModel(
            sample_size=32, in_channels=4, out_channels=4, layers_per_block=1,
            block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
            attention_head_dim=8)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, block_out_channels=(32, 64), latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            sample_size=64)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
            eos_token_id=49407, pad_token_id=49407))
    finally:
        torch.random.set_rng_state(gen_state)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder,
                                   tokenizer=clip_tokenizer(), scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def save_tiny_pipeline(path: str | Path, *, seed: int = 0) -> Path:
    """Build :func:`tiny_pipeline` and save it as a diffusers folder; returns the folder."""
    out = Path(path)
    tiny_pipeline(seed=seed).save_pretrained(out)
    return out
