"""Shared helpers for the tests of textnorm.train (no tests here): the tiny pipeline saved once,
small configs, and reward callables written for the tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import torch

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
