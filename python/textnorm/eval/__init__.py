"""Benchmarks of reward models against human labels (TIA2 and the same shape), with calibration
chosen on held-out prompts. Torch-free: scorers are only called through their protocol.

- :mod:`~textnorm.eval.metrics`: per-prompt AUROC, AUPRC, AP@K, Spearman, Kendall, pairwise accuracy.
- :mod:`~textnorm.eval.tia2`, :mod:`~textnorm.eval.jsonl`: loaders returning a :class:`Benchmark`.
- :mod:`~textnorm.eval.cache`: raw logits on disk, keyed by scorer id and data fingerprint.
- :mod:`~textnorm.eval.calibrate`: k-fold choice of scale / lambda / method, reliability and ECE.
- :mod:`~textnorm.eval.report`: Markdown, JSON and PNG output of a whole run.
"""

from textnorm.eval.benchmark import Benchmark, PromptData, label_mean, majority_vote
from textnorm.eval.bootstrap import Interval, bootstrap_ci, bootstrap_diff
from textnorm.eval.cache import RawScores, ScoreCache, compute_raw_scores, scorer_id
from textnorm.eval.calibrate import System, cross_validate, default_systems, kfold, reliability
from textnorm.eval.evaluate import evaluate_category
from textnorm.eval.jsonl import load_jsonl
from textnorm.eval.metrics import (
    ap_at_k,
    auprc,
    auroc,
    choose_tie_threshold,
    kendall,
    macro_average,
    pairwise_accuracy,
    prompt_metrics,
    spearman,
)
from textnorm.eval.report import write_report
from textnorm.eval.tia2 import CATEGORIES, authors_reference, load_tia2, load_tia2_prompt_sets, load_tia2_scores

__all__ = [
    "CATEGORIES",
    "Benchmark",
    "Interval",
    "PromptData",
    "RawScores",
    "ScoreCache",
    "System",
    "ap_at_k",
    "authors_reference",
    "auprc",
    "auroc",
    "bootstrap_ci",
    "bootstrap_diff",
    "choose_tie_threshold",
    "compute_raw_scores",
    "cross_validate",
    "default_systems",
    "evaluate_category",
    "kendall",
    "kfold",
    "label_mean",
    "load_jsonl",
    "load_tia2",
    "load_tia2_prompt_sets",
    "load_tia2_scores",
    "macro_average",
    "majority_vote",
    "pairwise_accuracy",
    "prompt_metrics",
    "reliability",
    "scorer_id",
    "spearman",
    "write_report",
]
