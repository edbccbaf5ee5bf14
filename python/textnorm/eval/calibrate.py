"""Calibration without leakage: choose scale, lambda and ensemble method on held-out prompts.

The authors picked scale and lambda per prompt against the very labels they report, which inflates
their TextNorm rows. Here each *system* (a raw reward, TextNorm on one reward, the ensemble of
TextNorm rewards) has a grid of settings; k-fold cross-validation over prompts picks the setting
with the best mean selection metric (AUROC by default) on the training folds and reports the
metrics of the held-out fold. Every prompt is thus scored by a setting chosen without its labels.
The tie threshold of the pairwise accuracy is chosen on the same training folds.

The leaky per-prompt choice (``oracle``) is computed too, only to show the size of the inflation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from textnorm._core import ParameterError
from textnorm.eval.benchmark import Benchmark
from textnorm.eval.cache import RawScores
from textnorm.eval.metrics import choose_tie_threshold, pairwise_accuracy, prompt_metrics
from textnorm.normalize import confidence, ensemble

__all__ = [
    "LAMBDA_GRID",
    "SCALE_GRID",
    "System",
    "SystemResult",
    "cross_validate",
    "default_systems",
    "kfold",
    "reliability",
    "system_scores",
]

SCALE_GRID: tuple[float, ...] = (0.1, 1.0, 3.0, 5.0, 10.0)
LAMBDA_GRID: tuple[float, ...] = (0.05, 0.1, 0.5, 1.0)


@dataclass(frozen=True)
class System:
    """A reward to evaluate and its grid of settings.

    ``kind`` is ``"raw"`` (the target logit of one scorer), ``"textnorm"`` (confidence of one scorer)
    or ``"ensemble"`` (TextNorm confidences of several scorers combined); ``grid`` lists settings as
    dicts with keys among ``scale``, ``method``, ``lam``.
    """

    name: str
    kind: str
    scorers: tuple[str, ...]
    grid: tuple[Mapping[str, Any], ...] = ({},)


def default_systems(
    scorers: Sequence[str], *, scales: Sequence[float] = SCALE_GRID, lambdas: Sequence[float] = LAMBDA_GRID,
    mode: str = "minmax",
) -> list[System]:
    """Raw and TextNorm per scorer, plus the ensemble (method, scale and lambda chosen) for >= 2."""
    out: list[System] = []
    for s in scorers:
        out.append(System(f"{s}", "raw", (s,)))
    for s in scorers:
        out.append(System(f"{s}+textnorm", "textnorm", (s,), tuple({"scale": x, "mode": mode} for x in scales)))
    if len(scorers) >= 2:
        grid: list[dict[str, Any]] = [{"method": "mean", "scale": x, "lam": 0.0, "mode": mode} for x in scales]
        grid += [{"method": "ur", "scale": x, "lam": lam, "mode": mode}
                 for x, lam in itertools.product(scales, lambdas)]
        out.append(System("textnorm-ensemble", "ensemble", tuple(scorers), tuple(grid)))
    return out


def _confidence(raw: RawScores, scale: float, mode: str) -> NDArray[np.float64]:
    return np.asarray(confidence(raw.values, offsets=raw.offsets, scale=scale, mode=mode), dtype=np.float64)


def _ensemble(raws: Sequence[RawScores], scale: float, mode: str, method: str, lam: float) -> NDArray[np.float64]:
    logits = np.stack([r.values for r in raws])
    return np.asarray(
        ensemble(logits, offsets=raws[0].offsets, scale=scale, mode=mode, method=method, lam=lam),
        dtype=np.float64,
    )


def system_scores(system: System, setting: Mapping[str, Any], raws: Mapping[str, RawScores]) -> NDArray[np.float64]:
    """The reward of every cached image (in cache order) under one setting of a system."""
    try:
        rs = [raws[s] for s in system.scorers]
    except KeyError as exc:
        raise ParameterError(f"raws: expected scores of scorer {exc.args[0]!r} for system {system.name!r}") from None
    if system.kind == "raw":
        return rs[0].values[rs[0].offsets[:-1]]
    mode = str(setting.get("mode", "minmax"))
    if system.kind == "textnorm":
        return _confidence(rs[0], float(setting["scale"]), mode)
    if system.kind == "ensemble":
        return _ensemble(rs, float(setting["scale"]), mode, str(setting["method"]), float(setting["lam"]))
    raise ParameterError(f"system.kind: expected 'raw', 'textnorm' or 'ensemble', got {system.kind!r}")


def kfold(prompts: Sequence[str], k: int, *, seed: int = 0) -> list[list[str]]:
    """Split prompts into k folds after a seeded shuffle (fold sizes differ by at most one)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= len(prompts):
        raise ParameterError(f"k: expected an integer in [2, {len(prompts)}] (number of prompts), got {k!r}")
    order = np.random.default_rng(seed).permutation(len(prompts))
    return [[prompts[i] for i in sorted(order[f::k])] for f in range(k)]


