"""Training the scene-latent generator from the world's own scenes, and judging its samples.

Data: prompts of every category from the world sampler's training split and one scene per prompt
drawn by `textnorm.world.sample_scene` (the ground truth a render would show), encoded as slot
latents. Loss: the usual epsilon-prediction MSE at uniform random timesteps, with the prompt
dropped (replaced by the empty prompt) 10% of the time for classifier-free guidance.

Capacity and training length are limited on purpose: the shipped base model should get single
objects mostly right and leave counts, bindings and relations unsolved, so fine-tuning has room
to improve them, and to make them worse. The shipped model (0.21M-parameter denoiser, 0.04M
prompt encoder, `DEFAULT_STEPS` = 2500 steps of 128 scenes, seed 0) is judged aligned on held-out
prompts (24 per category, 4 images each, 20 DDIM steps, no guidance) for 65% of single objects,
49% of counts, 24% of compositions, 15% of bindings and 24% of relations; most failures are
extra or merged (overlapping) objects and swapped attributes. At 1000 steps single objects were
still at 50%; 2500 steps is where they stopped improving in a 32-image-per-category check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from textnorm._core import ParameterError
from textnorm.generator.diffusion import SceneDiffusionModel
from textnorm.generator.model import GeneratorConfig, slots_to_latent, tokenize
from textnorm.world import PROMPT_CATEGORIES, Scene, sample_scene, scenes_to_slots, split_of
from textnorm.world.sampler import sample_prompt

__all__ = ["DEFAULT_STEPS", "evaluate_generator", "make_dataset", "train_generator"]

DEFAULT_STEPS = 2500
DEFAULT_BATCH = 128
DEFAULT_EXAMPLES = 30000
PROMPT_DROPOUT = 0.1


def make_dataset(n: int, *, seed: int, n_slots: int = 4, max_tokens: int = 16) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """``n`` (token ids, latent) pairs from training-split prompts of every category, round robin.

    Returns:
        (ids (n, max_tokens) int64, latents (n, n_slots, SLOT_DIM) float32, prompt texts).
    """
    rng = np.random.default_rng([seed, 31337])
    prompts: list[str] = []
    scenes: list[Scene] = []
    while len(prompts) < n:
        category = PROMPT_CATEGORIES[len(prompts) % len(PROMPT_CATEGORIES)]
        p = sample_prompt(category, rng)
        if split_of(p) != "train":
            continue
        scenes.append(sample_scene(p, rng))
        prompts.append(p.text)
    latents = torch.from_numpy(slots_to_latent(scenes_to_slots(scenes, n_slots=n_slots)))
    return tokenize(prompts, max_tokens=max_tokens), latents, prompts


def train_generator(
    *, seed: int = 0, steps: int = DEFAULT_STEPS, batch_size: int = DEFAULT_BATCH, learning_rate: float = 1e-3,
    examples: int = DEFAULT_EXAMPLES, cfg: GeneratorConfig | None = None,
    log: Callable[[str], None] | None = None, log_every: int = 250,
    callback: Callable[[int, SceneDiffusionModel], None] | None = None,
) -> tuple[SceneDiffusionModel, dict[str, Any]]:
    """Train a generator from scratch; returns it and a record (losses, seconds, settings).

    Deterministic for a given seed and thread count. `callback(step, model)` runs after every
    `log_every` steps (in eval mode; training resumes after it).

    Raises:
        ParameterError: an option is out of range.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("examples", examples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{name}: expected a positive int, got {value!r}")
    if not (isinstance(learning_rate, (int, float)) and 0 < learning_rate < 1):
        raise ParameterError(f"learning_rate: expected a number in (0, 1), got {learning_rate!r}")
    start = time.perf_counter()
    cfg = cfg or GeneratorConfig()
    torch.manual_seed(seed)
    model = SceneDiffusionModel(cfg)
    denoiser, encoder = model.denoiser, model.text_encoder
    encoder.requires_grad_(True).train()
    denoiser.train()
    ids, latents, _ = make_dataset(examples, seed=seed, n_slots=cfg.n_slots, max_tokens=cfg.max_tokens)
    data_s = time.perf_counter() - start
    params = [*denoiser.parameters(), *encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=learning_rate, total_steps=steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(seed)
    alphas = model.scheduler.alphas_cumprod.float()
    null_ids = tokenize([""], max_tokens=cfg.max_tokens)
    losses: list[float] = []
    for step in range(steps):
        idx = torch.randint(len(ids), (batch_size,), generator=gen)
        x0, tok = latents[idx], ids[idx].clone()
        drop = torch.rand(batch_size, generator=gen) < PROMPT_DROPOUT
        tok[drop] = null_ids
        t = torch.randint(cfg.num_train_timesteps, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = alphas[t][:, None, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = denoiser(xt, t, encoder(tok))
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            if log is not None:
                log(f"step {step + 1}/{steps}  loss {np.mean(losses[-log_every:]):.4f}  "
                    f"{time.perf_counter() - start:.0f} s")
            if callback is not None:
                denoiser.eval()
                with torch.no_grad():
                    callback(step + 1, model)
                denoiser.train()
    encoder.requires_grad_(False).eval()
    denoiser.eval()
    record = {"seed": seed, "steps": steps, "batch_size": batch_size, "learning_rate": learning_rate,
              "examples": examples, "initial_loss": float(np.mean(losses[: max(1, steps // 10)])),
              "final_loss": float(np.mean(losses[-max(1, steps // 10):])),
              "data_seconds": round(data_s, 1), "seconds": round(time.perf_counter() - start, 1),
              "threads": torch.get_num_threads()}
    return model, record


def evaluate_generator(
    model: SceneDiffusionModel, *, n_prompts: int = 24, n_images: int = 4, seed: int = 0,
    num_steps: int = 20, guidance_scale: float = 1.0, split: str = "test",
) -> dict[str, dict[str, float]]:
    """Judge alignment of samples on `split` prompts, per category.

    Returns:
        {category: {"aligned": share aligned, "fraction": mean share of constraints met,
        "unknown": share the judge could not read}}.
    """
    from textnorm.world import sample_prompts
    from textnorm.world.judging import judge

    out: dict[str, dict[str, float]] = {}
    for category in PROMPT_CATEGORIES:
        prompts = sample_prompts(category, n_prompts, seed=seed, split=split, unique=True)
        flat = [p for p in prompts for _ in range(n_images)]
        lat = model.sample(flat, seed=seed, num_steps=num_steps, guidance_scale=guidance_scale)
        images = (model.decode(lat).permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        res = judge(images, flat)
        out[category] = {
            "aligned": float(np.mean([bool(r.aligned) for r in res])),
            "fraction": float(np.mean([0.0 if r.unknown else r.fraction for r in res])),
            "unknown": float(np.mean([r.unknown for r in res])),
        }
    return out
