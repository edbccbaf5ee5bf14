"""Shared pieces of the trainers: the run context, reward calls, keyed sampling, evaluation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from textnorm._core import LayoutError, NonFiniteError, ParameterError
from textnorm.train.sampling import Trajectory, derive_seed, keyed_noise, sampler_for

if TYPE_CHECKING:
    import torch
    from torch import nn

    from textnorm.train.config import TrainConfig
    from textnorm.train.logs import RunLogger
    from textnorm.train.model import T2IModel
    from textnorm.train.prompts import PromptSet
else:
    from textnorm.train._lazy import torch

# A reward: (images (B, 3, H, W) in [0, 1], prompts, per-sample metadata) -> (rewards (B,), info).
RewardFn = Callable[["torch.Tensor", list[str], list[dict[str, Any]]], tuple[Any, Mapping[str, Any]]]

# Key-space tags for derive_seed, so different uses never share a random stream.
TAG_PROMPTS, TAG_NOISE, TAG_SHUFFLE, TAG_TIMESTEPS, TAG_EVAL, TAG_SFT = 1, 2, 3, 4, 5, 6


@dataclass
class TrainContext:
    """Everything a trainer needs; built by :func:`textnorm.train.runner.train`.

    Attributes:
        net: the denoiser as prepared by accelerate (DDP wrapper when distributed).
        reference: frozen copy of the denoiser for full fine-tuning (LoRA disables adapters instead).
    """

    cfg: TrainConfig
    model: T2IModel
    accelerator: Any
    net: nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any
    reward_fn: RewardFn
    prompts: PromptSet
    logger: RunLogger
    reference: nn.Module | None = None
    use_lora: bool = True
    optimizer_steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return int(self.accelerator.process_index)

    @property
    def world_size(self) -> int:
        """The number of processes (as torch.distributed names it)."""
        return int(self.accelerator.num_processes)

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.denoiser.parameters() if p.requires_grad]

    def reference_output(self, latents: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The frozen base model's output (no gradient)."""
        with torch.no_grad():
            if self.reference is not None:
                return self.model.predict_noise(self.reference, latents, t, cond)
            with self.model.adapters_disabled():
                return self.model.predict_noise(self.model.denoiser, latents, t, cond)

    @contextlib.contextmanager
    def sampling_weights(self) -> Iterator[nn.Module]:
        """The module to sample with: LoRA merged into the base weights when configured."""
        merge = self.use_lora and self.cfg.model.merge_lora_for_sampling
        if merge:
            self.model.merge_lora()
        try:
            yield self.model.denoiser
        finally:
            if merge:
                self.model.unmerge_lora()

    def check_finite(self, rewards: torch.Tensor, prompts: Sequence[str]) -> None:
        """Raise NonFiniteError on every process alike when any process has a NaN/inf reward
        (a rank raising alone would leave the others waiting in a collective)."""
        bad = (~torch.isfinite(rewards.detach())).sum().reshape(1).to(self.model.device)
        total = int(self.accelerator.reduce(bad, reduction="sum").item()) if self.world_size > 1 else int(bad.item())
        _raise_non_finite(rewards, prompts, total)

    def average_gradients(self) -> None:
        """Average the trainable gradients over processes (for backward passes that ran outside the
        DDP wrapper, such as DRaFT's several forward passes before one backward)."""
        if self.world_size == 1:
            return
        grads = [p.grad for p in self.trainable() if p.grad is not None]
        flat = self.accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="mean")
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def optimizer_step(self) -> float:
        """Check gradients, clip, step optimizer and LR schedule; returns the gradient norm."""
        params = self.trainable()
        for p in params:
            if p.grad is not None and not torch.isfinite(p.grad).all():
                self.optimizer.zero_grad(set_to_none=True)
                raise NonFiniteError("loss: expected finite gradients, received NaN/inf in the "
                                     "trainable weights' gradients; no update was applied")
        norm = self.accelerator.clip_grad_norm_(params, self.cfg.optim.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.optimizer_steps += 1
        return float(norm)


def _raise_non_finite(rewards: torch.Tensor, prompts: Sequence[str], total_bad: int) -> None:
    if total_bad:
        bad = ~torch.isfinite(rewards.detach())
        which = [prompts[i] for i in torch.nonzero(bad).flatten().tolist()[:3]]
        raise NonFiniteError(f"reward: expected finite rewards, received {total_bad} NaN/inf "
                             f"(of {rewards.numel()} here; prompts such as {which})")


def call_reward(fn: RewardFn, images: torch.Tensor, prompts: Sequence[str],
                metadata: Sequence[Mapping[str, Any]], *, check_finite: bool = True,
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """Call a reward, check its output: a per-sample (B,) reward, finite unless ``check_finite``
    is off (then :meth:`TrainContext.check_finite` checks it on every process at once)."""
    out = fn(images, list(prompts), [dict(m) for m in metadata])
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ParameterError(f"reward: expected the callable to return (rewards, info), received "
                             f"{type(out).__name__}")
    rewards, info = out
    if not torch.is_tensor(rewards):
        rewards = torch.as_tensor(np.asarray(rewards, dtype=np.float32))
    n = images.shape[0]
    if tuple(rewards.shape) != (n,):
        raise LayoutError(f"reward: expected per-sample rewards of shape ({n},), received "
                          f"{tuple(rewards.shape)}")
    rewards = rewards.float()
    if check_finite:
        _raise_non_finite(rewards, prompts, int((~torch.isfinite(rewards.detach())).sum()))
    means: dict[str, float] = {}
    flat: dict[str, Any] = {}
    for key, value in (info or {}).items():  # one level of nesting, e.g. {"raw": {scorer: (B,)}}
        if isinstance(value, Mapping):
            flat.update({f"{key}/{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    for key, value in flat.items():
        try:
            arr = value.detach().float().cpu().numpy() if torch.is_tensor(value) else np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if arr.size and np.isfinite(arr).all():
            means[f"reward_info/{key}"] = float(arr.mean())
    return rewards, means


def generate(ctx: TrainContext, net: nn.Module, prompts: Sequence[str], keys: Sequence[int], *,
             eta: float | None = None, grad_steps: int = 0, num_steps: int | None = None,
             ) -> tuple[Trajectory, torch.Tensor]:
    """Sample ``prompts`` with per-sample noise keys through the model's sampler; returns the
    trajectory and the conditioning."""
    cfg = ctx.cfg.sampling
    steps = cfg.num_steps if num_steps is None else num_steps
    noise = keyed_noise(keys, (steps + 1, *ctx.model.latent_shape)).to(ctx.model.device)
    cond = ctx.model.encode_prompts(prompts)
    with ctx.accelerator.autocast():
        traj = sampler_for(ctx.model).sample(
            ctx.model, net, cond, noise=noise, num_steps=steps, guidance_scale=cfg.guidance_scale,
            eta=cfg.eta if eta is None else eta, grad_steps=grad_steps)
    return traj, cond


def evaluate(ctx: TrainContext, step: int, eval_reward: RewardFn | None) -> dict[str, float]:
    """Training and evaluation reward on the held-out prompts at fixed seeds (every process alike)."""
    prompts = ctx.prompts.eval
    if not prompts:
        return {}
    n = ctx.cfg.run.eval_images_per_prompt
    all_prompts = [p for p in prompts for _ in range(n)]
    meta = [m for m in ctx.prompts.eval_meta for _ in range(n)]
    keys = [derive_seed(ctx.cfg.run.eval_seed, TAG_EVAL, i, j) for i in range(len(prompts)) for j in range(n)]
    batch = ctx.cfg.run.eval_batch_size
    steps = ctx.cfg.sampling.eval_num_steps or ctx.cfg.sampling.num_steps
    train_r, eval_r, images = [], [], []
    with ctx.sampling_weights() as net, torch.no_grad():
        for lo in range(0, len(all_prompts), batch):
            sl = slice(lo, lo + batch)
            traj, _ = generate(ctx, net, all_prompts[sl], keys[sl], num_steps=steps)
            imgs = ctx.model.decode(traj.final)
            train_r.append(call_reward(ctx.reward_fn, imgs, all_prompts[sl], meta[sl])[0])
            if eval_reward is not None:
                eval_r.append(call_reward(eval_reward, imgs, all_prompts[sl], meta[sl])[0])
            images.append(imgs.cpu())
    out = {"eval/train_reward": float(torch.cat(train_r).mean())}
    if eval_r:
        out["eval/eval_reward"] = float(torch.cat(eval_r).mean())
    ctx.logger.images(step, torch.cat(images), tag="eval")
    return out
