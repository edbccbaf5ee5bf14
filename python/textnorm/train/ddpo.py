"""DDPO (Black et al., 2023): PPO with clipping over the steps of a stochastic sampler.

Each epoch samples ``num_batches_per_epoch`` batches per process with the current model (eta > 0,
classifier-free guidance), recording every step's log-probability; scores them (the reward of
batch i runs in a worker thread while batch i + 1 is sampled); turns rewards into advantages with
a per-prompt stat tracker over the global batch; then runs ``num_inner_epochs`` passes of PPO-clip
over a ``timestep_fraction`` of the chain's steps inside ``step_window``, with an optional KL
penalty to the frozen base model (DPOK). All randomness is keyed by (seed, epoch, global sample
index), so results do not depend on the number of processes and a resumed run repeats an
uninterrupted one.

The sampler is the model's (:func:`textnorm.train.sampling.sampler_for`): DDIM on latent diffusion,
the model's own SDE elsewhere. :class:`DDPOTrainer` is also the base of GRPO
(:mod:`textnorm.train.grpo`), which changes how prompts are drawn and how advantages are formed.
"""

from __future__ import annotations

import contextlib
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from textnorm._core import NonFiniteError, ParameterError
from textnorm.train._common import (
    TAG_NOISE,
    TAG_PROMPTS,
    TAG_SHUFFLE,
    TAG_TIMESTEPS,
    TrainContext,
    call_reward,
    generate,
)
from textnorm.train.config import check_int, check_number
from textnorm.train.registry import Algorithm, TrainerBase, register
from textnorm.train.sampling import derive_seed, sampler_for
from textnorm.train.stat_tracker import EPS, PerPromptStatTracker

if TYPE_CHECKING:
    import torch

    from textnorm.train.config import TrainConfig
else:
    from textnorm.train._lazy import torch


@dataclass
class PPOOptions:
    """Options shared by the PPO-clip algorithms over sampler steps (DDPO, GRPO). Batch sizes are
    per process."""

    sample_batch_size: int = 8
    num_batches_per_epoch: int = 2
    train_batch_size: int = 4
    gradient_accumulation_steps: int = 1  # in train batches; timesteps always accumulate
    num_inner_epochs: int = 1
    clip_range: float = 1e-4
    adv_clip_max: float = 5.0
    timestep_fraction: float = 1.0  # share of the window's steps trained per sample and pass
    # [start, end): train step i of T only when start <= i / T < end. [0, 0.8] leaves out the last
    # fifth of the chain, the low-noise steps whose actions a hard decoder may ignore.
    step_window: list[float] = field(default_factory=lambda: [0.0, 1.0])
    kl_coef: float = 0.0  # DPOK-style KL to the frozen base model; 0 = off (the paper)
    async_reward: bool = True  # score batch i while batch i + 1 is sampled

    def validate(self, cfg: TrainConfig, *, section: str = "ddpo") -> None:
        """Raise ParameterError naming the first bad option."""
        for name in ("sample_batch_size", "num_batches_per_epoch", "train_batch_size",
                     "gradient_accumulation_steps", "num_inner_epochs"):
            check_int(f"{section}.{name}", getattr(self, name))
        for name in ("clip_range", "adv_clip_max"):
            check_number(f"{section}.{name}", getattr(self, name), low=0.0, low_open=True)
        check_number(f"{section}.kl_coef", self.kl_coef, low=0.0)
        check_number(f"{section}.timestep_fraction", self.timestep_fraction, low=0.0, low_open=True, high=1.0)
        window = self.step_window
        if (len(window) != 2 or not all(isinstance(w, (int, float)) and math.isfinite(w) for w in window)
                or not 0.0 <= window[0] < window[1] <= 1.0):
            raise ParameterError(f"{section}.step_window: expected [start, end] with 0 <= start < end "
                                 f"<= 1, received {window!r}")
        if cfg.options() is self and cfg.sampling.eta == 0.0:
            raise ParameterError(
                f"sampling.eta: {cfg.mode} needs a stochastic sampler, expected eta in (0, 1] (the "
                "papers use 1), received 0.0")


