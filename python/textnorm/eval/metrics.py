"""Per-prompt agreement metrics between a reward and human labels (TIA2 protocol).

Every function takes one prompt's images: ``scores`` (n,) floats, the reward of each image, and
either binary ``labels`` (n,) (the majority-vote human label, 1 = aligned) or real ``targets``
(n,) (the mean of the human labels). Only numpy is needed, and scipy for Kendall's tau.

Ties in scores are handled explicitly, never by sort order:

- AUROC counts a tied positive/negative pair as 1/2 (the Mann-Whitney statistic).
- AUPRC and AP@K treat a group of tied scores as one threshold, as a precision-recall curve does:
  every positive in the group gets the precision measured after the whole group.
- Spearman uses average ranks; Kendall is tau-b (corrected for ties on both sides).
- Pairwise accuracy gives half credit to pairs where exactly one side (label or prediction) ties.

A metric that is undefined on the input (one label class for AUROC/AUPRC/AP@K, constant scores or
targets for the rank correlations, fewer than two images) returns NaN; aggregation skips NaN.
Shape and value errors raise the textnorm error family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from textnorm._core import LayoutError, NonFiniteError, ParameterError

__all__ = [
    "METRICS",
    "ap_at_k",
    "auprc",
    "auroc",
    "choose_tie_threshold",
    "kendall",
    "macro_average",
    "pairwise_accuracy",
    "prompt_metrics",
    "spearman",
]

# The per-prompt metrics of the TIA2 files, in their order.
METRICS: tuple[str, ...] = ("auroc", "auprc", "ap5", "ap10", "ap25", "spearman", "kendall")


def _vector(x: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LayoutError(f"{name}: expected a 1-D array of numbers, got {type(x).__name__}") from exc
    if a.ndim != 1:
        raise LayoutError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise NonFiniteError(f"{name}: expected finite values, got {int(np.sum(~np.isfinite(a)))} non-finite")
    return a


def _pair(scores: ArrayLike, other: ArrayLike, other_name: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    s = _vector(scores, "scores")
    o = _vector(other, other_name)
    if s.shape != o.shape:
        raise LayoutError(f"{other_name}: expected the length of scores ({s.size}), got {o.size}")
    return s, o


def _binary(scores: ArrayLike, labels: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    s, y = _pair(scores, labels, "labels")
    if not np.all((y == 0) | (y == 1)):
        raise ParameterError(f"labels: expected only 0/1 (or booleans), got values {np.unique(y)[:5].tolist()}")
    return s, y.astype(bool)


def _rank(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """1-based ranks, ties get the average of the ranks they span."""
    if a.size == 0:
        return np.zeros(0)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    starts = np.empty(a.size, dtype=bool)
    starts[0] = True
    np.not_equal(sorted_a[1:], sorted_a[:-1], out=starts[1:])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:], a.size) - 1
    avg = (first + last) / 2.0 + 1.0
    ranks = np.empty(a.size)
    ranks[order] = avg[group]
    return ranks


def auroc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2.

    Args:
        scores: (n,) rewards of one prompt's images.
        labels: (n,) binary labels (1 = aligned).

    Returns:
        AUROC in [0, 1]; NaN when only one class is present.

    Example:
        >>> auroc([0.1, 0.4, 0.4, 0.9], [0, 0, 1, 1])
        0.875
    """
    s, y = _binary(scores, labels)
    return _auroc(_rank(s), y)


def _auroc(ranks: NDArray[np.float64], y: NDArray[np.bool_]) -> float:
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


_Groups = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]


def _grouped_precision(s: NDArray[np.float64], y: NDArray[np.bool_]) -> _Groups:
    """Per distinct score (descending): items at or above it, positives at or above it, positives in it."""
    if s.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="mergesort")
    ss, yy = s[order], y[order]
    ends = np.empty(ss.size, dtype=bool)  # last item of each tie group
    ends[-1] = True
    np.not_equal(ss[1:], ss[:-1], out=ends[:-1])
    cum_items = (np.flatnonzero(ends) + 1).astype(np.float64)
    cum_pos = np.cumsum(yy)[ends].astype(np.float64)
    pos_in_group = np.diff(cum_pos, prepend=0.0)
    return cum_items, cum_pos, pos_in_group