@dataclass
class SystemResult:
    """Cross-validated per-prompt metrics of one system on one category."""

    system: System
    per_prompt: dict[str, dict[str, float]]
    chosen: list[dict[str, Any]]
    oracle: dict[str, float] = field(default_factory=dict)
    scores: NDArray[np.float64] | None = None  # CV scores of every cached image (held-out setting)


def _per_prompt_scores(raw: RawScores, scores: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    io = raw.image_offsets
    return {p: scores[io[i] : io[i + 1]] for i, p in enumerate(raw.prompts)}


def cross_validate(
    system: System,
    raws: Mapping[str, RawScores],
    bench: Benchmark,
    *,
    k: int = 5,
    seed: int = 0,
    select: str = "auroc",
) -> SystemResult:
    """k-fold CV over the cached prompts: choose the setting on k-1 folds, report the held-out fold.

    Args:
        system: the system and its grid.
        raws: {scorer id: RawScores} over the same prompts of ``bench``.
        bench: labels and targets.
        k: number of folds (prompts are the unit).
        seed: fold shuffle seed.
        select: metric maximised on the training folds (``auroc``, ``auprc``, ``ap5``, ``spearman``...).

    Returns:
        Per-prompt held-out metrics (with ``pairwise_acc``), the setting chosen in each fold, the
        leaky per-prompt oracle of ``select``, and the held-out scores of every image.
    """
    first = raws[system.scorers[0]]
    prompts = list(first.prompts)
    for s in system.scorers[1:]:
        if raws[s].prompts != prompts or not np.array_equal(raws[s].offsets, first.offsets):
            raise ParameterError(f"raws: scorer {s!r} was not cached on the same prompts as {system.scorers[0]!r}")
    labels = {p: bench.majority(p) for p in prompts}
    targets = {p: bench.targets(p) for p in prompts}
    grid_scores = [_per_prompt_scores(first, system_scores(system, g, raws)) for g in system.grid]
    table = [{p: prompt_metrics(sc[p], labels[p], targets[p]) for p in prompts} for sc in grid_scores]
    if select not in table[0][prompts[0]]:
        raise ParameterError(f"select: expected one of {sorted(table[0][prompts[0]])}, got {select!r}")

    def mean_of(g: int, ps: Sequence[str]) -> float:
        v = np.array([table[g][p][select] for p in ps])
        return float(np.nanmean(v)) if np.any(~np.isnan(v)) else -math.inf

    per_prompt: dict[str, dict[str, float]] = {}
    chosen: list[dict[str, Any]] = []
    cv_scores = np.zeros(first.image_offsets[-1])
    folds = kfold(prompts, k, seed=seed)  # also for raw systems: the tie threshold is learned
    io = {p: (first.image_offsets[i], first.image_offsets[i + 1]) for i, p in enumerate(prompts)}
    for f, test in enumerate(folds):
        train = [p for g, fold in enumerate(folds) if g != f for p in fold]
        best = max(range(len(system.grid)), key=lambda g: (mean_of(g, train), -g))
        eps = choose_tie_threshold([grid_scores[best][p] for p in train], [targets[p] for p in train])
        chosen.append({**dict(system.grid[best]), "tie_threshold": eps, "fold": f})
        for p in test:
            row = dict(table[best][p])
            row["pairwise_acc"] = pairwise_accuracy(grid_scores[best][p], targets[p], tie_threshold=eps)
            per_prompt[p] = row
            a, b = io[p]
            cv_scores[a:b] = grid_scores[best][p]
    per_prompt = {p: per_prompt[p] for p in prompts}
    oracle = {p: max(t[p][select] for t in table) for p in prompts} if len(system.grid) > 1 else {}
    return SystemResult(system, per_prompt, chosen, oracle, cv_scores)


def reliability(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], *, n_bins: int = 10
) -> dict[str, Any]:
    """Reliability diagram data and expected calibration error of a confidence vs a binary outcome.

    Bins are equal-width on [0, 1] (confidence 1 falls in the last bin). ECE = sum over bins of
    (bin size / n) * |fraction correct - mean confidence|.

    Returns:
        {"edges", "count", "confidence", "accuracy", "ece"}; empty bins have NaN means.
    """
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    if c.shape != y.shape or c.ndim != 1:
        raise ParameterError(f"correct: expected the shape of confidence {c.shape}, got {y.shape}")
    if n_bins < 1:
        raise ParameterError(f"n_bins: expected >= 1, got {n_bins!r}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(np.clip(c, 0.0, 1.0), edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=c, minlength=n_bins) / count
        acc = np.bincount(idx, weights=y, minlength=n_bins) / count
    ok = count > 0
    ece = float(np.sum(count[ok] / c.size * np.abs(acc[ok] - conf[ok]))) if c.size else math.nan
    return {"edges": edges.tolist(), "count": count.astype(int).tolist(), "confidence": conf.tolist(),
            "accuracy": acc.tolist(), "ece": ece}
