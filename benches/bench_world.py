"""The world's judge: accuracy against scene truth on thousands of seeds, and throughput.

Run: ``OMP_NUM_THREADS=1 python -m pytest benches/bench_world.py -q -s`` (prints the tables).

- Accuracy: per category, N_PER_CATEGORY prompts, each rendered once correctly and once as a
  near-miss (2 x N_PER_CATEGORY images with different seeds), judged from pixels and compared with
  the truth checked on the scenes: `aligned` agreement, every-verdict agreement, unknown share; on
  clean images and under mild blur (sigma 0.7 px), Gaussian noise (sigma 8) and a colour shift.
- Throughput: the batched judge against the same judge called one image at a time (the plain
  per-image way to run a scipy pipeline), on the same 1,024 images; medians of 5 runs; one
  thread. Rendering throughput is reported too.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import pytest
from scipy import ndimage  # type: ignore[import-untyped]

from textnorm.world import (
    PROMPT_CATEGORIES,
    judge,
    judge_scenes,
    render,
    render_near_misses,
    render_slots,
    sample_prompts,
    scenes_to_slots,
)

N_PER_CATEGORY = 1000


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    out = {}
    for i, cat in enumerate(PROMPT_CATEGORIES):
        prompts = sample_prompts(cat, N_PER_CATEGORY, seed=1000 + i, split="all")
        good, gs = render(prompts, seed=10_000 * (i + 1), return_scenes=True)
        bad, bs, _ = render_near_misses(prompts, seed=10_000 * (i + 1))
        out[cat] = (np.concatenate([good, bad]), [*gs, *bs], prompts + prompts)
    return out


PERTURB = {
    "clean": lambda x, rng: x,
    "blur 0.7px": lambda x, rng: ndimage.gaussian_filter(x.astype(np.float32), sigma=(0, 0.7, 0.7, 0)),
    "noise 8": lambda x, rng: x + rng.normal(0, 8, x.shape),
    "shift (+15,-12,+10)": lambda x, rng: x.astype(np.float32) + np.array([15, -12, 10]),
}


def test_judge_accuracy(world: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    print(f"\njudge vs scene truth, {2 * N_PER_CATEGORY} images per category (aligned / all verdicts / unknown)")
    worst = 1.0
    for name, f in PERTURB.items():
        cells = []
        for cat, (images, scenes, prompts) in world.items():
            x = np.clip(np.rint(f(images, rng)), 0, 255).astype(np.uint8)
            res = judge(x, prompts)
            truth = judge_scenes(scenes, prompts)
            aligned = np.mean([r.aligned == t.aligned for r, t in zip(res, truth)])
            verdicts = np.mean([[v.holds for v in r.verdicts] == [v.holds for v in t.verdicts]
                                for r, t in zip(res, truth)])
            unknown = np.mean([r.unknown for r in res])
            cells.append(f"{cat} {aligned:.2%}/{verdicts:.2%}/{unknown:.2%}")
            if name == "clean":
                worst = min(worst, float(aligned))
        print(f"  {name:20s} " + "  ".join(cells))
    assert worst >= 0.99


def _median_seconds(fn: Any, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def test_judge_throughput(world: dict[str, Any], benchmark: Any) -> None:
    images = np.concatenate([world[c][0][:206] for c in PROMPT_CATEGORIES])[:1024]
    prompts = [p for c in PROMPT_CATEGORIES for p in world[c][2][:206]][:1024]
    judge(images[:8], prompts[:8])  # load the shape references

    def batched() -> None:
        judge(images, prompts)

    def one_by_one() -> None:
        for i in range(len(images)):
            judge(images[i], prompts[i])

    t_batch = _median_seconds(batched)
    t_single = _median_seconds(one_by_one, rounds=3)
    benchmark.pedantic(batched, rounds=3, iterations=1)
    n = len(images)
    scenes = [s for c in PROMPT_CATEGORIES for s in world[c][1][:206]][:1024]
    slots = scenes_to_slots(scenes)
    t_render = _median_seconds(lambda: render(prompts, seed=0), rounds=3)
    t_slots = _median_seconds(lambda: render_slots(slots), rounds=3)
    print(
        f"\njudge, {n} images 64x64, 1 thread: batched {n / t_batch:,.0f} images/s "
        f"({t_batch * 1e3:.0f} ms), one image per call {n / t_single:,.0f} images/s, ratio {t_single / t_batch:.1f}x; "
        f"render from prompts {n / t_render:,.0f} images/s, from slots {n / t_slots:,.0f} images/s"
    )
    assert t_single / t_batch > 1.0
