"""DDPO (Black et al., 2023): PPO with clipping over the DDIM denoising steps.

Each epoch samples ``num_batches_per_epoch`` batches per process with the current model (eta > 0,
classifier-free guidance), recording every step's log-probability; scores them (the reward of
batch i runs in a worker thread while batch i + 1 is sampled); turns rewards into advantages with
a per-prompt stat tracker over the global batch; then runs ``num_inner_epochs`` passes of PPO-clip
over a ``timestep_fraction`` of each chain's steps, with an optional KL penalty to the frozen base
model (DPOK). All randomness is keyed by (seed, epoch, global sample index), so results do not
depend on the number of processes and a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from textnorm.train._common import (
    TAG_NOISE,
    TAG_PROMPTS,
    TAG_SHUFFLE,
    TAG_TIMESTEPS,
    TrainContext,
    call_reward,
    generate,
)
from textnorm.train.sampling import derive_seed, step_log_prob, stochastic_steps
from textnorm.train.stat_tracker import EPS, PerPromptStatTracker


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


def batch_advantages(rewards: np.ndarray) -> np.ndarray:
    """Advantages from whole-batch statistics (stat tracking off)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    return (rewards - rewards.mean()) / (rewards.std() + EPS)


class DDPOTrainer:
    """One :meth:`step` = one DDPO epoch (sampling, scoring, inner PPO epochs)."""

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        cfg = ctx.cfg.ddpo
        self.tracker = PerPromptStatTracker(buffer_size=cfg.stat_buffer_size, min_count=cfg.stat_min_count)
        self._pool = ThreadPoolExecutor(max_workers=1) if cfg.async_reward else None

    def state(self) -> dict[str, Any]:
        return {"stat_tracker": self.tracker.state_json()}

    def load_state(self, state: dict[str, Any]) -> None:
        if "stat_tracker" in state:
            self.tracker.load_state_json(state["stat_tracker"])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _global_indices(self) -> list[list[int]]:
        cfg, ctx = self.ctx.cfg.ddpo, self.ctx
        per_batch = cfg.sample_batch_size * ctx.world
        return [list(range(b * per_batch + ctx.rank * cfg.sample_batch_size,
                           b * per_batch + (ctx.rank + 1) * cfg.sample_batch_size))
                for b in range(cfg.num_batches_per_epoch)]

    def collect(self, epoch: int) -> dict[str, Any]:
        """Sample and score this process's share of the epoch; advantages from the global batch."""
        ctx, cfg = self.ctx, self.ctx.cfg.ddpo
        seed = ctx.cfg.seed
        total = cfg.sample_batch_size * cfg.num_batches_per_epoch * ctx.world
        train = ctx.prompts.train
        choice = np.random.default_rng(derive_seed(seed, TAG_PROMPTS, epoch)).integers(len(train), size=total)
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
        if cfg.per_prompt_stat_tracking:
            adv = self.tracker.update(global_prompts, global_r)
        else:
            adv = batch_advantages(global_r)
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
                        **info},
        }

    def step(self, epoch: int) -> dict[str, float]:
        ctx, cfg, scfg = self.ctx, self.ctx.cfg.ddpo, self.ctx.cfg.sampling
        data = self.collect(epoch)
        if ctx.cfg.run.image_every and epoch % ctx.cfg.run.image_every == 0:
            ctx.logger.images(epoch, data["images"], tag="train")
        n_local, steps = data["log_probs"].shape
        # Deterministic steps (zero variance) carry no log-probability: train on the others.
        usable = np.flatnonzero(stochastic_steps(ctx.model.scheduler, data["timesteps"], scfg.eta).numpy())
        if usable.size == 0:
            from textnorm._core import ParameterError

            raise ParameterError("sampling.num_steps: expected at least one stochastic DDIM step, "
                                 "received a schedule whose every step has zero variance")
        n_train_t = max(1, int(round(usable.size * cfg.timestep_fraction)))
        seed = ctx.cfg.seed
        sums: dict[str, float] = {"loss": 0.0, "clipfrac": 0.0, "approx_kl": 0.0, "kl": 0.0}
        count, grad_norms = 0, []
        for inner in range(cfg.num_inner_epochs):
            perm = np.random.default_rng(derive_seed(seed, TAG_SHUFFLE, epoch, inner)).permutation(n_local)
            t_order = np.stack([usable[np.random.default_rng(derive_seed(seed, TAG_TIMESTEPS, epoch, inner, g))
                                       .permutation(usable.size)[:n_train_t]] for g in data["gidx"]])
            minibatches = [perm[i:i + cfg.train_batch_size] for i in range(0, n_local, cfg.train_batch_size)]
            for mb_i, mb in enumerate(minibatches):
                boundary = (mb_i + 1) % cfg.gradient_accumulation_steps == 0 or mb_i == len(minibatches) - 1
                acc = cfg.gradient_accumulation_steps
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
        metrics["stat_tracker/prompts"] = self.tracker.stats()["prompts"]
        return metrics

    def _train_step(self, data: dict[str, Any], mb: np.ndarray, t_idx: np.ndarray, *, scale: float,
                    sync: bool) -> dict[str, float]:
        ctx, cfg, scfg = self.ctx, self.ctx.cfg.ddpo, self.ctx.cfg.sampling
        mb_t = torch.as_tensor(mb)
        ti = torch.as_tensor(t_idx)
        x = data["latents"][mb_t, ti]
        x_next = data["latents"][mb_t, ti + 1]
        t = data["timesteps"][ti.to(data["timesteps"].device)]
        cond = data["cond"][mb_t]
        sync_ctx = contextlib.nullcontext() if sync else ctx.accelerator.no_sync(ctx.net)
        with sync_ctx:
            with ctx.accelerator.autocast():
                lp, mean, std = step_log_prob(ctx.model, ctx.net, x, x_next, t, ti, data["timesteps"],
                                              cond, guidance_scale=scfg.guidance_scale, eta=scfg.eta)
                loss, info = ppo_loss(lp, data["log_probs"][mb_t, ti], data["advantages"][mb_t],
                                      clip_range=cfg.clip_range, adv_clip_max=cfg.adv_clip_max)
                kl = torch.zeros(())
                if cfg.kl_coef > 0:
                    ref_mean = self._reference_mean(x, x_next, t, ti, data["timesteps"], cond)
                    kl = (((mean - ref_mean) ** 2) / (2 * std**2)).flatten(1).mean(1).mean()
                    loss = loss + cfg.kl_coef * kl
            if not torch.isfinite(loss):
                from textnorm._core import NonFiniteError

                raise NonFiniteError(f"loss: expected a finite DDPO loss, received {loss.item()}")
            ctx.accelerator.backward(loss * scale)
        return {"loss": loss.item(), "clipfrac": float(info["clipfrac"]),
                "approx_kl": float(info["approx_kl"]), "kl": kl.item()}

    def _reference_mean(self, x: torch.Tensor, x_next: torch.Tensor, t: torch.Tensor, ti: torch.Tensor,
                        timesteps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Mean of the base model's step distribution (for the DPOK KL)."""
        ctx, scfg = self.ctx, self.ctx.cfg.sampling
        with torch.no_grad():
            if ctx.reference is not None:
                net = ctx.reference
                _, ref_mean, _ = step_log_prob(ctx.model, net, x, x_next, t, ti, timesteps, cond,
                                               guidance_scale=scfg.guidance_scale, eta=scfg.eta)
            else:
                with ctx.model.adapters_disabled():
                    _, ref_mean, _ = step_log_prob(ctx.model, ctx.model.denoiser, x, x_next, t, ti,
                                                   timesteps, cond, guidance_scale=scfg.guidance_scale,
                                                   eta=scfg.eta)
        return ref_mean
