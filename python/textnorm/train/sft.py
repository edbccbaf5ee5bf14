"""Reward-weighted supervised fine-tuning (the paper's SFT, after Lee et al., 2023).

The base model samples ``samples_per_prompt`` images per training prompt; each is scored. Each
sample gets the weight ``w = (r - min_p) / (max_p - min_p)``, its reward min-max normalised over
the samples of its prompt (weight 1 when a prompt's rewards are all equal). The top
``top_fraction`` of samples by reward is kept (over all samples, or per prompt). Training then
minimises, per step, over a minibatch of kept samples with random timesteps and noise,

    mean_i [ w_i * ||f_theta(x_t, t, c) - target||^2 ]  +  beta * mean_i ||f_theta - f_ref||^2

with squared norms averaged over latent dimensions, ``target`` the noise (or v; a flow model's
velocity, see :func:`noised_sample`), and ``f_ref`` the frozen base model. The sampled data set is cached in the run folder, so a resumed run reuses it.
With ``sft.data`` set to a best-of-n run folder, its samples are used instead of sampling anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textnorm._core import LayoutError, NonFiniteError, ParameterError
from textnorm.train._common import TAG_NOISE, TAG_SFT, TrainContext, call_reward, generate
from textnorm.train.config import check_choice, check_int, check_number
from textnorm.train.registry import Algorithm, TrainerBase, register
from textnorm.train.sampling import derive_seed, keyed_noise

if TYPE_CHECKING:
    import torch

    from textnorm.train.config import TrainConfig
else:
    from textnorm.train._lazy import torch


@dataclass
class SFTOptions:
    """The paper's reward-weighted SFT on the top fraction of base-model samples (``[sft]``)."""

    samples_per_prompt: int = 8
    sample_batch_size: int = 8
    top_fraction: float = 0.1
    selection: str = "global"  # global | per_prompt
    beta: float = 0.5  # weight of ||eps_theta - eps_ref||^2 to the frozen base model
    train_batch_size: int = 4
    data: str | None = None  # a best-of-n run folder (its samples.safetensors) instead of sampling

    def validate(self, cfg: TrainConfig) -> None:
        """Raise ParameterError naming the first bad option."""
        for name in ("samples_per_prompt", "sample_batch_size", "train_batch_size"):
            check_int(f"sft.{name}", getattr(self, name))
        check_choice("sft.selection", self.selection, ("global", "per_prompt"))
        check_number("sft.top_fraction", self.top_fraction, low=0.0, low_open=True, high=1.0)
        check_number("sft.beta", self.beta, low=0.0)


