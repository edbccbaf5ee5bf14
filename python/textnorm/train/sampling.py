"""DDIM sampling with the log-probability of every stochastic step (DDPO needs them).

A policy-gradient algorithm (DDPO, GRPO) reaches the sampler only through :class:`Sampler`:
sample chains recording each step's log-probability, recompute one step's log-probability with
gradient, and say which steps are stochastic. :data:`DDIM` implements it for latent diffusion
models with a DDIM scheduler; a model with another sampler (flow matching's SDE) carries its own
as a ``sampler`` attribute, and :func:`sampler_for` picks it up.

One DDIM step from x_t (alpha_t = alphas_cumprod[t]) to the next timestep (alpha_p) with the
network output turned into a noise estimate eps and a clean estimate x0:

    sigma   = eta * sqrt((1 - alpha_p) / (1 - alpha_t)) * sqrt(1 - alpha_t / alpha_p)
    mean    = sqrt(alpha_p) * x0 + sqrt(1 - alpha_p - sigma^2) * eps
    x_prev  = mean + sigma * z,   z ~ N(0, I)

so x_prev | x_t is Gaussian and its log density is exact. We report it averaged over the latent's
dimensions (one number per sample), which keeps importance ratios in a usable range whatever the
latent size. Noise comes from per-sample generators keyed by integers, so a sample does not depend
on its batch, its process or the number of processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

    from textnorm.train.model import T2IModel
else:
    from textnorm.train._lazy import torch


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (stable across runs, platforms and processes)."""
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


