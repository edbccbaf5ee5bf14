"""Preference-trained proxies: reward models learned from a simulated rater's pairwise choices.

This is how PickScore is made: start from a contrastively pretrained dual encoder, show people two
images made for one prompt, and fine-tune so the preferred image scores higher (a Bradley-Terry
loss on the score difference). Here the images are the shipped base generator's samples for
train-split prompts, plus correct renders and near-misses of those prompts (so that fuller,
wrong-count and extra-object scenes are in the data), and the people are a `Rater`
(`textnorm.proxies.rater`: blind spots, and a taste for looks of weight ``w``).

A pool is drawn once from the recipe's seed (prompts, generator samples, renders, pairs and the
rater's choices), then the proxy is trained on batches of pairs. With one torch thread, a recipe
and seed give byte-identical weights (``textnorm world train-proxy --name pref-w1``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from textnorm._core import ParameterError
from textnorm.proxies.rater import Rater

__all__ = ["PREFERENCE_RECIPES", "PairPool", "PreferenceRecipe", "make_pool", "preference_loss", "train_preference"]


@dataclass(frozen=True)
class PreferenceRecipe:
    """Everything that fixes a preference-trained proxy besides the seed.

    Attributes:
        name: the proxy's name.
        rater: who chooses (blind spots and taste for looks).
        base: the contrastive proxy it starts from (a name in `textnorm.proxies.data.RECIPES`).
        prompts_per_category: train-split prompts drawn per prompt category.
        samples: base-generator samples per prompt.
        renders: correct renders per prompt, and as many near-misses.
        pairs: rated pairs per prompt.
        steps, batch_size, lr, seed: optimisation (batch_size pairs per step).
        summary: one line for logs and the model card.
    """

    name: str
    rater: Rater
    base: str = "count-blind"
    prompts_per_category: int = 160
    samples: int = 8
    renders: int = 2
    pairs: int = 24
    steps: int = 1200
    batch_size: int = 64
    lr: float = 3e-4
    seed: int = 0
    summary: str = ""


def _recipe(name: str, w: float, summary: str) -> PreferenceRecipe:
    return PreferenceRecipe(name=name, rater=Rater(w=w), summary=summary)


#: The shipped preference-trained proxies: the same rater and data, three tastes for looks.
PREFERENCE_RECIPES: dict[str, PreferenceRecipe] = {
    r.name: r for r in (
        _recipe("pref-w0", 0.0, "rater with blind spots and no taste for looks"),
        _recipe("pref-w1", 1.0, "rater with blind spots and a moderate taste for looks (w=1)"),
        _recipe("pref-w3", 3.0, "rater with blind spots and a strong taste for looks (w=3)"),
    )
}


@dataclass
class PairPool:
    """Rated pairs: `images` uint8 (N, 64, 64, 3), `prompt_of` (N,) index into `prompts`,
    `pairs` (P, 2) image indices, `choice` (P,) 1.0 where the first image was preferred."""

    prompts: list[str]
    images: np.ndarray
    prompt_of: np.ndarray
    pairs: np.ndarray
    choice: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def make_pool(recipe: PreferenceRecipe, *, seed: int, generator: Any = None) -> PairPool:
    """Draw the recipe's prompts, images, pairs and choices (deterministic in `seed`).

    Args:
        recipe: the recipe.
        seed: data seed.
        generator: the base generator (`textnorm.generator.load_generator()` by default).
    """
    from textnorm.generator.model import latent_to_slots
    from textnorm.world import (
        PROMPT_CATEGORIES, parse, render, render_near_misses, render_slots, sample_prompts, slots_to_scenes,
    )

    if generator is None:
        from textnorm.generator import load_generator

        generator = load_generator()
    prompts = [p for i, c in enumerate(PROMPT_CATEGORIES)
               for p in sample_prompts(c, recipe.prompts_per_category, seed=seed * 1000 + i, split="train")]
    rng = np.random.default_rng([seed, 0x5EED])
    g = recipe.samples
    if g + 2 * recipe.renders < 2 or recipe.pairs < 1:
        raise ParameterError(f"recipe: expected at least two images and one pair per prompt, got {recipe!r}")
    reps = [p for p in prompts for _ in range(g)]
    slots = latent_to_slots(generator.sample(reps, seed=seed, num_steps=20))
    gen_scenes = slots_to_scenes(slots)
    gen_images = render_slots(slots)
    images, scenes_all, prompt_of, pairs, choice = [], [], [], [], []
    offset = 0
    for j, text in enumerate(prompts):
        prompt = parse(text)
        scenes = list(gen_scenes[j * g:(j + 1) * g])
        imgs = [gen_images[j * g:(j + 1) * g]]
        if recipe.renders:
            seeds = [int(s) for s in rng.integers(0, 2**31, size=recipe.renders)]
            r_imgs, r_scenes = render([text] * recipe.renders, seed=seeds, return_scenes=True)
            m_imgs, m_scenes, _ = render_near_misses([text] * recipe.renders, seed=seeds)
            imgs += [r_imgs, m_imgs]
            scenes += list(r_scenes) + list(m_scenes)
        block = np.concatenate(imgs)
        n = len(block)
        first = rng.integers(0, n, size=recipe.pairs)
        second = (first + rng.integers(1, n, size=recipe.pairs)) % n
        p = np.stack([first, second], axis=1)
        choice.append(recipe.rater.choose(prompt, scenes, block, p, rng))
        pairs.append(p + offset)
        images.append(block)
        scenes_all += scenes
        prompt_of.append(np.full(n, j))
        offset += n
    return PairPool(
        prompts=prompts, images=np.concatenate(images), prompt_of=np.concatenate(prompt_of),
        pairs=np.concatenate(pairs), choice=np.concatenate(choice),
        meta={"first_preferred": float(np.mean(np.concatenate(choice)))},
    )


def preference_loss(scores_a: torch.Tensor, scores_b: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry loss: binary cross-entropy of ``sigmoid(s_a - s_b)`` against the choices."""
    return F.binary_cross_entropy_with_logits(scores_a - scores_b, choice)


