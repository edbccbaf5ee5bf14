"""Base samples for the demo: N generator samples per prompt, judged once, scored once per proxy.

Everything stays in memory: the images are drawn once, the judge reads each once, and each proxy
encodes each image once and scores it against its prompt and contrast set in one matrix, from
which the raw reward (column 0), the TextNorm confidence and the ensemble are all read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from textnorm._core import ParameterError

__all__ = ["SampleSet", "ScoredSet", "draw_samples", "score_samples"]


@dataclass
class SampleSet:
    """`images[p, i]`: the i-th base sample (uint8 64x64x3) for `prompts[p]`; `aligned[p, i]`
    is the judge's verdict (unknown counts as not aligned)."""

    prompts: list[str]
    categories: list[str]
    images: np.ndarray
    aligned: np.ndarray


@dataclass
class ScoredSet:
    """Per proxy id: `logits[id]` a list (one per prompt) of float64 (N, 1 + K) score matrices,
    the target prompt in column 0, and the contrast set used for each prompt."""

    logits: dict[str, list[np.ndarray]]
    contrast: list[list[str]]

    def raw(self, proxy: str) -> np.ndarray:
        """(P, N) raw scores of `proxy`."""
        return np.stack([m[:, 0] for m in self.logits[proxy]])


def draw_samples(generator: object, prompts: Sequence[str], categories: Sequence[str], n: int, *,
                 seed: int, num_steps: int = 20, batch: int = 1024) -> SampleSet:
    """`n` samples of `generator` (a `SceneDiffusionModel`) per prompt, rendered and judged."""
    from textnorm.generator.model import latent_to_slots
    from textnorm.world import judge, render_slots

    if n < 1 or not prompts:
        raise ParameterError(f"n: expected a positive number of samples for some prompts, got {n!r}")
    reps = [p for p in prompts for _ in range(n)]
    images = np.empty((len(reps), 64, 64, 3), dtype=np.uint8)
    aligned = np.empty(len(reps), dtype=bool)
    for start in range(0, len(reps), batch):  # chunks bound the judge's float working memory
        chunk = reps[start:start + batch]
        lat = generator.sample(chunk, seed=seed * 1_000_003 + start, num_steps=num_steps)  # type: ignore[attr-defined]
        block = render_slots(latent_to_slots(lat))
        images[start:start + len(chunk)] = block
        aligned[start:start + len(chunk)] = [bool(r.aligned) for r in judge(block, chunk)]
    return SampleSet(list(prompts), list(categories), images.reshape(len(prompts), n, 64, 64, 3),
                     aligned.reshape(len(prompts), n))


def score_samples(samples: SampleSet, proxies: Sequence[object],
                  contrast: Callable[[str], Sequence[str]]) -> ScoredSet:
    """Score every sample against its prompt and `contrast(prompt)` with each proxy (a scorer)."""
    from textnorm._heap import mmap_threshold

    sets = [[p, *[c for c in contrast(p) if c != p]] for p in samples.prompts]
    logits: dict[str, list[np.ndarray]] = {}
    with torch.no_grad(), mmap_threshold():  # else freed activations pile up in the heap (10 GB)
        for proxy in proxies:
            rows = []
            for p, texts in enumerate(sets):
                rows.append(proxy.score(samples.images[p], texts).double().cpu().numpy())  # type: ignore[attr-defined]
            logits[proxy.id] = rows  # type: ignore[attr-defined]
    return ScoredSet(logits, [s[1:] for s in sets])