@dataclass
class DDPOOptions(PPOOptions):
    """DDPO's options (config section ``[ddpo]``): PPO's and the per-prompt stat tracker's."""

    per_prompt_stat_tracking: bool = True
    stat_buffer_size: int = 32
    stat_min_count: int = 16
    std_floor: float = 0.0  # divide by at least this std (reward units): saturated prompts stay near 0

    def validate(self, cfg: TrainConfig, *, section: str = "ddpo") -> None:
        """Raise ParameterError naming the first bad option."""
        super().validate(cfg, section=section)
        check_int(f"{section}.stat_buffer_size", self.stat_buffer_size)
        check_int(f"{section}.stat_min_count", self.stat_min_count, low=0)
        check_number(f"{section}.std_floor", self.std_floor, low=0.0)


def ppo_loss(log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, *,
             clip_range: float, adv_clip_max: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO-clip loss ``mean(max(-A r, -A clip(r, 1 - c, 1 + c)))`` with ``r = exp(lp - lp_old)``.

    Advantages are first clipped to ``[-adv_clip_max, adv_clip_max]``.

    Returns:
        ``(loss, info)`` with the ratio, the clipped fraction and an approximate KL.
    """
    adv = advantages.clamp(-adv_clip_max, adv_clip_max)
    ratio = torch.exp(log_probs - old_log_probs)
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = torch.maximum(unclipped, clipped).mean()
    info = {
        "ratio": ratio.detach(),
        "clipfrac": ((ratio.detach() - 1.0).abs() > clip_range).float().mean(),
        "approx_kl": 0.5 * ((log_probs - old_log_probs).detach() ** 2).mean(),
    }
    return loss, info


def batch_advantages(rewards: np.ndarray, *, std_floor: float = 0.0) -> np.ndarray:
    """Advantages from whole-batch statistics (stat tracking off)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    return (rewards - rewards.mean()) / (max(float(rewards.std()), std_floor) + EPS)


def window_steps(num_steps: int, window: list[float]) -> np.ndarray:
    """Indices i of a T-step chain with ``window[0] <= i / T < window[1]``."""
    i = np.arange(num_steps)
    return i[(i / num_steps >= window[0]) & (i / num_steps < window[1])]


class PPOTrainer(TrainerBase):
    """One :meth:`step` = one epoch: sample and score, form advantages, inner PPO-clip passes.

    Subclasses say how prompts are drawn (:meth:`choose_prompts`), how rewards become advantages
    (:meth:`advantages`) and how many minibatches make one update (:meth:`accumulation`).
    """

    opts: PPOOptions

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.opts = ctx.cfg.options()
        self._pool = ThreadPoolExecutor(max_workers=1) if self.opts.async_reward else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def choose_prompts(self, epoch: int, total: int) -> np.ndarray:
        """Training-prompt index of each of the epoch's ``total`` global samples (uniform)."""
        rng = np.random.default_rng(derive_seed(self.ctx.cfg.seed, TAG_PROMPTS, epoch))
        return rng.integers(len(self.ctx.prompts.train), size=total)

    def advantages(self, prompts: list[str], rewards: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Advantages of the global batch (in global sample order) and metrics about them."""
        raise NotImplementedError

    def accumulation(self, n_minibatches: int) -> int:
        """Minibatches accumulated into one optimizer step."""
        return self.opts.gradient_accumulation_steps

    # ---- sampling and scoring -----------------------------------------------------------------

    def _global_indices(self) -> list[list[int]]:
        cfg, ctx = self.opts, self.ctx
        per_batch = cfg.sample_batch_size * ctx.world_size
        return [list(range(b * per_batch + ctx.rank * cfg.sample_batch_size,
                           b * per_batch + (ctx.rank + 1) * cfg.sample_batch_size))
                for b in range(cfg.num_batches_per_epoch)]

    def collect(self, epoch: int) -> dict[str, Any]:
        """Sample and score this process's share of the epoch; advantages from the global batch."""
        ctx, cfg = self.ctx, self.opts
        seed = ctx.cfg.seed
        total = cfg.sample_batch_size * cfg.num_batches_per_epoch * ctx.world_size
        train = ctx.prompts.train
        choice = self.choose_prompts(epoch, total)
        batches: list[dict[str, Any]] = []
        futures: list[Future[Any] | tuple[torch.Tensor, dict[str, float]]] = []
        all_prompts: list[str] = []
        with ctx.sampling_weights() as net, torch.no_grad():
            for gidx in self._global_indices():
                prompts = [train[choice[g]] for g in gidx]
                meta = [ctx.prompts.train_meta[choice[g]] for g in gidx]
                keys = [derive_seed(seed, TAG_NOISE, epoch, g) for g in gidx]
                traj, cond = generate(ctx, net, prompts, keys)
                images = ctx.model.decode(traj.final)
                if self._pool is not None:
                    futures.append(self._pool.submit(call_reward, ctx.reward_fn, images, prompts, meta,
                                                     check_finite=False))
                else:
                    futures.append(call_reward(ctx.reward_fn, images, prompts, meta, check_finite=False))
                all_prompts.extend(prompts)
                batches.append({"latents": traj.latents, "log_probs": traj.log_probs, "cond": cond,
                                "timesteps": traj.timesteps, "gidx": gidx, "images": images})
        results = [f.result() if isinstance(f, Future) else f for f in futures]
        rewards = torch.cat([r for r, _ in results]).to(ctx.model.device)
        ctx.check_finite(rewards, all_prompts)
        info: dict[str, float] = {}
        for _, i in results:
            for k, v in i.items():
                info[k] = info.get(k, 0.0) + v / len(results)
        gidx_t = torch.tensor([g for b in batches for g in b["gidx"]], device=rewards.device)
        all_r = ctx.accelerator.gather(rewards.detach()).cpu().numpy()
        all_g = ctx.accelerator.gather(gidx_t).cpu().numpy()
        order = np.argsort(all_g, kind="stable")
        global_r = all_r[order].astype(np.float64)
        global_prompts = [train[choice[g]] for g in all_g[order]]
        adv, adv_info = self.advantages(global_prompts, global_r)
        local_adv = torch.as_tensor(adv[gidx_t.cpu().numpy()], dtype=torch.float32, device=rewards.device)
        return {
            "latents": torch.cat([b["latents"] for b in batches]),
            "log_probs": torch.cat([b["log_probs"] for b in batches]),
            "cond": torch.cat([b["cond"] for b in batches]),
            "timesteps": batches[0]["timesteps"],
            "gidx": gidx_t.cpu().tolist(),
            "advantages": local_adv,
            "images": batches[0]["images"],
            "metrics": {"reward_mean": float(global_r.mean()), "reward_std": float(global_r.std()),
                        **adv_info, **info},
        }

    def trained_steps(self, timesteps: torch.Tensor) -> np.ndarray:
        """The chain's steps that are stochastic and inside ``step_window`` (at least one)."""
        scfg = self.ctx.cfg.sampling
        stochastic = sampler_for(self.ctx.model).stochastic_steps(self.ctx.model, timesteps, scfg.eta)
        usable = np.flatnonzero(stochastic.cpu().numpy())
        usable = np.intersect1d(usable, window_steps(len(timesteps), self.opts.step_window))
        if usable.size == 0:
            raise ParameterError(
                f"{self.ctx.cfg.mode}.step_window: expected at least one stochastic step of the "
                f"{len(timesteps)}-step chain inside {self.opts.step_window}, received none (every "
                "step there has zero variance or lies outside the window)")
        return usable

    # ---- training ------------------------------------------------------------------------------

    def step(self, step: int) -> dict[str, float]:
        ctx, cfg = self.ctx, self.opts
        epoch = step
        data = self.collect(epoch)
        if ctx.cfg.run.image_every and epoch % ctx.cfg.run.image_every == 0:
            ctx.logger.images(epoch, data["images"], tag="train")
        n_local = data["log_probs"].shape[0]
        usable = self.trained_steps(data["timesteps"])
        n_train_t = max(1, int(round(usable.size * cfg.timestep_fraction)))
        seed = ctx.cfg.seed
        sums: dict[str, float] = {"loss": 0.0, "clipfrac": 0.0, "approx_kl": 0.0, "kl": 0.0}
        count, grad_norms = 0, []
        for inner in range(cfg.num_inner_epochs):
            perm = np.random.default_rng(derive_seed(seed, TAG_SHUFFLE, epoch, inner)).permutation(n_local)
            t_order = np.stack([usable[np.random.default_rng(derive_seed(seed, TAG_TIMESTEPS, epoch, inner, g))
                                       .permutation(usable.size)[:n_train_t]] for g in data["gidx"]])
            minibatches = [perm[i:i + cfg.train_batch_size] for i in range(0, n_local, cfg.train_batch_size)]
            acc = self.accumulation(len(minibatches))
            for mb_i, mb in enumerate(minibatches):
                boundary = (mb_i + 1) % acc == 0 or mb_i == len(minibatches) - 1
                group = min(acc, len(minibatches) - (mb_i // acc) * acc)  # minibatches in this update
                for j in range(n_train_t):
                    sync = boundary and j == n_train_t - 1
                    stats = self._train_step(data, mb, t_order[mb, j], scale=1.0 / (n_train_t * group), sync=sync)
                    for k in sums:
                        sums[k] += stats[k]
                    count += 1
                if boundary:
                    grad_norms.append(ctx.optimizer_step())
        metrics = dict(data["metrics"])
        metrics.update({k: v / max(count, 1) for k, v in sums.items()})
        metrics["grad_norm"] = float(np.mean(grad_norms)) if grad_norms else 0.0
        metrics["lr"] = float(ctx.optimizer.param_groups[0]["lr"])
        return metrics

    def _train_step(self, data: dict[str, Any], mb: np.ndarray, t_idx: np.ndarray, *, scale: float,
                    sync: bool) -> dict[str, float]:
        """Forward and backward of PPO-clip (plus KL) at step ``t_idx[b]`` of each sample ``mb[b]``."""
        ctx, cfg, scfg = self.ctx, self.opts, self.ctx.cfg.sampling
        sampler = sampler_for(ctx.model)
        mb_t = torch.as_tensor(mb)
        ti = torch.as_tensor(t_idx)
        x = data["latents"][mb_t, ti]
        x_next = data["latents"][mb_t, ti + 1]
        cond = data["cond"][mb_t]
        sync_ctx = contextlib.nullcontext() if sync else ctx.accelerator.no_sync(ctx.net)
        with sync_ctx:
            with ctx.accelerator.autocast():
                lp, mean, std = sampler.step_log_prob(ctx.model, ctx.net, x, x_next, ti, data["timesteps"],
                                                      cond, guidance_scale=scfg.guidance_scale, eta=scfg.eta)
                loss, info = ppo_loss(lp, data["log_probs"][mb_t, ti], data["advantages"][mb_t],
                                      clip_range=cfg.clip_range, adv_clip_max=cfg.adv_clip_max)
                kl = torch.zeros(())
                if cfg.kl_coef > 0:
                    ref_mean = self._reference_mean(x, x_next, ti, data["timesteps"], cond)
                    kl = (((mean - ref_mean) ** 2) / (2 * std**2)).flatten(1).mean(1).mean()
                    loss = loss + cfg.kl_coef * kl
            if not torch.isfinite(loss):
                raise NonFiniteError(f"loss: expected a finite {ctx.cfg.mode} loss, received {loss.item()}")
            ctx.accelerator.backward(loss * scale)
        return {"loss": loss.item(), "clipfrac": float(info["clipfrac"]),
                "approx_kl": float(info["approx_kl"]), "kl": kl.item()}

    def _reference_mean(self, x: torch.Tensor, x_next: torch.Tensor, ti: torch.Tensor,
                        timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Mean of the base model's step distribution (for the DPOK KL)."""
        ctx, scfg = self.ctx, self.ctx.cfg.sampling
        sampler = sampler_for(ctx.model)
        kw = {"guidance_scale": scfg.guidance_scale, "eta": scfg.eta}
        with torch.no_grad():
            if ctx.reference is not None:
                _, ref_mean, _ = sampler.step_log_prob(ctx.model, ctx.reference, x, x_next, ti, timesteps,
                                                       cond, **kw)
            else:
                with ctx.model.adapters_disabled():
                    _, ref_mean, _ = sampler.step_log_prob(ctx.model, ctx.model.denoiser, x, x_next, ti,
                                                           timesteps, cond, **kw)
        return ref_mean


class DDPOTrainer(PPOTrainer):
    """DDPO: advantages from a per-prompt stat tracker over recent epochs (or the batch)."""

    opts: DDPOOptions

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.tracker = PerPromptStatTracker(buffer_size=self.opts.stat_buffer_size,
                                            min_count=self.opts.stat_min_count,
                                            std_floor=self.opts.std_floor)

    def state(self) -> dict[str, Any]:
        return {"stat_tracker": self.tracker.state_json()}

    def load_state(self, state: Any) -> None:
        if "stat_tracker" in state:
            self.tracker.load_state_json(state["stat_tracker"])

    def advantages(self, prompts: list[str], rewards: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        if self.opts.per_prompt_stat_tracking:
            adv = self.tracker.update(prompts, rewards)
        else:
            adv = batch_advantages(rewards, std_floor=self.opts.std_floor)
        return adv, {"stat_tracker/prompts": self.tracker.stats()["prompts"]}


DDPO = register(Algorithm(
    name="ddpo", options=DDPOOptions, trainer=DDPOTrainer,
    summary="PPO-clip over the sampler's steps, per-prompt advantages (Black et al., 2023)"))
