"""DRaFT-K (Clark et al., 2023) / AlignProp: backpropagate a differentiable reward through the
last K sampling steps.

The first T - K DDIM steps run without a graph; the last K keep it, the latents are decoded
differentiably and the loss is ``-mean(reward)``. The reward callable must return rewards that
carry gradient (a TextNorm reward over differentiable scorers does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from textnorm._core import NonFiniteError, ParameterError
from textnorm.train._common import TAG_NOISE, TAG_PROMPTS, call_reward, generate
from textnorm.train.config import check_int, check_number
from textnorm.train.registry import Algorithm, TrainerBase, register
from textnorm.train.sampling import derive_seed

if TYPE_CHECKING:
    import torch

    from textnorm.train.config import TrainConfig
else:
    from textnorm.train._lazy import torch


@dataclass
class DraftOptions:
    """DRaFT-K's options (config section ``[draft]``)."""

    k: int = 1  # sampling steps with a graph, counted from the end
    batch_size: int = 2  # per process
    eta: float = 0.0  # sampler noise while sampling with a graph (0: deterministic, as DRaFT)

    def validate(self, cfg: TrainConfig) -> None:
        """Raise ParameterError naming the first bad option."""
        check_int("draft.k", self.k)
        check_int("draft.batch_size", self.batch_size)
        check_number("draft.eta", self.eta, low=0.0, high=1.0)
        if self.k > cfg.sampling.num_steps:
            raise ParameterError(f"draft.k: expected at most sampling.num_steps "
                                 f"({cfg.sampling.num_steps}), received {self.k}")


def draft_loss(rewards: torch.Tensor) -> torch.Tensor:
    """The DRaFT objective: maximise the mean reward."""
    return -rewards.mean()


class DraftTrainer(TrainerBase):
    """One :meth:`step` = sample a batch with a graph through the last K steps, one update."""

    def step(self, step: int) -> dict[str, float]:
        ctx, cfg = self.ctx, self.ctx.cfg.draft
        seed, train = ctx.cfg.seed, ctx.prompts.train
        total = cfg.batch_size * ctx.world_size
        choice = np.random.default_rng(derive_seed(seed, TAG_PROMPTS, step)).integers(len(train), size=total)
        gidx = list(range(ctx.rank * cfg.batch_size, (ctx.rank + 1) * cfg.batch_size))
        prompts = [train[choice[g]] for g in gidx]
        meta = [ctx.prompts.train_meta[choice[g]] for g in gidx]
        keys = [derive_seed(seed, TAG_NOISE, step, g) for g in gidx]
        # The unwrapped denoiser: K forward passes feed one backward, which DDP's hooks do not
        # expect; gradients are averaged over processes explicitly below.
        traj, _ = generate(ctx, ctx.model.denoiser, prompts, keys, eta=cfg.eta, grad_steps=cfg.k)
        with ctx.accelerator.autocast():
            images = ctx.model.decode(traj.final)
            rewards, info = call_reward(ctx.reward_fn, images, prompts, meta, check_finite=False)
        ctx.check_finite(rewards, prompts)
        if not rewards.requires_grad:
            raise ParameterError("reward: draft mode needs a differentiable reward, received rewards "
                                 "without gradient (use ddpo, sft or best-of-n for this reward)")
        loss = draft_loss(rewards)
        if not torch.isfinite(loss):
            raise NonFiniteError(f"loss: expected a finite DRaFT loss, received {loss.item()}")
        ctx.accelerator.backward(loss)
        ctx.average_gradients()
        grad_norm = ctx.optimizer_step()
        all_r = ctx.accelerator.gather(rewards.detach())
        if ctx.cfg.run.image_every and step % ctx.cfg.run.image_every == 0:
            ctx.logger.images(step, images.detach(), tag="train")
        return {"loss": loss.item(), "reward_mean": float(all_r.mean()), "reward_std": float(all_r.std()),
                "grad_norm": grad_norm, "lr": float(ctx.optimizer.param_groups[0]["lr"]), **info}


DRAFT = register(Algorithm(
    name="draft", options=DraftOptions, trainer=DraftTrainer,
    summary="backpropagate a differentiable reward through the last K sampling steps (DRaFT-K)"))
