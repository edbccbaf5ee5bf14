"""A TIA2-like benchmark in the synthetic world: the base generator's own samples, judged exactly.

TIA2 asks, per prompt, whether a reward ranks a text-to-image model's samples the way people label
them. Here the model is the shipped world generator (`textnorm.generator.load_generator`) and the
labels come from the exact judge (`textnorm.world.judge`), so the mistakes to rank are the ones a
generator makes (wrong counts, lost bindings, flipped or missing relations, extra or merged
objects), at the rate it makes them.

Per category (`textnorm.world.CATEGORIES` by default):

1. Held-out prompts (the world's "test" split), ``n_samples`` samples each from the generator at
   a fixed seed (DDIM, ``num_steps``), decoded to pixels. The judge labels each image aligned or
   not; an image it cannot read (merged, overlapping objects) is not aligned. As TIA2 does, a
   prompt whose samples are all of one label is left out; the first ``n_prompts`` prompts with
   both labels are kept (a pool of up to ``1.5 n_prompts + 10`` distinct prompts is sampled).
2. Each image is scored once per scorer against ``[prompt, *contrast]``, the contrast set drawn by
   `textnorm.world.contrast_sets` (``contrast_k`` prompts, kinds balanced, in the world's words).
3. Systems: each scorer raw, its TextNorm confidence in ``minmax`` and ``temperature`` mode, and
   (two scorers or more) the ensemble of TextNorm confidences in each mode. Scale, lambda and the
   ensemble method are chosen by k-fold cross-validation over prompts
   (`textnorm.eval.calibrate.cross_validate`, AUROC selected), so no prompt is scored with a
   setting chosen on its own labels.
4. Metrics: the TIA2 harness's own (`textnorm.eval.evaluate.evaluate_category`): per-prompt
   AUROC, AUPRC, AP@5/10/25 (and Spearman, Kendall, pairwise accuracy), macro-averaged over
   prompts with percentile bootstrap intervals over prompts.
5. Beside each scorer, the nuisance diagnostic (`textnorm.eval.diagnose`) on the same score
   matrices: the image-only share of each prompt's spread, the part TextNorm removes, and the
   looks share: each image is also scored against ``reference_k`` other prompts of its category
   (never its own contrast prompts) in the same call, so its image is encoded once.

The second, easier set (``renders``) is `textnorm.world.make_benchmark`: correct renders mixed
with deliberate near-misses, scored the same way.

Generated samples of the shipped generator are cached in memory per configuration, so a second
run in one process only rescores. Scorers are passed in (any object with ``score_sets`` and an
``id``), so new proxies need no change here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from textnorm._core import ParameterError
from textnorm.eval.benchmark import Benchmark, PromptData
from textnorm.eval.cache import RawScores, _to_numpy, scorer_id
from textnorm.eval.calibrate import LAMBDA_GRID, SCALE_GRID, System
from textnorm.eval.diagnose import diagnose, groups_from_raw, reference_lists
from textnorm.eval.evaluate import evaluate_category
from textnorm.eval.worldbench_result import CategoryResult, WorldBenchResult, interval_of

__all__ = [
    "SETS", "CategoryResult", "WorldBenchConfig", "WorldBenchResult", "WorldSamples", "generate_samples",
    "run_world_benchmark", "world_systems",
]

#: The benchmark's sets: generator samples (the main one) and renders with near-misses (easier).
SETS: tuple[str, ...] = ("generated", "renders")



@dataclass(frozen=True)
class WorldBenchConfig:
    """Settings of a world benchmark run (defaults: the README's run).

    Attributes:
        categories: prompt categories (`textnorm.world.PROMPT_CATEGORIES`).
        n_prompts: prompts per category with both labels (fewer when the split runs out).
        n_samples: generator samples per prompt.
        num_steps: DDIM steps of the generator.
        guidance_scale: classifier-free guidance of the generator.
        seed: prompts, samples, contrast draws, folds and bootstrap.
        contrast_k: contrast prompts per prompt.
        folds: k of the k-fold over prompts (at most the number of prompts).
        n_boot: bootstrap resamples.
        scales: TextNorm scale grid (both modes).
        lambdas: lambda grid of the uncertainty-regularised ensemble.
        render_images: images per prompt of the renders set (0: no renders set).
        reference_k: unrelated prompts per prompt for the diagnostic's looks share (0: none).
    """

    categories: tuple[str, ...] = ("counting", "composition", "binding", "spatial")
    n_prompts: int = 30
    n_samples: int = 32
    num_steps: int = 20
    guidance_scale: float = 1.0
    seed: int = 0
    contrast_k: int = 16
    folds: int = 5
    n_boot: int = 1000
    scales: tuple[float, ...] = SCALE_GRID
    lambdas: tuple[float, ...] = LAMBDA_GRID
    render_images: int = 16
    reference_k: int = 8

    def __post_init__(self) -> None:
        from textnorm.world import PROMPT_CATEGORIES

        if isinstance(self.categories, str) or not self.categories:
            raise ParameterError(f"categories: expected a non-empty list of categories, got {self.categories!r}")
        bad = [c for c in self.categories if c not in PROMPT_CATEGORIES]
        if bad:
            raise ParameterError(f"categories: expected among {', '.join(PROMPT_CATEGORIES)}, got {bad}")
        for name, lo in (("n_prompts", 2), ("n_samples", 2), ("num_steps", 1), ("contrast_k", 1), ("folds", 2),
                         ("n_boot", 1), ("seed", 0), ("render_images", 0), ("reference_k", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ParameterError(f"{name}: expected an integer >= {lo}, got {v!r}")
        if self.render_images == 1:
            raise ParameterError("render_images: expected 0 (no renders set) or at least 2, got 1")
        if not self.scales or not all(math.isfinite(s) and s > 0 for s in self.scales):
            raise ParameterError(f"scales: expected positive numbers, got {self.scales!r}")
        if not all(math.isfinite(x) and x >= 0 for x in self.lambdas):
            raise ParameterError(f"lambdas: expected non-negative numbers, got {self.lambdas!r}")


@dataclass(frozen=True)
class WorldSamples:
    """Generator samples of one category's candidate prompts, judged.

    Attributes:
        category: the prompt category.
        prompts: candidate prompts (canonical text), in draw order.
        images: uint8 (n_prompts, n_samples, H, W, 3).
        labels: the judge's ``aligned`` (False where it abstained).
        unknown: where the judge abstained.
    """

    category: str
    prompts: list[str]
    images: NDArray[np.uint8]
    labels: NDArray[np.bool_]
    unknown: NDArray[np.bool_]

    def both_labels(self) -> list[int]:
        """Indices of the prompts whose samples hold both labels."""
        return [i for i in range(len(self.prompts)) if 0 < int(self.labels[i].sum()) < self.labels.shape[1]]


_CACHE: dict[tuple[Any, ...], WorldSamples] = {}
_CACHE_SIZE = 16


def _held_out(category: str, n: int, seed: int) -> list[str]:
    """Up to `n` distinct held-out prompts of `category`, in a seeded order."""
    from textnorm.world import sample_prompts

    return list(dict.fromkeys(sample_prompts(category, 40 * n + 40, seed=seed, split="test")))[:n]


def _to_uint8(images: Any) -> NDArray[np.uint8]:
    a = np.asarray(_to_numpy(images), dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 3 and a.shape[-1] != 3:
        a = np.moveaxis(a, 1, -1)
    return np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)


def generate_samples(
    category: str,
    n_prompts: int,
    n_samples: int,
    *,
    generator: Any = None,
    seed: int = 0,
    num_steps: int = 20,
    guidance_scale: float = 1.0,
    batch_size: int = 512,
) -> WorldSamples:
    """Sample and judge `n_samples` images for each of up to `n_prompts` held-out prompts.

    Args:
        category: prompt category.
        n_prompts: candidate prompts (distinct, held out; fewer when the split has fewer).
        n_samples: samples per prompt.
        generator: a `textnorm.train.T2IModel` (``sample(prompts, seed=, num_steps=,
            guidance_scale=)`` -> latents, ``decode(latents)`` -> (B, 3, H, W) in [0, 1]); the
            shipped world generator when None (its samples are cached in memory).
        seed: prompt draw and sampling seed.
        num_steps: DDIM steps.
        guidance_scale: classifier-free guidance weight.
        batch_size: images decoded at once.

    Returns:
        `WorldSamples` with the judge's labels.
    """
    from textnorm.world import PROMPT_CATEGORIES, judge

    key = (category, n_prompts, n_samples, seed, num_steps, float(guidance_scale))
    if generator is None and key in _CACHE:
        return _CACHE[key]
    model = generator
    if model is None:
        from textnorm.generator import load_generator

        model = load_generator()
    prompts = _held_out(category, n_prompts, seed)
    flat = [p for p in prompts for _ in range(n_samples)]
    sample_seed = seed * len(PROMPT_CATEGORIES) + PROMPT_CATEGORIES.index(category)
    chunks = []
    if flat:
        latents = model.sample(flat, seed=sample_seed, num_steps=num_steps, guidance_scale=guidance_scale)
        chunks = [_to_uint8(model.decode(latents[s : s + batch_size])) for s in range(0, len(flat), batch_size)]
    images = np.concatenate(chunks) if chunks else np.zeros((0, 64, 64, 3), dtype=np.uint8)
    results = judge(images, flat) if flat else []
    shape = (len(prompts), n_samples)
    out = WorldSamples(
        category=category,
        prompts=prompts,
        images=images.reshape(*shape, *images.shape[1:]),
        labels=np.array([bool(r.aligned) for r in results], dtype=bool).reshape(shape),
        unknown=np.array([r.unknown for r in results], dtype=bool).reshape(shape),
    )
    if generator is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = out
    return out


def world_systems(
    labels: Sequence[str], *, scales: Sequence[float] = SCALE_GRID, lambdas: Sequence[float] = LAMBDA_GRID
) -> list[System]:
    """Raw, TextNorm (minmax and temperature) per scorer, and the ensemble in each mode (two
    scorers or more), with the grids that cross-validation chooses from."""
    out = [System(f"{s} raw", "raw", (s,)) for s in labels]
    for mode in ("minmax", "temperature"):
        out += [System(f"{s} textnorm-{mode}", "textnorm", (s,), tuple({"scale": x, "mode": mode} for x in scales))
                for s in labels]
    if len(labels) >= 2:
        for mode in ("minmax", "temperature"):
            grid: list[dict[str, Any]] = [{"method": "mean", "scale": x, "lam": 0.0, "mode": mode} for x in scales]
            grid += [{"method": "ur", "scale": x, "lam": lam, "mode": mode} for x in scales for lam in lambdas]
            out.append(System(f"ensemble-{mode}", "ensemble", tuple(labels), tuple(grid)))
    return out


def _labelled(scorers: Sequence[Any] | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(scorers, Mapping):
        out = dict(scorers)
    else:
        if isinstance(scorers, (str, bytes)) or not isinstance(scorers, Sequence):
            raise ParameterError(
                f"scorers: expected a list of scorers or {{label: scorer}}, got {type(scorers).__name__}"
            )
        out = {}
        for s in scorers:
            label = scorer_id(s).rsplit(":", 1)[-1]
            if label in out:
                raise ParameterError(f"scorers: two scorers share the label {label!r}; pass {{label: scorer}}")
            out[label] = s
    if not out:
        raise ParameterError("scorers: expected at least one scorer, got none")
    for label, s in out.items():
        if not hasattr(s, "score_sets"):
            raise ParameterError(f"scorers[{label!r}]: expected an object with score_sets, got {type(s).__name__}")
    return out


def _bench(name: str, category: str, prompts: Sequence[str], images: NDArray[np.uint8], labels: NDArray[np.bool_],
           contrast_k: int, seed: int) -> tuple[Benchmark, dict[str, NDArray[np.uint8]]]:
    from textnorm.world import contrast_sets

    sets = contrast_sets(list(prompts), k=contrast_k, seed=seed)
    data: dict[str, PromptData] = {}
    store: dict[str, NDArray[np.uint8]] = {}
    for i, (p, cs) in enumerate(zip(prompts, sets)):
        names = tuple(f"{name}-{category}-{i}-{m}" for m in range(images.shape[1]))
        data[p] = PromptData(p, cs.prompts, names, labels[i].astype(np.int64)[:, None])
        store[p] = images[i]
    return Benchmark(f"world-{name}", category, data), store


def _score(
    scorer: Any, bench: Benchmark, prompts: Sequence[str], store: Mapping[str, Any], refs: Mapping[str, list[str]]
) -> tuple[RawScores, list[NDArray[np.float64]]]:
    """One ``score_sets`` call per prompt: its images against ``[prompt, *contrast, *refs]``.
    Returns the harness's `RawScores` of the first 1 + K columns and the reference columns."""
    values, lengths, refs_out, counts = [], [], [], [0]
    for p in prompts:
        plist = bench.prompt_list(p)
        full = plist + refs.get(p, [])
        images = store[p]
        v, o = scorer.score_sets(images, [full] * len(images))
        mat = np.asarray(_to_numpy(v), dtype=np.float64).reshape(len(images), len(full))
        offs = np.asarray(_to_numpy(o)).reshape(-1)
        if offs.size != len(images) + 1 or np.any(np.diff(offs) != len(full)):
            raise ParameterError(f"scorers: score_sets returned offsets not in steps of {len(full)} for {p!r}")
        values.append(mat[:, : len(plist)].reshape(-1))
        lengths.append(np.full(len(images), len(plist), dtype=np.int64))
        refs_out.append(mat[:, len(plist) :])
        counts.append(counts[-1] + len(images))
    lens = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    raw = RawScores(list(prompts), np.concatenate(values) if values else np.zeros(0),
                    np.r_[0, np.cumsum(lens)].astype(np.int64), np.array(counts, dtype=np.int64))
    return raw, refs_out


def _evaluate(set_name: str, bench: Benchmark, store: Mapping[str, Any], scorers: Mapping[str, Any],
              cfg: WorldBenchConfig, n_candidates: int, unknown: NDArray[np.bool_], timer: dict[str, float]
              ) -> CategoryResult:
    prompts = bench.scored_prompts
    t = time.perf_counter()
    refs: dict[str, list[str]] = {}
    if cfg.reference_k:
        lists = reference_lists(prompts, cfg.reference_k, seed=cfg.seed,
                                exclude=[bench.contrast(p) for p in prompts])
        refs = dict(zip(prompts, lists))
    scored = {label: _score(s, bench, prompts, store, refs) for label, s in scorers.items()}
    raws = {label: r for label, (r, _) in scored.items()}
    timer["score"] += time.perf_counter() - t
    t = time.perf_counter()
    systems = world_systems(list(scorers), scales=cfg.scales, lambdas=cfg.lambdas)
    ev = evaluate_category(bench, raws, systems, k=min(cfg.folds, len(prompts)), seed=cfg.seed, n_boot=cfg.n_boot)
    labels = [bench.majority(p).astype(int) for p in prompts]
    diag = {
        label: diagnose(groups_from_raw(raw), labels=labels, n_boot=cfg.n_boot, seed=cfg.seed,
                        reference=scored[label][1] if refs and all(len(v) for v in refs.values()) else None)
        for label, raw in raws.items()
    }
    timer["evaluate"] += time.perf_counter() - t
    summ = ev["systems"]
    hits = np.concatenate([bench.majority(p) for p in prompts])
    return CategoryResult(
        set=set_name, category=bench.category, n_prompts=len(prompts), n_candidates=n_candidates,
        n_images=int(hits.size), positive_rate=float(hits.mean()) if hits.size else math.nan,
        unknown_rate=float(unknown.mean()) if unknown.size else math.nan,
        metrics={s: {m: interval_of(v) for m, v in d["metrics"].items()} for s, d in summ.items()},
        delta_auroc={s: interval_of(d["delta_auroc_vs_raw"]) for s, d in summ.items() if "delta_auroc_vs_raw" in d},
        usual_setting={s: d["usual_setting"] for s, d in summ.items()},
        diagnosis=diag, evaluation=ev, bench=bench, raws=raws,
    )


def run_world_benchmark(
    scorers: Sequence[Any] | Mapping[str, Any],
    config: WorldBenchConfig | None = None,
    *,
    generator: Any = None,
    sets: Sequence[str] = SETS,
) -> WorldBenchResult:
    """Run the world benchmark on `scorers`.

    Args:
        scorers: reward models (``score_sets`` and a string ``id``; labelled by the part of the id
            after its last ":"), or {label: scorer}. For example ``textnorm.proxies.load_proxies()``.
        config: the run's settings (`WorldBenchConfig` defaults when None).
        generator: the generator to sample (the shipped world generator when None).
        sets: which sets to run, among `SETS`.

    Returns:
        A `WorldBenchResult` (``to_markdown()`` for the README, ``as_dict()`` for JSON).

    Raises:
        ParameterError: bad scorers, sets or settings, or a category with fewer than two prompts
            holding both labels.
    """
    cfg = config or WorldBenchConfig()
    labelled = _labelled(scorers)
    bad = [s for s in sets if s not in SETS]
    if isinstance(sets, str) or bad or not sets:
        raise ParameterError(f"sets: expected a non-empty list among {', '.join(SETS)}, got {sets!r}")
    timer = {"generate": 0.0, "score": 0.0, "evaluate": 0.0}
    out: dict[str, dict[str, CategoryResult]] = {s: {} for s in sets}
    for cat in cfg.categories:
        if "generated" in sets:
            t = time.perf_counter()
            pool = cfg.n_prompts + cfg.n_prompts // 2 + 10
            smp = generate_samples(cat, pool, cfg.n_samples, generator=generator, seed=cfg.seed,
                                   num_steps=cfg.num_steps, guidance_scale=cfg.guidance_scale)
            timer["generate"] += time.perf_counter() - t
            keep = smp.both_labels()[: cfg.n_prompts]
            if len(keep) < 2:
                raise ParameterError(
                    f"categories: {cat!r} has {len(keep)} held-out prompts whose samples hold both labels "
                    f"(of {len(smp.prompts)}); raise n_samples or n_prompts"
                )
            prompts = [smp.prompts[i] for i in keep]
            bench, store = _bench("generated", cat, prompts, smp.images[keep], smp.labels[keep],
                                  cfg.contrast_k, cfg.seed)
            out["generated"][cat] = _evaluate("generated", bench, store, labelled, cfg, len(smp.prompts),
                                              smp.unknown[keep], timer)
        if "renders" in sets and cfg.render_images:
            from textnorm.world import make_benchmark

            t = time.perf_counter()
            n = min(cfg.n_prompts, len(_held_out(cat, cfg.n_prompts, cfg.seed)))
            made = make_benchmark(cat, n, cfg.render_images, cfg.seed, split="test")
            timer["generate"] += time.perf_counter() - t
            bench, store = _bench("renders", cat, made.prompts, made.images, made.labels, cfg.contrast_k, cfg.seed)
            keep_r = [i for i, p in enumerate(made.prompts) if p in set(bench.scored_prompts)]
            out["renders"][cat] = _evaluate("renders", bench, store, labelled, cfg, n, made.unknown[keep_r], timer)
    settings = {
        "scorers": list(labelled), "scorer_ids": {k: scorer_id(v) for k, v in labelled.items()},
        "categories": list(cfg.categories), "n_prompts": cfg.n_prompts, "n_samples": cfg.n_samples,
        "num_steps": cfg.num_steps, "guidance_scale": cfg.guidance_scale, "seed": cfg.seed,
        "contrast_k": cfg.contrast_k, "folds": cfg.folds, "n_boot": cfg.n_boot, "scales": list(cfg.scales),
        "lambdas": list(cfg.lambdas), "render_images": cfg.render_images, "reference_k": cfg.reference_k,
        "split": "test", "select": "auroc",
    }
    return WorldBenchResult(settings, {k: v for k, v in out.items() if v}, {k: round(v, 2) for k, v in timer.items()})