def train_preference(
    recipe: PreferenceRecipe,
    *,
    seed: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    log: Callable[[int, float], None] | None = None,
    log_every: int = 100,
    generator: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the recipe's base proxy on rated pairs (see the module docstring).

    Threads are the caller's (`textnorm.proxies.training.train_proxy` sets one).

    Returns:
        ``(model, info)`` as `textnorm.proxies.training.train_proxy`: the model in eval mode, and
        the recipe, final loss (mean of the last 50 steps) and the pool's agreement statistics.
    """
    from textnorm.proxies.scorer import load_proxy
    from textnorm.proxies.model import PREPROCESS
    from textnorm.scorers.images import prepare_images

    seed = recipe.seed if seed is None else seed
    steps = recipe.steps if steps is None else steps
    batch_size = recipe.batch_size if batch_size is None else batch_size
    pool = make_pool(recipe, seed=seed, generator=generator)
    torch.manual_seed(seed)
    model = load_proxy(recipe.base).model
    model.requires_grad_(True)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    rng = np.random.default_rng([seed, 0xB7])
    recent: list[float] = []
    for step in range(steps):
        idx = rng.integers(0, len(pool.pairs), size=batch_size)
        a, b = pool.pairs[idx, 0], pool.pairs[idx, 1]
        pixels = prepare_images(pool.images[np.concatenate([a, b])], PREPROCESS,
                                device=torch.device("cpu"), dtype=torch.float32)
        texts = [pool.prompts[k] for k in pool.prompt_of[a]]
        img = model.encode_image(pixels)
        txt = model.encode_text(model.tokenize(texts))
        s = model.scale() * (img * torch.cat([txt, txt])).sum(-1)
        lr = recipe.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * step / max(1, steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = preference_loss(s[:batch_size], s[batch_size:], torch.as_tensor(pool.choice[idx], dtype=torch.float32))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        recent = (recent + [loss.item()])[-50:]
        if log is not None and ((step + 1) % log_every == 0 or step + 1 == steps):
            log(step + 1, float(np.mean(recent)))
    model.eval()
    model.requires_grad_(False)
    info = {
        "recipe": {**asdict(recipe), "rater": asdict(recipe.rater), "seed": seed, "steps": steps,
                   "batch_size": batch_size},
        "final_loss": round(float(np.mean(recent)), 4) if recent else None,
        "pool": {"images": int(len(pool.images)), "pairs": int(len(pool.pairs)), **pool.meta},
    }
    return model, info

