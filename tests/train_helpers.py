"""Shared helpers for the tests of textnorm.train (no tests here): the tiny pipeline saved once,
small configs, reward callables written for the tests, and a toy diffusion model that samples in
milliseconds (``ToyDiffusionModel``, loadable as ``--model.path train_helpers:ToyDiffusionModel``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

from textnorm.train.model import DenoiserLoRA

torch.set_num_threads(1)

PROMPTS = ["a cat", "two dogs", "a red ball", "a blue cube", "three birds", "a green tree"]


def brightness_reward(images: torch.Tensor, prompts: list[str], metadata: list[dict[str, Any]]
                      ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Differentiable: mean brightness plus redness minus blueness, per image."""
    red = images[:, 0].mean(dim=(1, 2))
    blue = images[:, 2].mean(dim=(1, 2))
    return images.mean(dim=(1, 2, 3)) + 10.0 * (red - blue), {"red": red.detach()}


def nan_after_first_epoch(images: torch.Tensor, prompts: list[str], metadata: list[dict[str, Any]]
                          ) -> tuple[torch.Tensor, dict[str, Any]]:
    """NaN rewards once the step counter in the environment says so (for the error-path test)."""
    calls = int(os.environ.get("_TN_CALLS", "0")) + 1
    os.environ["_TN_CALLS"] = str(calls)
    rewards, info = brightness_reward(images, prompts, metadata)
    if calls > int(os.environ.get("_TN_NAN_AFTER", "1")):
        rewards = rewards * float("nan")
    return rewards, info


def small_config(out: Path, mode: str, model_dir: Path | str, **sections: dict[str, Any]) -> Any:
    """A validated config for a few-second run on the tiny pipeline."""
    from textnorm.train.config import load_config

    data: dict[str, Any] = {
        "mode": mode,
        "model": {"path": str(model_dir)},
        "prompts": {"source": "list", "prompts": PROMPTS, "eval_fraction": 0.2, "max_eval_prompts": 1},
        "sampling": {"num_steps": 3, "guidance_scale": 2.0},
        "optim": {"learning_rate": 1e-2},
        "ddpo": {"sample_batch_size": 2, "num_batches_per_epoch": 1, "train_batch_size": 2,
                 "stat_min_count": 2, "clip_range": 0.2},
        "sft": {"samples_per_prompt": 2, "sample_batch_size": 4, "top_fraction": 0.5, "train_batch_size": 2},
        "best_of_n": {"n": 2, "sample_batch_size": 4},
        "draft": {"k": 1, "batch_size": 2},
        "run": {"output_dir": str(out), "steps": 2, "eval_every": 2, "eval_images_per_prompt": 1,
                "image_every": 1, "progress_bar": False, "tensorboard": False},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return load_config(data=data)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight Stable Diffusion pipeline, saved once per session."""
    from textnorm.train.tiny import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipe", seed=0)


@pytest.fixture()
def tiny_model(tiny_model_dir: Path) -> Any:
    """A fresh StableDiffusionModel (trainers mutate it by adding LoRA)."""
    from textnorm.train.model import StableDiffusionModel

    return StableDiffusionModel.from_pretrained(str(tiny_model_dir))


class _ToyDenoiser(torch.nn.Module):
    """The exact noise predictor for latents drawn from N(0, I) (``sqrt(1 - alpha_t) x_t``) plus a
    small MLP of the latent, the prompt embedding and the time: the model samples well-scaled
    latents from the start, and LoRA on the MLP shifts their distribution."""

    def __init__(self, alphas_cumprod: torch.Tensor, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.register_buffer("alphas_cumprod", alphas_cumprod.float().clone())
        self.fc1 = torch.nn.Linear(dim + cond_dim + 1, 32)
        self.fc2 = torch.nn.Linear(32, dim)
        with torch.no_grad():
            self.fc2.weight.mul_(0.1)
            self.fc2.bias.zero_()

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t.long()].reshape(-1, *([1] * (x.ndim - 1)))
        h = torch.cat([x.flatten(1), cond, t.float()[:, None] / 1000.0], dim=1)
        return (1 - a).sqrt() * x + self.fc2(torch.tanh(self.fc1(h))).view_as(x)



TOY_WORDS = ["a", "red", "blue", "ball", "cube", "two", "three", "left", "right", ""]


class ToyDiffusionModel(DenoiserLoRA):
    """A T2IModel that samples in milliseconds: 8-number latents from N(0, I) under the base
    weights, a bag-of-words prompt embedding, DDIM, and a decoder that paints a grey 4x4 image of
    brightness sigmoid(2 * mean latent). Policy gradients on brightness carry signal here."""

    def __init__(self, *, seed: int = 0) -> None:
        from diffusers import DDIMScheduler

        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.scheduler = DDIMScheduler(num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False)
            self.embed = torch.nn.EmbeddingBag(len(TOY_WORDS), 4, mode="mean").requires_grad_(False)
            self.denoiser: torch.nn.Module = _ToyDenoiser(self.scheduler.alphas_cumprod, 8, 4)
        finally:
            torch.random.set_rng_state(state)
        self.latent_shape: tuple[int, ...] = (8,)

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device: torch.device | str) -> ToyDiffusionModel:
        self.denoiser.to(device)
        self.embed.to(device)
        return self

    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        ids = [[TOY_WORDS.index(w) if w in TOY_WORDS else 0 for w in p.split()] or [9] for p in prompts]
        flat = torch.tensor([i for row in ids for i in row])
        offsets = torch.tensor([0, *torch.tensor([len(r) for r in ids]).cumsum(0)[:-1].tolist()])
        return self.embed(flat, offsets)

    def null_embedding(self, batch: int) -> torch.Tensor:
        return self.encode_prompts([""]).expand(batch, -1)

    def predict_noise(self, net: torch.nn.Module, latents: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor) -> torch.Tensor:
        return net(latents, timesteps, cond)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        grey = torch.sigmoid(2 * latents.flatten(1).mean(1))
        return grey[:, None, None, None].expand(-1, 3, 4, 4)


def mean_brightness(images: torch.Tensor, prompts: list[str], metadata: list[dict[str, Any]]
                    ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Mean brightness per image (differentiable)."""
    return images.mean(dim=(1, 2, 3)), {}


def kill_at_checkpoint(config: Path, out: Path, env: dict[str, str], *, step: int = 2, poll: float = 0.02) -> None:
    """Start ``textnorm train --config config``, SIGKILL it once its step-``step`` checkpoint
    exists, and check that it died before writing its final LoRA (a run killed mid-way)."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "textnorm", "train", "--config", str(config)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = out / "checkpoints" / f"step-{step:08d}.safetensors"
    deadline = time.monotonic() + 240
    try:
        while not ckpt.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(poll)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()  # an open pipe would be a ResourceWarning (an error in this suite)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "lora.safetensors").exists()  # it really died mid-run
