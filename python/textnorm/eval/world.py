"""The synthetic world (``textnorm.world``) as a benchmark: procedural prompts, rendered images
and the exact judge's verdict as the label (one rater, so the majority label is the verdict and
the mean-label target equals it; where the judge abstains the label is missing, -1, which counts
as not aligned and as 0.5 in the target). Contrastive sets come from the world benchmark when it
provides them, else (``contrast="world"``, the default) from the world's own near-misses
(`textnorm.world.contrast_sets`: the world's words only, every near-miss kind the judge checks,
kinds balanced) or (``contrast="rules"``) from the rule-based generator ``textnorm.contrast``;
seeded, at most ``contrast_k`` per prompt.

This module only adapts ``textnorm.world.make_benchmark``; it imports the world lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from textnorm._core import ParameterError
from textnorm.eval.benchmark import Benchmark, PromptData

__all__ = ["load_world"]


def _field(obj: Any, name: str, index: int) -> Any:
    if isinstance(obj, dict):
        return obj[name]
    if isinstance(obj, (tuple, list)):
        return obj[index]
    return getattr(obj, name)


def _loader(store: dict[str, Any]) -> Callable[[Benchmark, str], Sequence[Any]]:
    def load(bench: Benchmark, prompt: str) -> Sequence[Any]:
        return store[prompt]  # type: ignore[no-any-return]

    return load


def load_world(
    categories: Sequence[str] | None, *, n_prompts: int, n_images: int, seed: int, contrast_k: int | None = 16,
    contrast: str = "world",
) -> tuple[dict[str, Benchmark], dict[str, Callable[[Benchmark, str], Sequence[Any]]]]:
    """World benchmarks per category and the in-memory image loaders for the score cache.

    Raises:
        ParameterError: `contrast` is neither "world" nor "rules", or the world is unavailable.
    """
    if contrast not in ("world", "rules"):
        raise ParameterError(f"contrast: expected 'world' or 'rules', got {contrast!r}")
    try:
        from textnorm import world
    except ImportError as exc:  # pragma: no cover - the world ships with the package
        raise ParameterError(f"--benchmark: the synthetic world is unavailable ({exc})") from exc
    try:
        make: Any = world.make_benchmark
    except (AttributeError, ImportError) as exc:  # the world's lazy loader raises ImportError
        raise ParameterError(f"--benchmark: 'world' needs textnorm.world.make_benchmark ({exc})") from exc
    cats = list(categories) if categories else list(world.CATEGORIES)
    benches: dict[str, Benchmark] = {}
    loaders: dict[str, Callable[[Benchmark, str], Sequence[Any]]] = {}
    for cat in cats:
        made = make(cat, n_prompts, n_images, seed)
        prompts = list(_field(made, "prompts", 0))
        images = _field(made, "images", 1)
        labels = np.asarray(_field(made, "labels", 2)).astype(np.int64).reshape(len(prompts), -1)
        unknown = made.get("unknown") if isinstance(made, dict) else getattr(made, "unknown", None)
        if unknown is not None:
            labels = np.where(np.asarray(unknown).reshape(labels.shape), -1, labels)
        sets = made.get("contrast") if isinstance(made, dict) else getattr(made, "contrast", None)
        if sets is None and contrast == "world":
            sets = [list(c.prompts) for c in world.contrast_sets(prompts, k=contrast_k, seed=seed)]
        elif sets is None:
            from textnorm.contrast import contrast as make_contrast

            sets = list(make_contrast(prompts, k=contrast_k, seed=seed))
        data: dict[str, PromptData] = {}
        store: dict[str, Any] = {}
        for i, p in enumerate(prompts):
            names = tuple(f"world-{cat}-{seed}-{i}-{j}" for j in range(labels.shape[1]))
            con = tuple(sets[i])
            data[p] = PromptData(p, con, names, labels[i][:, None])
            store[p] = images[i]
        benches[cat] = Benchmark("world", f"{cat}-n{n_prompts}x{n_images}-seed{seed}-k{contrast_k}", data)
        loaders[cat] = _loader(store)
    return benches, loaders
