"""The trainers run unchanged on a second, non-Stable-Diffusion generator: a toy diffusion model
over a compact "scene latent" (4 slots x 3 features) with a bag-of-words prompt encoder and a
soft, differentiable renderer as decoder, written here against the T2IModel interface only."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from textnorm.train import model as tmodel

torch.set_num_threads(1)

WORDS = ["a", "red", "blue", "ball", "cube", "two", "three", "left", "right", ""]


class _Denoiser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12 + 8 + 1, 64)
        self.fc2 = nn.Linear(64, 12)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x.flatten(1), cond, (t.float() / 1000.0)[:, None]], dim=1)
        return self.fc2(torch.tanh(self.fc1(h))).view_as(x)


class SceneLatentModel:
    """A T2IModel whose latent is (4 slots, 3 features) and whose decoder is a soft renderer."""

    def __init__(self) -> None:
        from diffusers import DDIMScheduler

        torch.manual_seed(0)
        self.denoiser: nn.Module = _Denoiser()
        self.embed = nn.EmbeddingBag(len(WORDS), 8, mode="mean").requires_grad_(False)
        self.scheduler = DDIMScheduler(num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False)
        self.latent_shape: tuple[int, ...] = (4, 3)
        grid = torch.linspace(-1, 1, 16)
        self._yy, self._xx = torch.meshgrid(grid, grid, indexing="ij")

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device: torch.device | str) -> SceneLatentModel:
        self.denoiser.to(device)
        self.embed.to(device)
        return self

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = [[WORDS.index(w) if w in WORDS else 0 for w in p.split()] or [9] for p in prompts]
        flat = torch.tensor([i for row in ids for i in row])
        offsets = torch.tensor([0, *torch.tensor([len(r) for r in ids]).cumsum(0)[:-1].tolist()])
        return self.embed(flat, offsets)

    def null_embedding(self, batch: int) -> torch.Tensor:
        return self.encode_prompts([""]).expand(batch, -1)

    def predict_noise(self, net: nn.Module, latents: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor) -> torch.Tensor:
        return net(latents, timesteps, cond)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        # Each slot is a soft disc at (x, y) with a colour from its third feature.
        x, y, c = latents[..., 0, None, None], latents[..., 1, None, None], latents[..., 2, None, None]
        mask = torch.sigmoid(8 * (0.3 - ((self._xx - x.tanh()) ** 2 + (self._yy - y.tanh()) ** 2 + 1e-6).sqrt()))
        red = (mask * torch.sigmoid(c)).amax(1)
        blue = (mask * torch.sigmoid(-c)).amax(1)
        return torch.stack([red, torch.zeros_like(red), blue], dim=1)

    def add_lora(self, *, rank: int, alpha: float, targets: Sequence[str]) -> None:
        tmodel.add_lora(self.denoiser, rank=rank, alpha=alpha, targets=targets)

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        return tmodel.lora_state_dict(self.denoiser)

    def load_lora_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        tmodel.load_lora_state_dict(self.denoiser, state)

    def adapters_disabled(self) -> contextlib.AbstractContextManager[None]:
        return tmodel.adapters_disabled(self.denoiser)

    def merge_lora(self) -> None:
        tmodel.merge_lora(self.denoiser)

    def unmerge_lora(self) -> None:
        tmodel.unmerge_lora(self.denoiser)


def redness(images: torch.Tensor, prompts: list[str], meta: list[dict[str, Any]]) -> Any:
    return images[:, 0].mean(dim=(1, 2)) - images[:, 2].mean(dim=(1, 2)), {}


def test_scene_latent_model_satisfies_the_protocol() -> None:
    assert isinstance(SceneLatentModel(), tmodel.T2IModel)


@pytest.mark.parametrize("mode", ["ddpo", "sft", "draft", "best-of-n"])
def test_every_mode_runs_on_a_second_generator(mode: str, tmp_path: Path) -> None:
    from textnorm.train.config import load_config
    from textnorm.train.runner import train

    cfg = load_config(data={
        "mode": mode, "seed": 1,
        "model": {"lora_targets": ["fc1", "fc2"], "lora_rank": 2},
        "prompts": {"source": "list", "prompts": ["a red ball", "two blue cubes", "a ball left"],
                    "eval_fraction": 0.34},
        "sampling": {"num_steps": 5, "guidance_scale": 2.0},
        "optim": {"learning_rate": 5e-2},
        "ddpo": {"sample_batch_size": 4, "num_batches_per_epoch": 1, "train_batch_size": 2,
                 "stat_min_count": 2, "clip_range": 0.2},
        "sft": {"samples_per_prompt": 4, "top_fraction": 0.5},
        "draft": {"k": 2, "batch_size": 4},
        "best_of_n": {"n": 3},
        "run": {"output_dir": str(tmp_path), "steps": 3, "eval_every": 3, "progress_bar": False,
                "tensorboard": False},
    })
    res = train(cfg, reward_fn=redness, eval_reward_fn=redness, model=SceneLatentModel())
    if mode == "best-of-n":
        assert len(res.samples) == 2 * 3 and (tmp_path / "best_grid.png").is_file()
        return
    assert res.step == 3 and res.lora_path is not None
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if "loss" in r] == [1, 2, 3]
    from safetensors.torch import load_file

    weights = load_file(str(res.lora_path))
    assert set(k.split(".")[0] for k in weights) == {"fc1", "fc2"}
    assert any(float(v.abs().max()) > 0 for k, v in weights.items() if "lora_B" in k)


class _MeanColourModel(SceneLatentModel):
    """Decoder whose redness is sigmoid(mean colour feature): a smooth, strong reward signal."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        red = torch.sigmoid(latents[..., 2].mean(1))[:, None, None].expand(-1, 16, 16)
        return torch.stack([red, torch.zeros_like(red), 1 - red], dim=1)


def test_draft_raises_the_reward_on_the_toy_generator(tmp_path: Path) -> None:
    from textnorm.train.config import load_config
    from textnorm.train.runner import train

    cfg = load_config(data={
        "mode": "draft", "seed": 1, "model": {"lora_targets": ["fc1", "fc2"]},
        "prompts": {"source": "list", "prompts": ["a red ball", "two blue cubes"], "eval_fraction": 0.0},
        "sampling": {"num_steps": 4, "guidance_scale": 1.0}, "optim": {"learning_rate": 3e-3},
        "draft": {"k": 2, "batch_size": 32},
        "run": {"output_dir": str(tmp_path), "steps": 40, "checkpoint_every": 100, "progress_bar": False,
                "tensorboard": False, "image_every": 1000},
    })
    res = train(cfg, reward_fn=redness, model=_MeanColourModel())
    r = [x["reward_mean"] for x in res.records if "reward_mean" in x]
    assert sum(r[-10:]) / 10 > sum(r[:10]) / 10 + 0.1  # redness in [-1, 1]; measured +0.4


def test_deterministic_last_step_is_not_trained(tmp_path: Path) -> None:
    """A schedule ending at t = 0 without set_alpha_to_one has a zero-variance last step."""
    from textnorm.train.sampling import stochastic_steps

    model = SceneLatentModel()
    model.scheduler.set_timesteps(4)
    mask = stochastic_steps(model.scheduler, model.scheduler.timesteps, 1.0)
    assert mask.tolist() == [True, True, True, False]
    assert not stochastic_steps(model.scheduler, model.scheduler.timesteps, 0.0).any()
