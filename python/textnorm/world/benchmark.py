"""A TIA2-like benchmark made from the world: prompts x images with exact labels.

For each prompt, some images are correct renders and the rest are near-misses of the kinds that
matter for its category (wrong counts for counting, swapped attributes for binding, flipped
relations for spatial, ...), shuffled. Every image is labelled by the judge from its pixels, and
the scene's ground truth is kept beside the label so the two can be compared. The eval harness
turns this into the same per-prompt ranking metrics as TIA2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textnorm._core import ParameterError
from textnorm.world import vocab
from textnorm.world.grammar import parse
from textnorm.world.judging import judge, judge_scenes
from textnorm.world.render import render_near_misses, render
from textnorm.world.sampler import SPLITS, sample_prompts
from textnorm.world.scene import near_miss_kinds

# Near-miss kinds per category, most telling first; repeats weight the draw.
CATEGORY_KINDS: dict[str, tuple[str, ...]] = {
    "single": ("colour", "shape", "size", "count", "extra"),
    "counting": ("count", "count", "count", "colour", "shape"),
    "composition": ("drop", "shape", "shape", "extra", "count"),
    "binding": ("binding", "binding", "binding", "colour"),
    "spatial": ("relation", "relation", "relation", "drop", "colour", "shape"),
}


@dataclass(frozen=True)
class WorldBenchmark:
    """A labelled set: `images[j, m]` is the m-th image for `prompts[j]`.

    Attributes:
        category: the prompt category.
        prompts: the prompts (canonical text).
        images: uint8 (n_prompts, n_images, size, size, 3).
        labels: the judge's `aligned` per image (False where it abstained), bool.
        fractions: the judge's share of constraints satisfied (0 where it abstained).
        unknown: where the judge abstained.
        truth: the scenes' ground truth (`aligned` on the scene itself).
        kinds: "correct" or the near-miss kind of each image.
    """

    category: str
    prompts: list[str]
    images: np.ndarray
    labels: np.ndarray
    fractions: np.ndarray
    unknown: np.ndarray
    truth: np.ndarray
    kinds: list[list[str]]

    def judge_accuracy(self) -> float:
        """Share of images whose judge label equals the scene truth."""
        return float((self.labels == self.truth).mean()) if self.labels.size else float("nan")


def make_benchmark(
    category: str,
    n_prompts: int,
    n_images: int,
    seed: int = 0,
    *,
    split: str = "test",
    positive_share: float = 0.5,
    size: int = 64,
) -> WorldBenchmark:
    """Build a world benchmark for one category.

    Args:
        category: one of `textnorm.world.CATEGORIES`, or "single".
        n_prompts: number of distinct prompts.
        n_images: images per prompt.
        seed: seed for prompts, scenes and the mix.
        split: prompt split ("test", the held-out prompts, by default).
        positive_share: share of correct renders per prompt; with two images or more each prompt
            gets at least one correct render and one near-miss, so no prompt has one label class.
        size: image side in pixels.

    Raises:
        ParameterError: an argument is out of range.

    >>> b = make_benchmark("counting", 2, 4, seed=0)
    >>> b.images.shape, b.labels.sum(axis=1).tolist()
    ((2, 4, 64, 64, 3), [2, 2])
    """
    if category not in vocab.PROMPT_CATEGORIES:
        raise ParameterError(f"category: expected one of {', '.join(vocab.PROMPT_CATEGORIES)}, got {category!r}")
    for name, v in (("n_prompts", n_prompts), ("n_images", n_images), ("seed", seed)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ParameterError(f"{name}: expected a non-negative int, got {v!r}")
    if split not in SPLITS:
        raise ParameterError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if not 0.0 <= positive_share <= 1.0:
        raise ParameterError(f"positive_share: expected a number in [0, 1], got {positive_share!r}")
    prompts = sample_prompts(category, n_prompts, seed=seed, split=split, unique=True)
    rng = np.random.default_rng([seed, 7919])
    n_pos = int(round(n_images * positive_share))
    if n_images >= 2:
        n_pos = min(max(n_pos, 1), n_images - 1)
    images = np.zeros((n_prompts, n_images, size, size, 3), dtype=np.uint8)
    scenes: list[list[object]] = []
    kinds: list[list[str]] = []
    for j, text in enumerate(prompts):
        p = parse(text)
        base = (seed * max(n_prompts, 1) + j) * max(n_images, 1)
        pos_seeds = [base + m for m in range(n_pos)]
        neg_seeds = [base + m for m in range(n_pos, n_images)]
        allowed = [k for k in CATEGORY_KINDS[category] if k in near_miss_kinds(p)]
        neg_kinds = [allowed[int(rng.integers(len(allowed)))] for _ in neg_seeds]
        pos_img, pos_sc = render([p] * n_pos, seed=pos_seeds, size=size, return_scenes=True)
        neg_img, neg_sc, _ = render_near_misses([p] * len(neg_seeds), kind=neg_kinds, seed=neg_seeds, size=size)
        order = rng.permutation(n_images)
        imgs = np.concatenate([pos_img, neg_img])[order]
        images[j] = imgs
        sc = [*pos_sc, *neg_sc]
        scenes.append([sc[o] for o in order])
        ks = ["correct"] * n_pos + neg_kinds
        kinds.append([ks[o] for o in order])
    flat_prompts = [t for t in prompts for _ in range(n_images)]
    flat_scenes = [s for row in scenes for s in row]
    res = judge(images.reshape(-1, size, size, 3), flat_prompts) if flat_prompts else []
    truth = judge_scenes(flat_scenes, flat_prompts)  # type: ignore[arg-type]
    shape = (n_prompts, n_images)
    return WorldBenchmark(
        category=category,
        prompts=prompts,
        images=images,
        labels=np.array([bool(r.aligned) for r in res], dtype=bool).reshape(shape),
        fractions=np.array([0.0 if r.unknown else r.fraction for r in res]).reshape(shape),
        unknown=np.array([r.unknown for r in res], dtype=bool).reshape(shape),
        truth=np.array([bool(t.aligned) for t in truth], dtype=bool).reshape(shape),
        kinds=kinds,
    )
