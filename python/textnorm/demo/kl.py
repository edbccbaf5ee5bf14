"""How far fine-tuning moved the generator: a per-step KL estimate from the base model.

The sampler's path x_T -> ... -> x_0 is a chain of Gaussian steps with the same standard deviation
under the fine-tuned policy and the base model (LoRA adapters off), so the KL between the two path
distributions is the expected sum over steps of ``|mu_policy - mu_base|^2 / (2 sigma_t^2)``
(summed over the latent's dimensions), an upper bound on the KL between the final samples. We
estimate it by Monte Carlo on the policy's own trajectories, which is what Gao et al. plot for RL.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["path_kl"]


@torch.no_grad()
def path_kl(model: object, prompts: Sequence[str], *, seed: int, num_steps: int,
            guidance_scale: float = 1.0, eta: float = 1.0) -> np.ndarray:
    """Per-sample path KL (nats) of `model` (a `T2IModel` with LoRA) from its adapters-off base."""
    from textnorm.train.sampling import derive_seed, keyed_noise, sampler_for

    keys = [derive_seed(seed, i) for i in range(len(prompts))]
    noise = keyed_noise(keys, (num_steps + 1, *model.latent_shape)).to(model.device)  # type: ignore[attr-defined]
    cond = model.encode_prompts(list(prompts))  # type: ignore[attr-defined]
    net = model.denoiser  # type: ignore[attr-defined]
    sampler = sampler_for(model)
    traj = sampler.sample(model, net, cond, noise=noise, num_steps=num_steps, guidance_scale=guidance_scale, eta=eta)
    total = torch.zeros(len(prompts), dtype=torch.float64)
    for i in range(traj.log_probs.shape[1]):
        index = torch.full((len(prompts),), i, dtype=torch.long)
        args = (traj.latents[:, i], traj.latents[:, i + 1], index, traj.timesteps, cond)
        _, mean_p, std = sampler.step_log_prob(model, net, *args, guidance_scale=guidance_scale, eta=eta)
        with model.adapters_disabled():  # type: ignore[attr-defined]
            _, mean_b, _ = sampler.step_log_prob(model, net, *args, guidance_scale=guidance_scale, eta=eta)
        if float(std.max()) <= 1e-6:
            continue  # a deterministic step moves nothing in distribution
        d = ((mean_p.double() - mean_b.double()) ** 2 / (2 * std.double() ** 2)).flatten(1).sum(1)
        total += d.cpu()
    return total.numpy()
