"""Flow-GRPO's stochastic sampler for rectified-flow models, with exact per-step log-probabilities.

A rectified-flow model (Stable Diffusion 3, FLUX) interpolates ``x_t = (1 - t) x_0 + t eps`` with
``t`` (the scheduler's sigma) running from 1 (noise) to 0 (data), and predicts the velocity
``v = eps - x_0``. Its sampler integrates the ODE ``dx = v dt`` backwards with Euler steps
``x_s = x_t + (s - t) v``; that is diffusers' ``FlowMatchEulerDiscreteScheduler.step``.

From ``x_t`` and ``v`` the model's estimates are ``x_0 = x_t - t v`` and ``eps = x_t + (1 - t) v``,
so its score is ``grad log p_t(x) = -eps / t = -(x_t + (1 - t) v) / t``. For any ``sigma_t >= 0``
the reverse-time SDE

    dx = [v + sigma_t^2 / (2 t) * (x + (1 - t) v)] dt + sigma_t dw      (dt < 0)

has the same marginals as the ODE (Fokker-Planck: the extra drift ``-sigma^2/2 * score`` and the
diffusion cancel). Flow-GRPO (Liu et al., 2025) takes ``sigma_t = a * sqrt(t / (1 - t))`` with a
noise level ``a``. One Euler-Maruyama step from ``t`` to ``s < t`` (``dt = s - t``) is Gaussian:

    mean = x_t + dt * [v + sigma_t^2 / (2 t) * (x_t + (1 - t) v)]
    std  = sigma_t * sqrt(t - s)
    x_s  = mean + std * z,   z ~ N(0, I)

so ``log p(x_s | x_t)`` is exact. ``a = 0`` gives back the Euler ODE step (up to rounding: the
coefficients are formed in float64).

``sigma_t`` is infinite at ``t = 1``, where every schedule starts; as Flow-GRPO does, the noise
formula is evaluated at ``min(t, t_cap)`` with ``t_cap`` the largest schedule value below 1 (in
continuous time any finite noise schedule keeps the ODE's marginals; only the first step's noise
changes).

Log-probabilities are averaged over the latent's dimensions (one number per sample), as in
:mod:`textnorm.train.sampling`, so PPO ratios stay in a usable range whatever the latent size.
:data:`FLOW_SDE` is the trainers' sampler for flow-matching models (``eta`` is the noise level
``a``); :class:`~textnorm.train.flow_model.FlowMatchingModel` carries it as its ``sampler``.
Sampling with fewer steps in training than in evaluation is a different ``num_steps`` per call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from textnorm._core import ParameterError
from textnorm.train.model import T2IModel
from textnorm.train.sampling import Trajectory, gaussian_log_prob, guided_output


def noise_std(t: torch.Tensor, *, noise_level: float, t_cap: float) -> torch.Tensor:
    """Flow-GRPO's diffusion coefficient ``sigma_t = a * sqrt(t / (1 - t))`` at ``min(t, t_cap)``.

    Args:
        t: flow times in [0, 1] (float64 recommended).
        noise_level: ``a >= 0``.
        t_cap: largest time the formula is evaluated at (< 1, so ``sigma_t`` stays finite).
    """
    if not 0.0 <= t_cap < 1.0:
        raise ParameterError(f"t_cap: expected a value in [0, 1), received {t_cap}")
    tc = torch.as_tensor(t).clamp(max=t_cap)
    return noise_level * (tc / (1 - tc)).sqrt()


def _col(x: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Per-sample scalars (or one scalar) shaped to broadcast against ``like`` (B, ...)."""
    v = torch.as_tensor(x, dtype=torch.float64).expand(like.shape[0])
    return v.reshape(-1, *([1] * (like.ndim - 1))).to(like.device, like.dtype)