def keyed_noise(keys: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """Standard normal noise of ``(len(keys), *shape)``, row i drawn from a generator seeded by keys[i]."""
    rows = []
    for key in keys:
        gen = torch.Generator().manual_seed(int(key))
        rows.append(torch.randn(tuple(shape), generator=gen))
    return torch.stack(rows)


def step_alphas(scheduler: object, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """alphas_cumprod at each timestep and at the one it steps to (the final alpha after the last)."""
    ac = scheduler.alphas_cumprod.double()  # type: ignore[attr-defined]
    final = torch.as_tensor(float(scheduler.final_alpha_cumprod), dtype=torch.float64)  # type: ignore[attr-defined]
    alpha_t = ac[timesteps.long()]
    alpha_p = torch.cat([ac[timesteps[1:].long()], final[None]])
    return alpha_t, alpha_p


def stochastic_steps(scheduler: object, timesteps: torch.Tensor, eta: float) -> torch.Tensor:
    """Boolean (T,): the steps whose transition has a non-zero standard deviation.

    A step onto the final alpha from the same alpha (a schedule ending at t = 0 without
    ``set_alpha_to_one``) is deterministic: its log-probability is undefined and DDPO skips it.
    """
    alpha_t, alpha_p = step_alphas(scheduler, timesteps.cpu())
    var = (1 - alpha_p) / (1 - alpha_t) * (1 - alpha_t / alpha_p)
    return (eta * var.clamp(min=0).sqrt()) > 1e-6


def _bcast(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, *([1] * (like.ndim - 1))).to(like.device, like.dtype)


def ddim_step(out: torch.Tensor, sample: torch.Tensor, alpha_t: torch.Tensor, alpha_p: torch.Tensor,
              *, eta: float, prediction_type: str = "epsilon", noise: torch.Tensor | None = None,
              prev_sample: torch.Tensor | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One DDIM step with its Gaussian log-probability.

    Args:
        out: network output (epsilon or v), like ``sample``.
        sample: x_t, (B, ...).
        alpha_t, alpha_p: alphas_cumprod at t and at the next timestep, scalars or (B,).
        eta: 0 deterministic DDIM, 1 DDPM-like variance.
        prediction_type: the scheduler's ``epsilon`` or ``v_prediction``.
        noise: z for the step (B, ...); ignored when ``prev_sample`` is given.
        prev_sample: score this x_prev instead of drawing one (DDPO's recomputation).

    Returns:
        ``(prev_sample, log_prob (B,), mean, std (B, 1, ...))``; log_prob is the mean over dimensions.
    """
    a_t = _bcast(torch.as_tensor(alpha_t, dtype=torch.float64).expand(sample.shape[0]), sample)
    a_p = _bcast(torch.as_tensor(alpha_p, dtype=torch.float64).expand(sample.shape[0]), sample)
    if prediction_type == "epsilon":
        eps = out
        x0 = (sample - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    elif prediction_type == "v_prediction":
        x0 = a_t.sqrt() * sample - (1 - a_t).sqrt() * out
        eps = a_t.sqrt() * out + (1 - a_t).sqrt() * sample
    else:
        raise ValueError(f"prediction_type: expected 'epsilon' or 'v_prediction', received {prediction_type!r}")
    var = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
    std = eta * var.clamp(min=0).sqrt()
    mean = a_p.sqrt() * x0 + (1 - a_p - std**2).clamp(min=0).sqrt() * eps
    if prev_sample is None:
        prev_sample = mean if noise is None or eta == 0 else mean + std * noise.to(mean)
    log_prob = gaussian_log_prob(prev_sample, mean, std)
    return prev_sample, log_prob, mean, std


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, std^2) averaged over all but the first dimension; -inf-free only for std > 0."""
    std = std.clamp(min=torch.finfo(mean.dtype).tiny ** 0.5)
    lp = -((x.detach() - mean) ** 2) / (2 * std**2) - std.log() - 0.5 * math.log(2 * math.pi)
    return lp.flatten(1).mean(dim=1)


def guided_output(model: T2IModel, net: nn.Module, latents: torch.Tensor, t: torch.Tensor,
                  cond: torch.Tensor, null: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """Classifier-free guided network output: u + w (c - u); a single conditional pass when w = 1."""
    tt = t.expand(latents.shape[0]) if t.ndim == 0 else t
    if guidance_scale == 1.0:
        return model.predict_noise(net, latents, tt, cond)
    both = model.predict_noise(net, torch.cat([latents, latents]), torch.cat([tt, tt]),
                               torch.cat([null, cond]))
    uncond, text = both.chunk(2)
    return uncond + guidance_scale * (text - uncond)


@dataclass
class Trajectory:
    """One batch of sampled chains.

    Attributes:
        latents: (B, T + 1, ...) states x_T .. x_0 (detached).
        log_probs: (B, T) log-probability of each step (mean over dimensions).
        timesteps: (T,) the scheduler timesteps, in sampling order.
        final: x_0 (B, ...), with gradient through the last ``grad_steps`` steps when requested.
    """

    latents: torch.Tensor
    log_probs: torch.Tensor
    timesteps: torch.Tensor
    final: torch.Tensor


def sample(model: T2IModel, net: nn.Module, cond: torch.Tensor, *, noise: torch.Tensor,
           num_steps: int, guidance_scale: float, eta: float, grad_steps: int = 0) -> Trajectory:
    """Sample a batch with DDIM, recording every state and per-step log-probability.

    Args:
        model: the generator.
        net: ``model.denoiser`` or its wrapper.
        cond: prompt conditioning (B, ...).
        noise: (B, T + 1, *latent_shape): index 0 is x_T, index i + 1 the noise of step i.
        num_steps: T.
        guidance_scale: classifier-free guidance weight w.
        eta: DDIM stochasticity.
        grad_steps: keep the autograd graph through the last ``grad_steps`` steps (DRaFT-K).
    """
    scheduler = model.scheduler
    scheduler.set_timesteps(num_steps, device=cond.device)
    timesteps = scheduler.timesteps.to(cond.device)
    alpha_t, alpha_p = step_alphas(scheduler, timesteps.cpu())
    pred_type = scheduler.config.prediction_type
    null = model.null_embedding(cond.shape[0]).to(cond)
    x = noise[:, 0].to(cond.device)
    states, log_probs = [x], []
    for i, t in enumerate(timesteps):
        with torch.set_grad_enabled(i >= num_steps - grad_steps):
            out = guided_output(model, net, x, t, cond, null, guidance_scale)
            x, lp, _, _ = ddim_step(out.float(), x, alpha_t[i], alpha_p[i], eta=eta,
                                    prediction_type=pred_type, noise=noise[:, i + 1].to(x.device))
            x = x.float()
        states.append(x.detach())
        log_probs.append(lp.detach())
    return Trajectory(latents=torch.stack(states, dim=1), log_probs=torch.stack(log_probs, dim=1),
                      timesteps=timesteps, final=x)


def step_log_prob(model: T2IModel, net: nn.Module, latents: torch.Tensor, next_latents: torch.Tensor,
                  t: torch.Tensor, index: int | torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor,
                  *, guidance_scale: float, eta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Recompute log p(next_latents | latents) at step ``index`` under ``net`` (with gradient).

    Returns ``(log_prob (B,), mean, std)``.
    """
    alpha_t, alpha_p = step_alphas(model.scheduler, timesteps.cpu())
    null = model.null_embedding(cond.shape[0]).to(cond)
    out = guided_output(model, net, latents, t, cond, null, guidance_scale)
    idx = torch.as_tensor(index).cpu()
    _, lp, mean, std = ddim_step(out.float(), latents, alpha_t[idx], alpha_p[idx], eta=eta,
                                 prediction_type=model.scheduler.config.prediction_type,
                                 prev_sample=next_latents)
    return lp, mean, std


class Sampler(Protocol):
    """The stochastic sampler of a model, as the policy-gradient algorithms use it.

    Noise is given, never drawn: ``noise[:, 0]`` is the starting latent x_T and ``noise[:, i + 1]``
    the Gaussian noise of step i, so a sample depends only on its noise keys. ``eta`` is the
    sampler's noise level (DDIM's eta; Flow-GRPO's ``a`` for a flow-matching SDE), 0 for the
    deterministic sampler. Each step i is a Gaussian transition x_i -> x_{i+1} with a mean that
    depends on the network and a standard deviation that does not, so its log-density is exact.
    """

    def sample(self, model: Any, net: nn.Module, cond: torch.Tensor, *, noise: torch.Tensor,
               num_steps: int, guidance_scale: float, eta: float, grad_steps: int = 0) -> Trajectory:
        """Sample a batch; see :func:`sample` (the arguments' meaning is the same)."""
        ...

    def step_log_prob(self, model: Any, net: nn.Module, latents: torch.Tensor,
                      next_latents: torch.Tensor, index: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor, *, guidance_scale: float, eta: float,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(next_latents | latents) at step ``index[b]`` of each sample b, with gradient.

        Args:
            model: the generator.
            net: its denoiser or a wrapper of it (DDP), or a frozen reference copy.
            latents, next_latents: (B, ...) states before and after the step.
            index: (B,) step indices into ``timesteps`` (samples may be at different steps).
            timesteps: (T,) the trajectory's timesteps, as :class:`Trajectory` recorded them.
            cond: (B, ...) prompt conditioning.

        Returns:
            ``(log_prob (B,), mean, std)``: log_prob averaged over the latent's dimensions, as
            the sampled :attr:`Trajectory.log_probs` are; mean like ``latents``; std
            broadcastable to it. The KL term of DDPO/GRPO uses mean and std.
        """
        ...

    def stochastic_steps(self, model: Any, timesteps: torch.Tensor, eta: float) -> torch.Tensor:
        """Boolean (T,): the steps whose transition has a non-zero standard deviation (only
        those have a log-probability and are trained)."""
        ...


class DDIMSampler:
    """:class:`Sampler` for latent diffusion models with a diffusers DDIM scheduler."""

    def sample(self, model: Any, net: nn.Module, cond: torch.Tensor, *, noise: torch.Tensor,
               num_steps: int, guidance_scale: float, eta: float, grad_steps: int = 0) -> Trajectory:
        return sample(model, net, cond, noise=noise, num_steps=num_steps,
                      guidance_scale=guidance_scale, eta=eta, grad_steps=grad_steps)

    def step_log_prob(self, model: Any, net: nn.Module, latents: torch.Tensor,
                      next_latents: torch.Tensor, index: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor, *, guidance_scale: float, eta: float,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = timesteps[index.to(timesteps.device)]
        return step_log_prob(model, net, latents, next_latents, t, index, timesteps, cond,
                             guidance_scale=guidance_scale, eta=eta)

    def stochastic_steps(self, model: Any, timesteps: torch.Tensor, eta: float) -> torch.Tensor:
        return stochastic_steps(model.scheduler, timesteps, eta)


DDIM = DDIMSampler()


def sampler_for(model: Any) -> Sampler:
    """The model's own ``sampler`` attribute when it has one, else :data:`DDIM`."""
    own = getattr(model, "sampler", None)
    return DDIM if own is None else own
