"""A whole evaluation: every system on every category, cross-validated, with intervals.

Input is raw scores (from the score cache), so a run with new grids or folds costs seconds.
Output is a plain JSON-ready dict that :mod:`textnorm.eval.report` renders.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textnorm.eval.benchmark import Benchmark
from textnorm.eval.bootstrap import bootstrap_ci, bootstrap_diff
from textnorm.eval.cache import RawScores
from textnorm.eval.calibrate import System, SystemResult, cross_validate, reliability

__all__ = ["evaluate_category", "summarize"]

REPORT_METRICS: tuple[str, ...] = ("auroc", "auprc", "ap5", "ap10", "ap25", "spearman", "kendall", "pairwise_acc")


def _usual(chosen: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The setting chosen in most folds (ties: first seen), without fold bookkeeping."""
    keys = [tuple((k, v) for k, v in c.items() if k not in ("fold", "tie_threshold")) for c in chosen]
    (best, count), *_ = Counter(keys).most_common(1)
    return {**dict(best), "folds": count, "of": len(chosen)}


def summarize(
    res: SystemResult, bench: Benchmark, raw_of: SystemResult | None, *, n_boot: int, seed: int, select: str
) -> dict[str, Any]:
    """Macro means with bootstrap intervals, chosen settings, oracle, reliability of one system."""
    prompts = list(res.per_prompt)
    out: dict[str, Any] = {
        "kind": res.system.kind,
        "scorers": list(res.system.scorers),
        "metrics": {
            m: bootstrap_ci([res.per_prompt[p][m] for p in prompts], n_boot=n_boot, seed=seed).as_dict()
            for m in REPORT_METRICS
        },
        "chosen": res.chosen,
        "usual_setting": _usual(res.chosen),
    }
    if res.oracle:
        out[f"oracle_{select}"] = float(np.nanmean([res.oracle[p] for p in prompts]))
    if raw_of is not None:
        a = [res.per_prompt[p][select] for p in prompts]
        b = [raw_of.per_prompt[p][select] for p in prompts]
        out[f"delta_{select}_vs_raw"] = bootstrap_diff(a, b, n_boot=n_boot, seed=seed).as_dict()
    if res.system.kind != "raw" and res.scores is not None:
        hits = np.concatenate([bench.majority(p) for p in prompts])
        out["reliability"] = reliability(np.clip(res.scores, 0.0, 1.0), hits)
    return out


def evaluate_category(
    bench: Benchmark,
    raws: Mapping[str, RawScores],
    systems: Sequence[System],
    *,
    k: int = 5,
    seed: int = 0,
    select: str = "auroc",
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Cross-validate every system on one category and summarise.

    Args:
        bench: labels and targets of the category.
        raws: {scorer id: RawScores} cached on the category's scored prompts.
        systems: what to evaluate (see :func:`textnorm.eval.calibrate.default_systems`).
        k: folds over prompts.
        seed: fold and bootstrap seed.
        select: metric maximised when choosing settings.
        n_boot: bootstrap resamples for the intervals.

    Returns:
        {"benchmark", "category", "n_prompts", "n_images", "systems": {name: summary},
        "per_prompt": {name: {prompt: metrics}}}.
    """
    results = {s.name: cross_validate(s, raws, bench, k=k, seed=seed, select=select) for s in systems}
    raw_by_scorer = {s.scorers[0]: results[s.name] for s in systems if s.kind == "raw"}
    summary = {
        name: summarize(
            res, bench, raw_by_scorer.get(res.system.scorers[0]) if res.system.kind == "textnorm" else None,
            n_boot=n_boot, seed=seed, select=select,
        )
        for name, res in results.items()
    }
    first = next(iter(raws.values()))
    return {
        "benchmark": bench.name,
        "category": bench.category,
        "n_prompts": len(first.prompts),
        "n_images": int(first.image_offsets[-1]),
        "systems": summary,
        "per_prompt": {name: res.per_prompt for name, res in results.items()},
    }