def sde_step(velocity: torch.Tensor, sample: torch.Tensor, t: torch.Tensor | float,
             t_next: torch.Tensor | float, *, noise_level: float, t_cap: float,
             noise: torch.Tensor | None = None, prev_sample: torch.Tensor | None = None,
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Euler-Maruyama step of the marginal-preserving SDE, with its Gaussian log-probability.

    Args:
        velocity: the (guided) network output ``v``, like ``sample``.
        sample: ``x_t`` (B, ...).
        t, t_next: flow times of this state and of the next one (``t_next < t``), scalars or (B,).
        noise_level: ``a``; 0 is the deterministic Euler ODE step.
        t_cap: see :func:`noise_std`.
        noise: ``z`` (B, ...) for drawing the next state; ignored when ``prev_sample`` is given.
        prev_sample: score this ``x_{t_next}`` instead of drawing one (PPO's recomputation).

    Returns:
        ``(next_sample, log_prob (B,), mean, std (B, 1, ...))``; ``log_prob`` is the mean over
        dimensions and is only meaningful where ``std > 0``.
    """
    t64 = torch.as_tensor(t, dtype=torch.float64)
    tn64 = torch.as_tensor(t_next, dtype=torch.float64)
    sig = noise_std(t64, noise_level=noise_level, t_cap=t_cap)
    dt = tn64 - t64
    # Coefficients in float64, then in the sample's dtype: mean = c_x * x + c_v * v.
    k = sig**2 / (2 * t64.clamp(min=torch.finfo(torch.float64).tiny))
    c_x = _col(1 + k * dt, sample)
    c_v = _col(dt * (1 + k * (1 - t64)), sample)
    std = _col(sig * (-dt).clamp(min=0).sqrt(), sample)
    mean = c_x * sample + c_v * velocity.to(sample.dtype)
    if prev_sample is None:
        prev_sample = mean if noise is None or noise_level == 0 else mean + std * noise.to(mean)
    return prev_sample, gaussian_log_prob(prev_sample, mean, std), mean, std


def transition_log_prob(velocity: torch.Tensor, sample: torch.Tensor, next_sample: torch.Tensor,
                        t: torch.Tensor | float, t_next: torch.Tensor | float, *, noise_level: float,
                        t_cap: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``log p(next_sample | sample)`` for given pairs (differentiable in ``velocity``).

    Returns ``(log_prob (B,), mean, std)``.
    """
    _, lp, mean, std = sde_step(velocity, sample, t, t_next, noise_level=noise_level, t_cap=t_cap,
                                prev_sample=next_sample)
    return lp, mean, std


def flow_times(scheduler: Any, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Flow times of each scheduler timestep and of the state it steps to, and ``t_cap``.

    diffusers' flow-match Euler scheduler sets ``timesteps = sigmas * num_train_timesteps`` and
    ends every schedule at sigma 0; both are read back here in float64.
    """
    if scheduler.config.get("invert_sigmas", False):
        raise ParameterError("scheduler.invert_sigmas: expected a schedule from noise (t = 1) to "
                             "data (t = 0), received an inverted one")
    t = timesteps.detach().double().cpu() / float(scheduler.config.num_train_timesteps)
    t_next = torch.cat([t[1:], torch.zeros(1, dtype=torch.float64)])
    below = t[t < 1.0]
    if below.numel() == 0:
        raise ParameterError(f"sampling.num_steps: expected a schedule with a time below 1 (two "
                             f"steps or more) for SDE sampling, received times {t.tolist()}")
    return t, t_next, float(below.max())


def set_flow_timesteps(model: T2IModel, num_steps: int, device: torch.device | str) -> torch.Tensor:
    """Set ``num_steps`` on the model's flow-match scheduler as its pipeline does; returns timesteps.

    With dynamic shifting (``use_dynamic_shifting``) the shift ``mu`` depends on the number of
    image tokens, computed as diffusers' SD3 pipeline computes it.
    """
    scheduler = model.scheduler
    kwargs: dict[str, Any] = {}
    if scheduler.config.get("use_dynamic_shifting", False):
        from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3 import calculate_shift

        patch = int(getattr(model, "patch_size", 1))
        tokens = (model.latent_shape[-2] // patch) * (model.latent_shape[-1] // patch)
        c = scheduler.config
        kwargs["mu"] = calculate_shift(tokens, c.get("base_image_seq_len", 256),
                                       c.get("max_image_seq_len", 4096), c.get("base_shift", 0.5),
                                       c.get("max_shift", 1.16))
    scheduler.set_timesteps(num_steps, device=device, **kwargs)
    return scheduler.timesteps.to(device)


def stochastic_steps(model: T2IModel, timesteps: torch.Tensor, eta: float) -> torch.Tensor:
    """Boolean (T,): the steps whose transition has a non-zero standard deviation."""
    t, t_next, cap = flow_times(model.scheduler, timesteps)
    std = noise_std(t, noise_level=eta, t_cap=cap) * (t - t_next).clamp(min=0).sqrt()
    return std > 1e-6


def sample(model: T2IModel, net: nn.Module, cond: torch.Tensor, *, noise: torch.Tensor,
           num_steps: int, guidance_scale: float, eta: float, grad_steps: int = 0) -> Trajectory:
    """Sample a batch with the SDE (``eta`` is the noise level ``a``), recording every state and
    step log-probability; ``eta = 0`` reproduces the pipeline's Euler ODE sampling.

    Args:
        model: a flow-matching :class:`T2IModel` (velocity output, flow-match scheduler).
        net: ``model.denoiser`` or its wrapper.
        cond: prompt conditioning (B, ...).
        noise: (B, T + 1, *latent_shape): index 0 is x_1, index i + 1 the noise of step i.
        num_steps: T.
        guidance_scale: classifier-free guidance weight.
        eta: the noise level ``a``.
        grad_steps: keep the autograd graph through the last ``grad_steps`` steps.
    """
    timesteps = set_flow_timesteps(model, num_steps, cond.device)
    t, t_next, cap = flow_times(model.scheduler, timesteps)
    null = model.null_embedding(cond.shape[0]).to(cond)
    x = noise[:, 0].to(cond.device)
    states, log_probs = [x], []
    for i, ts in enumerate(timesteps):
        with torch.set_grad_enabled(i >= num_steps - grad_steps):
            v = guided_output(model, net, x, ts, cond, null, guidance_scale)
            x, lp, _, _ = sde_step(v.float(), x, t[i], t_next[i], noise_level=eta, t_cap=cap,
                                   noise=noise[:, i + 1].to(x.device))
            x = x.float()
        states.append(x.detach())
        log_probs.append(lp.detach())
    return Trajectory(latents=torch.stack(states, dim=1), log_probs=torch.stack(log_probs, dim=1),
                      timesteps=timesteps, final=x)


def step_log_prob(model: T2IModel, net: nn.Module, latents: torch.Tensor, next_latents: torch.Tensor,
                  index: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor, *,
                  guidance_scale: float, eta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Recompute ``log p(next_latents | latents)`` at step ``index[b]`` of each sample ``b`` under
    ``net`` (with gradient).

    Args:
        index: (B,) step indices into ``timesteps``, the trajectory's recorded timesteps.

    Returns:
        ``(log_prob (B,), mean, std)``.
    """
    times, times_next, cap = flow_times(model.scheduler, timesteps)
    idx = torch.as_tensor(index).reshape(-1).cpu().expand(latents.shape[0])
    null = model.null_embedding(cond.shape[0]).to(cond)
    v = guided_output(model, net, latents, timesteps[idx.to(timesteps.device)], cond, null,
                      guidance_scale)
    return transition_log_prob(v.float(), latents, next_latents, times[idx], times_next[idx],
                               noise_level=eta, t_cap=cap)


class FlowSDESampler:
    """The trainers' sampler (``textnorm.train.sampling.Sampler``) for flow-matching models:
    :func:`sample`, :func:`step_log_prob` and :func:`stochastic_steps` of this module."""

    def sample(self, model: Any, net: nn.Module, cond: torch.Tensor, *, noise: torch.Tensor,
               num_steps: int, guidance_scale: float, eta: float, grad_steps: int = 0) -> Trajectory:
        return sample(model, net, cond, noise=noise, num_steps=num_steps,
                      guidance_scale=guidance_scale, eta=eta, grad_steps=grad_steps)

    def step_log_prob(self, model: Any, net: nn.Module, latents: torch.Tensor,
                      next_latents: torch.Tensor, index: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor, *, guidance_scale: float, eta: float,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return step_log_prob(model, net, latents, next_latents, index, timesteps, cond,
                             guidance_scale=guidance_scale, eta=eta)

    def stochastic_steps(self, model: Any, timesteps: torch.Tensor, eta: float) -> torch.Tensor:
        return stochastic_steps(model, timesteps, eta)


#: The flow-matching SDE sampler (stateless; one instance serves every model).
FLOW_SDE = FlowSDESampler()