def ap_at_k(scores: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Average precision over the K highest-scored images, normalised by the positives among them.

    AP@K = (1 / P_K) * sum over positives i in the top K of precision(i), where precision(i) is the
    fraction of positives among the images scored at least as high as i, and P_K is the number of
    positives in the top K (not K: a top K with a single positive ranked first scores 1), as the
    TIA2 files do. Ties: a group of equal scores is one threshold, so each positive in it gets the
    precision after the whole group; a group that straddles rank K is included whole. Without ties
    this is the usual AP@K.

    Args:
        scores: (n,) rewards of one prompt's images.
        labels: (n,) binary labels (1 = aligned).
        k: K >= 1; K >= n gives the AUPRC.

    Returns:
        AP@K in [0, 1]; 0 when the top K has no positive; NaN when only one class is present.

    Example:
        >>> ap_at_k([0.9, 0.8, 0.7, 0.6], [0, 1, 1, 0], 3)  # (1/2 + 2/3) / 2
        0.5833333333333333
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k: expected an integer >= 1, got {k!r}")
    s, y = _binary(scores, labels)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        return math.nan
    return _ap(_grouped_precision(s, y), int(k))


def _ap(groups: _Groups, k: int) -> float:
    cum_items, cum_pos, pos_in_group = groups
    # Groups kept: every group that starts before rank K.
    starts = np.concatenate(([0.0], cum_items[:-1]))
    keep = starts < k
    kept_pos = pos_in_group[keep].sum()
    if kept_pos == 0:
        return 0.0
    return float(np.sum(pos_in_group[keep] * cum_pos[keep] / cum_items[keep]) / kept_pos)


def auprc(scores: ArrayLike, labels: ArrayLike) -> float:
    """Area under the precision-recall curve as average precision: sum_t (R_t - R_{t-1}) P_t over
    distinct score thresholds t (ties form one threshold). Equals ``ap_at_k`` with K = n.

    Example:
        >>> round(auprc([0.1, 0.4, 0.4, 0.9], [0, 0, 1, 1]), 4)  # (1 + 2/3) / 2
        0.8333
    """
    s, y = _binary(scores, labels)
    return ap_at_k(s, y, max(int(s.size), 1))


def _correlation(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return math.nan if den == 0.0 else float(np.clip((a @ b) / den, -1.0, 1.0))


def spearman(scores: ArrayLike, targets: ArrayLike) -> float:
    """Spearman rank correlation: Pearson correlation of the average ranks (ties share a rank).

    Args:
        scores: (n,) rewards.
        targets: (n,) real targets, e.g. the mean of the human labels.

    Returns:
        rho in [-1, 1]; NaN if scores or targets are constant or n < 2.

    Example:
        >>> round(spearman([1.0, 2.0, 3.0], [0.0, 0.5, 0.5]), 6)  # sqrt(3) / 2
        0.866025
    """
    s, t = _pair(scores, targets, "targets")
    if s.size < 2:
        return math.nan
    return _correlation(_rank(s), _rank(t))


def kendall(scores: ArrayLike, targets: ArrayLike) -> float:
    """Kendall tau-b: (C - D) / sqrt((n0 - n1)(n0 - n2)) over all pairs, where n1 and n2 count
    the pairs tied in scores and in targets. Pairs tied on either side count in neither C nor D.
    O(n log n) time and O(n) memory (Knight's algorithm, through scipy.stats.kendalltau, whose
    tau-b is this definition); NaN when n < 2 or either side is constant.

    Example:
        >>> round(kendall([1.0, 2.0, 3.0], [0.0, 1.0, 1.0]), 6)  # 2 / sqrt(3 * 2)
        0.816497
    """
    s, t = _pair(scores, targets, "targets")
    return _kendall(s, t)


def _kendall(s: NDArray[np.float64], t: NDArray[np.float64]) -> float:
    # The denominator is 0 exactly when every pair ties on one side: a constant input (checked
    # here, so scipy never warns about it).
    if s.size < 2 or s.min() == s.max() or t.min() == t.max():
        return math.nan
    from scipy.stats import kendalltau

    # scipy also computes a p-value, which is not used: keep its floating-point warnings quiet
    with np.errstate(all="ignore"):
        tau = kendalltau(s, t, variant="b").statistic
    return float(np.clip(tau, -1.0, 1.0))


def _pair_signs(
    scores: NDArray[np.float64], targets: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    i, j = np.triu_indices(scores.size, 1)
    return scores[i] - scores[j], np.sign(targets[i] - targets[j])


def _credit(diff: NDArray[np.float64], sign_t: NDArray[np.float64], eps: float) -> NDArray[np.float64]:
    pred = np.where(np.abs(diff) <= eps, 0.0, np.sign(diff))
    credit = np.where(pred == sign_t, 1.0, 0.0)
    return np.where((pred != sign_t) & ((pred == 0) | (sign_t == 0)), 0.5, credit)


def pairwise_accuracy(scores: ArrayLike, targets: ArrayLike, *, tie_threshold: float = 0.0) -> float:
    """Tie-aware pairwise accuracy over all pairs of one prompt's images.

    The prediction for a pair (i, j) is a tie when |s_i - s_j| <= ``tie_threshold``, else the sign
    of s_i - s_j; the human preference is the sign of t_i - t_j (0 = tie). A pair scores 1 when
    prediction and preference agree (a predicted tie on a human tie included), 1/2 when exactly one
    of them is a tie, 0 when they point in opposite directions. Choose ``tie_threshold`` on
    validation prompts with :func:`choose_tie_threshold`.

    Returns:
        Mean credit in [0, 1]; NaN when n < 2.

    Example:
        >>> pairwise_accuracy([1.0, 2.0, 2.0], [0.0, 1.0, 0.5])  # credits 1, 1, 0.5
        0.8333333333333334
    """
    s, t = _pair(scores, targets, "targets")
    if not (isinstance(tie_threshold, (int, float)) and math.isfinite(tie_threshold) and tie_threshold >= 0):
        raise ParameterError(f"tie_threshold: expected a finite number >= 0, got {tie_threshold!r}")
    if s.size < 2:
        return math.nan
    diff, sign_t = _pair_signs(s, t)
    return float(_credit(diff, sign_t, float(tie_threshold)).mean())


def choose_tie_threshold(scores: Sequence[ArrayLike], targets: Sequence[ArrayLike]) -> float:
    """The tie threshold that maximises the mean (over prompts) pairwise accuracy on validation data.

    Exact: every distinct gap |s_i - s_j| (and 0) is a candidate. A pair's credit is one value
    while its gap exceeds the threshold and another once it counts as a predicted tie, so sorting
    all pairs by gap and accumulating the change gives the accuracy at every candidate in
    O(P log P) for P pairs. Ties between candidates go to the smallest threshold.

    Args:
        scores: per-prompt score arrays.
        targets: per-prompt target arrays, same lengths.
    """
    if len(scores) != len(targets):
        raise LayoutError(f"targets: expected {len(scores)} prompts like scores, got {len(targets)}")
    gaps, gains, base = [], [], 0.0
    pairs = [_pair_signs(*_pair(s, t, "targets")) for s, t in zip(scores, targets) if np.size(s) >= 2]
    for diff, sign_t in pairs:
        w = 1.0 / (diff.size * len(pairs))
        far = _credit(diff, sign_t, -1.0)  # threshold below every gap: no predicted tie
        tie = np.where(sign_t == 0, 1.0, 0.5)
        base += float(far.sum()) * w
        gaps.append(np.abs(diff))
        gains.append((tie - far) * w)
    if not pairs:
        return 0.0
    gap = np.concatenate(gaps)
    order = np.argsort(gap, kind="mergesort")
    gap, gain = gap[order], np.concatenate(gains)[order]
    last = np.r_[gap[1:] != gap[:-1], True]  # a threshold includes every pair of equal gap
    cands = np.r_[-1.0, gap[last]]
    acc = base + np.r_[0.0, np.cumsum(gain)[last]]
    best = float(cands[int(np.argmax(np.round(acc, 12)))])  # rounding: cumsum noise must not decide
    return max(best, 0.0)


def prompt_metrics(
    scores: ArrayLike, labels: ArrayLike, targets: ArrayLike, *, tie_threshold: float | None = None
) -> dict[str, float]:
    """All TIA2 metrics for one prompt: AUROC, AUPRC, AP@5/10/25 on the binary ``labels``,
    Spearman and Kendall on ``targets``; plus ``pairwise_acc`` when ``tie_threshold`` is given."""
    s, y = _binary(scores, labels)
    _, t = _pair(s, targets, "targets")
    ranks = _rank(s)
    n_pos = int(y.sum())
    one_class = n_pos == 0 or n_pos == y.size
    groups = _grouped_precision(s, y)
    ap = {f"ap{k}": math.nan if one_class else _ap(groups, k) for k in (5, 10, 25)}
    out = {
        "auroc": _auroc(ranks, y),
        "auprc": math.nan if one_class else _ap(groups, max(s.size, 1)),
        **ap,
        "spearman": math.nan if s.size < 2 else _correlation(ranks, _rank(t)),
        "kendall": _kendall(s, t),
    }
    if tie_threshold is not None:
        out["pairwise_acc"] = pairwise_accuracy(scores, targets, tie_threshold=tie_threshold)
    return out


def macro_average(per_prompt: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over prompts (the per-category macro average), skipping NaN values.

    Args:
        per_prompt: {prompt: {metric: value}}.

    Returns:
        {metric: mean}; NaN for a metric that is NaN on every prompt.
    """
    names: dict[str, None] = {}
    for row in per_prompt.values():
        names.update(dict.fromkeys(row))
    out: dict[str, float] = {}
    for name in names:
        vals = np.array([row.get(name, math.nan) for row in per_prompt.values()], dtype=np.float64)
        ok = ~np.isnan(vals)
        out[name] = float(vals[ok].mean()) if ok.any() else math.nan
    return out
