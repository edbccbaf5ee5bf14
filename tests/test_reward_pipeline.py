"""The calibrated reward on images from a tiny diffusers StableDiffusionPipeline (random
weights, built from configs): every output type the pipeline offers is accepted, and the
rewards agree across them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

from textnorm import RawReward, TextNormReward  # noqa: E402
from textnorm.scorers import _tiny, clip_tokenizer  # noqa: E402

torch.set_num_threads(1)
PROMPTS = ["three dogs on a red mat", "a cat and a bird"]
SETS = {"three dogs on a red mat": ["two dogs on a red mat", "three cats on a red mat"],
        "a cat and a bird": ["a cat and a dog", "a bird"]}  # fmt: skip


@pytest.fixture(scope="module")
def pipeline() -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8,
    )  # fmt: skip
    vae = diffusers.AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )  # fmt: skip
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    ))  # fmt: skip
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae, text_encoder=text, tokenizer=clip_tokenizer(), unet=unet,
        scheduler=diffusers.DDIMScheduler(clip_sample=False, set_alpha_to_one=False, steps_offset=1), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe: Any, output_type: str) -> Any:
    return pipe(
        PROMPTS, height=64, width=64, num_inference_steps=2, guidance_scale=1.0,
        generator=torch.Generator().manual_seed(1), output_type=output_type,
    ).images


def test_reward_on_pipeline_images(pipeline: Any) -> None:
    reward = TextNormReward([_tiny.tiny_open_clip(), _tiny.tiny_blip2()], SETS, scale=3.0)
    tensors = generate(pipeline, "pt")
    assert tensors.shape == (2, 3, 64, 64)
    expected, info = reward(tensors, PROMPTS)
    assert expected.shape == (2,) and torch.isfinite(expected).all()
    assert ((expected > 0) & (expected < 1)).all()
    assert info["set_size"].tolist() == [2, 2]
    arrays = generate(pipeline, "np")  # float (B, H, W, 3) in [0, 1]
    assert isinstance(arrays, np.ndarray) and arrays.shape == (2, 64, 64, 3)
    torch.testing.assert_close(reward(arrays, PROMPTS)[0], expected, rtol=1e-5, atol=1e-6)
    pil = generate(pipeline, "pil")  # 8-bit rounding moves the scores a little
    torch.testing.assert_close(reward(pil, PROMPTS)[0], expected, rtol=0, atol=0.02)
    raw, _ = RawReward(_tiny.tiny_open_clip())(tensors, PROMPTS)
    assert raw.shape == (2,)


def test_reward_gradient_through_vae_decode(pipeline: Any) -> None:
    """DRaFT-style: gradients of the calibrated reward reach the latents through the VAE."""
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2), requires_grad=True)
    decoded = pipeline.vae.decode(latents / pipeline.vae.config.scaling_factor).sample
    images = (decoded / 2 + 0.5).clamp(0, 1)
    rewards, _ = TextNormReward(_tiny.tiny_open_clip(), SETS)(images, PROMPTS)
    rewards.sum().backward()
    assert latents.grad is not None and torch.isfinite(latents.grad).all() and latents.grad.abs().sum() > 0