def minmax_weights(rewards: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per-group min-max normalised rewards in [0, 1]; 1 for a group with a single value."""
    rewards = np.asarray(rewards, dtype=np.float64)
    groups = np.asarray(groups)
    out = np.ones_like(rewards)
    for g in np.unique(groups):
        mask = groups == g
        lo, hi = rewards[mask].min(), rewards[mask].max()
        if hi > lo:
            out[mask] = (rewards[mask] - lo) / (hi - lo)
    return out


def select_top(rewards: np.ndarray, groups: np.ndarray, *, fraction: float, per_group: bool) -> np.ndarray:
    """Indices of the top ``fraction`` of samples by reward (at least one; per group if asked)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    groups = np.asarray(groups)
    if not per_group:
        k = max(1, int(np.ceil(fraction * rewards.size)))
        return np.sort(np.argsort(-rewards, kind="stable")[:k])
    keep: list[int] = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        k = max(1, int(np.ceil(fraction * idx.size)))
        keep.extend(idx[np.argsort(-rewards[idx], kind="stable")[:k]].tolist())
    return np.sort(np.asarray(keep, dtype=np.int64))


def noised_sample(scheduler: Any, x0: torch.Tensor, noise: torch.Tensor, index: torch.Tensor,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The noised sample, the network's timestep and the regression target at training step
    ``index`` (0 .. num_train_timesteps - 1) of each sample, in the model's own parametrisation.

    A diffusion scheduler (``add_noise``): its forward process at timestep ``index``, target the
    noise or v (``prediction_type``). A rectified-flow scheduler (``FlowMatchEulerDiscreteScheduler``,
    Stable Diffusion 3): ``x_t = (1 - s) x_0 + s eps`` at the sigma ``s`` of its training schedule
    (``u = (index + 1) / N`` shifted as the scheduler does, ``s = shift u / (1 + (shift - 1) u)``),
    timestep ``s N``, target the velocity ``eps - x_0`` the model predicts.

    Raises:
        ParameterError: a flow scheduler with resolution-dependent (dynamic) shifting, whose sigmas
            depend on the image size (FLUX); not supported.
    """
    if hasattr(scheduler, "add_noise"):
        xt = scheduler.add_noise(x0, noise, index)
        target = noise if scheduler.config.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, index)
        return xt, index, target
    if scheduler.config.get("use_dynamic_shifting", False):
        raise ParameterError("model: SFT supports flow-matching schedulers with a fixed shift; this one "
                             "shifts by resolution (use_dynamic_shifting)")
    n = scheduler.config.num_train_timesteps
    shift = float(scheduler.config.get("shift", 1.0))
    u = (index.double() + 1) / n
    sigma = (shift * u / (1 + (shift - 1) * u)).to(x0.dtype)
    s = sigma.reshape(-1, *([1] * (x0.ndim - 1)))
    return (1 - s) * x0 + s * noise, sigma * n, noise - x0


def sft_loss(pred: torch.Tensor, target: torch.Tensor, ref: torch.Tensor, weights: torch.Tensor, *,
             beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``mean(w * mse(pred, target)) + beta * mean(mse(pred, ref))``; mse averages over dimensions."""
    mse = ((pred.float() - target.float()) ** 2).flatten(1).mean(1)
    reg = ((pred.float() - ref.float()) ** 2).flatten(1).mean(1)
    fit = (weights.to(mse) * mse).mean()
    return fit + beta * reg.mean(), {"fit": fit.detach(), "reg": reg.mean().detach()}


class SFTTrainer(TrainerBase):
    """One :meth:`step` = one optimizer step on a minibatch of the kept samples."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.data: dict[str, torch.Tensor] | None = None
        self.prompts: list[str] = []

    def _cache_path(self) -> Path:
        return Path(self.ctx.cfg.run.output_dir) / "sft_data.safetensors"

    def prepare(self) -> None:
        """Sample with the base model, score, weight and select (or load the cached set)."""
        ctx, cfg = self.ctx, self.ctx.cfg.sft
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = self._cache_path()
        if path.is_file():
            with safe_open(str(path), framework="pt") as fh:
                self.prompts = json.loads((fh.metadata() or {})["prompts"])
            self.data = load_file(str(path), device=str(ctx.model.device))
            return
        train = ctx.prompts.train
        self.prompts = list(train)
        if cfg.data:
            self._from_best_of_n(cfg.data)
            return
        items = [(p, j) for p in range(len(train)) for j in range(cfg.samples_per_prompt)]
        mine = items[ctx.rank::ctx.world_size]
        latents: list[torch.Tensor] = []
        rewards: list[torch.Tensor] = []
        owners: list[int] = []
        with ctx.model.adapters_disabled() if ctx.use_lora else torch.no_grad(), torch.no_grad():
            net = ctx.reference if ctx.reference is not None else ctx.model.denoiser
            for lo in range(0, len(mine), cfg.sample_batch_size):
                chunk = mine[lo:lo + cfg.sample_batch_size]
                prompts = [train[p] for p, _ in chunk]
                keys = [derive_seed(ctx.cfg.seed, TAG_SFT, p, j) for p, j in chunk]
                traj, _ = generate(ctx, net, prompts, keys)
                images = ctx.model.decode(traj.final)
                r, _ = call_reward(ctx.reward_fn, images, prompts, [ctx.prompts.train_meta[p] for p, _ in chunk],
                                   check_finite=False)
                latents.append(traj.final.float())
                rewards.append(r.detach())
                owners.extend(p * cfg.samples_per_prompt + j for p, j in chunk)
        ctx.check_finite(torch.cat(rewards), [train[p] for p, _ in mine])
        lat = ctx.accelerator.gather(torch.cat(latents))
        rew = ctx.accelerator.gather(torch.cat(rewards))
        own = ctx.accelerator.gather(torch.tensor(owners, device=rew.device))
        order = torch.argsort(own.cpu())
        lat, rew, own = lat.cpu()[order], rew.cpu()[order].double().numpy(), own.cpu()[order].numpy()
        self._select(lat, rew, own // cfg.samples_per_prompt)

    def _from_best_of_n(self, folder: str) -> None:
        from textnorm.train.best_of_n import load_samples

        tensors, self.prompts = load_samples(folder)
        shape = tuple(tensors["latents"].shape[1:])
        if shape != tuple(self.ctx.model.latent_shape):
            raise LayoutError(f"sft.data: expected latents of shape {tuple(self.ctx.model.latent_shape)} "
                              f"for this model, received {shape} in {folder!r}")
        self._select(tensors["latents"].float(), tensors["rewards"].double().numpy(),
                     tensors["prompt_index"].numpy())

    def _select(self, lat: torch.Tensor, rew: np.ndarray, groups: np.ndarray) -> None:
        """Weight by per-prompt min-max reward, keep the top fraction, cache, log."""
        ctx, cfg, path = self.ctx, self.ctx.cfg.sft, self._cache_path()
        weights = minmax_weights(rew, groups)
        keep = select_top(rew, groups, fraction=cfg.top_fraction, per_group=cfg.selection == "per_prompt")
        self.data = {"latents": lat[keep].contiguous(), "weights": torch.as_tensor(weights[keep]).float(),
                     "prompt_index": torch.as_tensor(groups[keep]), "rewards": torch.as_tensor(rew[keep]).float()}
        if ctx.accelerator.is_main_process:
            from safetensors.torch import save_file

            tmp = path.with_suffix(".tmp")
            path.parent.mkdir(parents=True, exist_ok=True)
            save_file(self.data, str(tmp), metadata={"prompts": json.dumps(self.prompts)})
            tmp.replace(path)
        self.data = {k: v.to(ctx.model.device) for k, v in self.data.items()}
        ctx.logger.log(0, {"sft/kept": float(len(keep)), "sft/reward_all": float(rew.mean()),
                           "sft/reward_kept": float(rew[keep].mean())})

    def step(self, step: int) -> dict[str, float]:
        ctx, cfg = self.ctx, self.ctx.cfg.sft
        if self.data is None:
            self.prepare()
        assert self.data is not None
        n = self.data["latents"].shape[0]
        rng = np.random.default_rng(derive_seed(ctx.cfg.seed, TAG_SFT, 1_000_003, step))
        # Each process takes its slice of one global minibatch.
        global_idx = rng.integers(n, size=cfg.train_batch_size * ctx.world_size)
        local = np.arange(ctx.rank * cfg.train_batch_size, (ctx.rank + 1) * cfg.train_batch_size)
        idx = torch.as_tensor(global_idx[local])
        n_train = ctx.model.scheduler.config.num_train_timesteps
        index = torch.as_tensor(rng.integers(n_train, size=cfg.train_batch_size * ctx.world_size)[local])
        x0 = self.data["latents"][idx.to(self.data["latents"].device)]
        keys = [derive_seed(ctx.cfg.seed, TAG_NOISE, 7, step, int(g)) for g in local]
        noise = keyed_noise(keys, ctx.model.latent_shape).to(x0)
        xt, t, target = noised_sample(ctx.model.scheduler, x0, noise, index.to(x0.device))
        prompt_idx = self.data["prompt_index"][idx.to(self.data["prompt_index"].device)].tolist()
        cond = ctx.model.encode_prompts([self.prompts[i] for i in prompt_idx])
        with ctx.accelerator.autocast():
            pred = ctx.model.predict_noise(ctx.net, xt, t, cond)
            ref = ctx.reference_output(xt, t, cond) if cfg.beta > 0 else pred.detach()
            loss, info = sft_loss(pred, target, ref, self.data["weights"][idx.to(x0.device)], beta=cfg.beta)
        if not torch.isfinite(loss):
            raise NonFiniteError(f"loss: expected a finite SFT loss, received {loss.item()}")
        ctx.accelerator.backward(loss)
        grad_norm = ctx.optimizer_step()
        return {"loss": loss.item(), "fit": float(info["fit"]), "reg": float(info["reg"]),
                "grad_norm": grad_norm, "lr": float(ctx.optimizer.param_groups[0]["lr"])}


SFT = register(Algorithm(
    name="sft", options=SFTOptions, trainer=SFTTrainer,
    summary="reward-weighted fine-tuning on the best base-model samples (the paper's SFT)"))
