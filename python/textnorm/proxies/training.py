"""Training a proxy reward: symmetric InfoNCE over world batches, reproducible from a seed.

The loss is CLIP's: image-to-text cross-entropy over the batch's captions plus the text-only
"foreign" negatives, and text-to-image cross-entropy over the batch's images, averaged. Pairs whose
captions are identical strings are not counted as each other's negatives. AdamW with a linear
warm-up and cosine decay; one intra-op thread by default, so a run is bitwise reproducible on one
machine and torch build (other CPUs may pick other kernels and drift in the last bits).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from textnorm._core import ParameterError
from textnorm.proxies.data import RECIPES, ProxyRecipe, make_batch
from textnorm.proxies.model import PREPROCESS, ProxyCLIP, ProxyConfig

if TYPE_CHECKING:
    from textnorm.proxies.preference import PreferenceRecipe
from textnorm.scorers.images import prepare_images

__all__ = ["PREPROCESS", "contrastive_loss", "save_proxy", "train_proxy"]



def contrastive_loss(
    model: ProxyCLIP, pixels: torch.Tensor, captions: list[str], foreign: list[str]
) -> torch.Tensor:
    """Symmetric InfoNCE of a batch (see the module docstring)."""
    n = len(captions)
    img = model.encode_image(pixels)
    txt = model.encode_text(model.tokenize(captions + foreign))
    logits = model.scale() * img @ txt.T  # (n, n + len(foreign))
    same = torch.tensor([[a == b for b in captions] for a in captions])
    same.fill_diagonal_(False)
    mask = torch.zeros_like(logits, dtype=torch.bool)
    mask[:, :n] = same
    logits = logits.masked_fill(mask, float("-inf"))
    target = torch.arange(n)
    i2t = F.cross_entropy(logits, target)
    t2i = F.cross_entropy(logits[:, :n].T, target)
    return (i2t + t2i) / 2


def _lr_at(step: int, total: int, peak: float) -> float:
    warm = max(1, min(100, total // 10))
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def train_proxy(
    recipe: ProxyRecipe | PreferenceRecipe | str,
    *,
    seed: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    threads: int | None = 1,
    log: Callable[[int, float], None] | None = None,
    log_every: int = 100,
) -> tuple[ProxyCLIP, dict[str, Any]]:
    """Train one proxy from scratch.

    Args:
        recipe: a `ProxyRecipe` or the name of a shipped one (`RECIPES`).
        seed: overrides the recipe's seed (model init and data stream).
        steps: overrides the recipe's number of optimiser steps.
        batch_size: overrides the recipe's batch size (even).
        threads: torch intra-op threads while training (restored after); None leaves them.
        log: called as ``log(step, loss)`` every `log_every` steps and after the last.
        log_every: logging period in steps.

    Returns:
        ``(model, info)``: the trained model in eval mode and a dict with the recipe, final loss
        (mean of the last 50 steps) and wall time in seconds.
    """
    from textnorm.proxies.preference import PREFERENCE_RECIPES, PreferenceRecipe, train_preference

    if isinstance(recipe, str):
        known: dict[str, ProxyRecipe | PreferenceRecipe] = {**RECIPES, **PREFERENCE_RECIPES}
        if recipe not in known:
            raise ParameterError(f"name: expected one of {', '.join(known)}, got {recipe!r}")
        recipe = known[recipe]
    overrides: dict[str, Any] = {
        k: v for k, v in (("seed", seed), ("steps", steps), ("batch_size", batch_size)) if v is not None
    }
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
            raise ParameterError(f"{key}: expected a {'non-negative' if key == 'seed' else 'positive'} int, got {value!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ParameterError(f"threads: expected a positive int or None, got {threads!r}")
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        if isinstance(recipe, PreferenceRecipe):
            model, info = train_preference(recipe, **overrides, log=log, log_every=log_every)
            info["seconds"] = time.perf_counter() - start
            return model, info
        assert isinstance(recipe, ProxyRecipe)  # the two recipe kinds are the only ones known
        recipe = replace(recipe, **overrides)
        torch.manual_seed(recipe.seed)
        model = ProxyCLIP(ProxyConfig())
        model.train()
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "positions" not in n]
        other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "positions" not in n)]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}], lr=recipe.lr
        )
        rng = np.random.default_rng([recipe.seed, 0x9E37])
        recent: list[float] = []
        for step in range(recipe.steps):
            images, captions, foreign = make_batch(recipe.blind, recipe.batch_size, rng)
            pixels = prepare_images(images, PREPROCESS, device=torch.device("cpu"), dtype=torch.float32)
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, recipe.steps, recipe.lr)
            loss = contrastive_loss(model, pixels, captions, foreign)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            recent = (recent + [loss.item()])[-50:]
            if log is not None and ((step + 1) % log_every == 0 or step + 1 == recipe.steps):
                log(step + 1, float(np.mean(recent)))
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
    model.eval()
    model.requires_grad_(False)
    info = {
        "recipe": {**asdict(recipe), "blind": asdict(recipe.blind)},
        "final_loss": round(float(np.mean(recent)), 4) if recent else None,
        "seconds": time.perf_counter() - start,
    }
    return model, info


def save_proxy(model: ProxyCLIP, info: dict[str, Any], stem: Path) -> tuple[Path, Path]:
    """Write ``stem.safetensors`` (weights) and ``stem.json`` (config + recipe + final loss).

    Both files are functions of the weights and the recipe only (no times or dates), so a
    reproduced run writes byte-identical files.
    """
    from safetensors.torch import save_file

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights, config = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    # One metadata key: safetensors writes a map's keys in no fixed order, which would break
    # byte-identical reproduction.
    save_file(tensors, str(weights), metadata={"format": "pt"})
    meta = {
        "config": json.loads(model.cfg.to_json()),
        "recipe": info["recipe"],
        "final_loss": info.get("final_loss"),
        **({"pool": info["pool"]} if "pool" in info else {}),
    }
    config.write_text(json.dumps(meta, indent=1) + "\n")
    return weights, config
