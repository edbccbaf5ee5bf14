"""Metrics of textnorm.eval against independent references: brute-force pair counts, scipy.stats,
hand-derived AP@K values (ties included), and loops written from the definitions."""

from __future__ import annotations

import doctest
import itertools
import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from textnorm import LayoutError, NonFiniteError, ParameterError
from textnorm.eval import bootstrap, metrics
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

# Small integer scores make ties frequent.
tied_scores = st.lists(st.integers(0, 4), min_size=2, max_size=30)


def _with_both_classes(draw_scores: list[int], bits: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.array(draw_scores, dtype=float)
    y = np.array(bits[: len(s)] + [False] * (len(s) - len(bits)), dtype=bool)
    y[0], y[-1] = True, False
    return s, y


def brute_auroc(s: np.ndarray, y: np.ndarray) -> float:
    pos, neg = s[y], s[~y]
    total = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return total / (len(pos) * len(neg))


def threshold_ap(s: np.ndarray, y: np.ndarray) -> float:
    """sum_t (R_t - R_{t-1}) P_t over distinct thresholds t, from the highest down."""
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        sel = s >= t
        recall = y[sel].sum() / y.sum()
        ap += (recall - prev_recall) * y[sel].mean()
        prev_recall = recall
    return ap


def loop_ap_at_k(s: np.ndarray, y: np.ndarray, k: int) -> float:
    """AP@K by its definition for scores without ties."""
    order = np.argsort(-s)[:k]
    hits, total = 0, 0.0
    for rank, i in enumerate(order, 1):
        if y[i]:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


@given(tied_scores, st.lists(st.booleans(), max_size=30))
def test_auroc_matches_brute_force_pairs_with_ties(scores: list[int], bits: list[bool]) -> None:
    s, y = _with_both_classes(scores, bits)
    assert auroc(s, y) == pytest.approx(brute_auroc(s, y), abs=1e-12)


@given(tied_scores, st.lists(st.booleans(), max_size=30))
def test_auprc_matches_threshold_sum(scores: list[int], bits: list[bool]) -> None:
    s, y = _with_both_classes(scores, bits)
    assert auprc(s, y) == pytest.approx(threshold_ap(s, y), abs=1e-12)


@given(st.permutations(list(range(12))), st.lists(st.booleans(), min_size=12, max_size=12), st.integers(1, 14))
def test_ap_at_k_without_ties_is_the_textbook_definition(perm: list[int], bits: list[bool], k: int) -> None:
    s = np.array(perm, dtype=float)
    y = np.array(bits)
    y[0], y[1] = True, False
    assert ap_at_k(s, y, k) == pytest.approx(loop_ap_at_k(s, y, k), abs=1e-12)


@pytest.mark.parametrize(
    ("scores", "labels", "k", "expected"),
    [
        ([5, 4, 3, 2, 1], [1, 0, 1, 0, 1], 5, (1 + 2 / 3 + 3 / 5) / 3),
        ([5, 4, 3, 2, 1], [1, 0, 1, 0, 1], 3, (1 + 2 / 3) / 2),  # divided by 2 positives, not by K
        ([5, 4, 3, 2, 1], [0, 1, 0, 0, 1], 1, 0.0),  # no positive in the top K
        ([5, 4, 3, 2, 1], [0, 1, 0, 0, 1], 2, 1 / 2),
        # ties: the tied group {2, 2} is one threshold with precision 1/3 after it, kept whole at K=2
        ([3, 2, 2, 1], [0, 1, 0, 1], 2, 1 / 3),
        ([3, 2, 2, 1], [0, 1, 1, 0], 2, 2 / 3),
        # all tied: precision = base rate for every positive
        ([1, 1, 1, 1], [1, 0, 0, 1], 1, 1 / 2),
    ],
)
def test_ap_at_k_hand_cases(scores: list[float], labels: list[int], k: int, expected: float) -> None:
    assert ap_at_k(scores, labels, k) == pytest.approx(expected, abs=1e-12)


def test_ap_at_k_beyond_n_is_auprc_and_order_of_ties_does_not_matter() -> None:
    s = np.array([3.0, 2.0, 2.0, 2.0, 1.0, 0.0])
    y = np.array([1, 0, 1, 0, 1, 0])
    assert ap_at_k(s, y, 100) == pytest.approx(auprc(s, y))
    perm = np.array([0, 3, 2, 1, 4, 5])
    for k in (1, 2, 3, 4, 6):
        assert ap_at_k(s[perm], y[perm], k) == ap_at_k(s, y, k)


@pytest.mark.filterwarnings("ignore:An input array is constant")
@given(tied_scores, st.lists(st.integers(0, 3), min_size=30, max_size=30))
def test_rank_correlations_match_scipy(scores: list[int], target_ints: list[int]) -> None:
    s = np.array(scores, dtype=float)
    t = np.array(target_ints[: len(s)], dtype=float) / 3.0
    ref_rho = scipy.stats.spearmanr(s, t).statistic
    ref_tau = scipy.stats.kendalltau(s, t, variant="b").statistic
    if np.isnan(ref_rho):
        assert math.isnan(spearman(s, t)) and math.isnan(kendall(s, t))
    else:
        assert spearman(s, t) == pytest.approx(ref_rho, abs=1e-12)
        assert kendall(s, t) == pytest.approx(ref_tau, abs=1e-12)


def pairwise_kendall(s: np.ndarray, t: np.ndarray) -> float:
    """Tau-b from its definition over all pairs (the O(n^2) form kendall used to compute):
    (C - D) / sqrt((n0 - n1)(n0 - n2)); pairs tied on either side count in neither C nor D."""
    if s.size < 2:
        return math.nan
    i, j = np.triu_indices(s.size, 1)
    ds, dt = np.sign(s[i] - s[j]), np.sign(t[i] - t[j])
    n0, n1, n2 = i.size, int(np.sum(ds == 0)), int(np.sum(dt == 0))
    den = math.sqrt(float(n0 - n1) * float(n0 - n2))
    return math.nan if den == 0.0 else float(np.clip(np.sum(ds * dt) / den, -1.0, 1.0))


@given(st.lists(st.integers(-3, 3), min_size=0, max_size=40), st.lists(st.integers(0, 3), min_size=40, max_size=40),
       st.sampled_from([1.0, 1e-300, 1e300, 0.1]))
def test_kendall_equals_the_pair_definition_with_ties(scores: list[int], t_ints: list[int], unit: float) -> None:
    s = np.array(scores, dtype=float) * unit  # ties, tiny and huge magnitudes
    t = np.array(t_ints[: len(s)], dtype=float) / 3.0
    expected = pairwise_kendall(s, t)
    if math.isnan(expected):
        assert math.isnan(kendall(s, t))
    else:
        assert kendall(s, t) == pytest.approx(expected, abs=1e-12)


def test_kendall_on_20000_images_matches_the_pair_count_of_a_known_answer() -> None:
    """O(n log n): 20,000 images (2e8 pairs; the pair definition took 12 s and 7.9 GB). With
    targets a strictly increasing function of the scores except on a block of tied targets, the
    answer is known in closed form."""
    n, tied = 20_000, 500
    s = np.random.default_rng(0).permutation(n).astype(float)
    t = s.copy()
    t[s < tied] = 0.0  # the lowest `tied` scores share one target
    n0 = n * (n - 1) // 2
    n2 = tied * (tied - 1) // 2  # pairs tied in targets (none in scores); all others concordant
    assert kendall(s, t) == pytest.approx((n0 - n2) / math.sqrt(n0 * (n0 - n2)), abs=1e-12)
    assert kendall(s, -t) == pytest.approx(-(n0 - n2) / math.sqrt(n0 * (n0 - n2)), abs=1e-12)


def loop_pairwise(s: np.ndarray, t: np.ndarray, eps: float) -> float:
    credits = []
    for i, j in itertools.combinations(range(len(s)), 2):
        pred = 0 if abs(s[i] - s[j]) <= eps else (1 if s[i] > s[j] else -1)
        human = 0 if t[i] == t[j] else (1 if t[i] > t[j] else -1)
        credits.append(1.0 if pred == human else 0.5 if 0 in (pred, human) else 0.0)
    return float(np.mean(credits))


@given(st.lists(st.floats(0, 1), min_size=2, max_size=15), st.lists(st.integers(0, 2), min_size=15, max_size=15),
       st.floats(0, 0.5))
def test_pairwise_accuracy_matches_loop(scores: list[float], t_ints: list[int], eps: float) -> None:
    s = np.array(scores)
    t = np.array(t_ints[: len(s)], dtype=float)
    assert pairwise_accuracy(s, t, tie_threshold=eps) == pytest.approx(loop_pairwise(s, t, eps), abs=1e-12)


def test_choose_tie_threshold_finds_the_gap_that_separates_noise_from_signal() -> None:
    # Pairs with equal targets differ by at most 0.01 in score; different targets by >= 0.5.
    s = [np.array([0.0, 0.01, 1.0, 1.005]), np.array([0.0, 0.5, 0.505])]
    t = [np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0])]
    eps = choose_tie_threshold(s, t)
    assert 0.01 <= eps < 0.5
    assert all(pairwise_accuracy(a, b, tie_threshold=eps) == 1.0 for a, b in zip(s, t))
    assert pairwise_accuracy(s[0], t[0]) < 1.0  # without the threshold, noise costs half credits


@given(st.lists(st.lists(st.integers(0, 6), min_size=2, max_size=8), min_size=1, max_size=4),
       st.lists(st.integers(0, 2), min_size=8, max_size=8))
def test_choose_tie_threshold_is_the_best_of_all_gaps(score_lists: list[list[int]], t_ints: list[int]) -> None:
    scores = [np.array(s, dtype=float) / 2 for s in score_lists]
    targets = [np.array(t_ints[: len(s)], dtype=float) for s in score_lists]
    cands = sorted({0.0} | {abs(a - b) for s in scores for a in s for b in s})
    acc = {e: np.mean([loop_pairwise(s, t, e) for s, t in zip(scores, targets)]) for e in cands}
    best = max(acc.values())
    eps = choose_tie_threshold(scores, targets)
    assert acc[eps] == pytest.approx(best, abs=1e-12)
    assert eps == min(e for e in cands if acc[e] > best - 1e-12)


def test_undefined_metrics_are_nan_and_macro_skips_them() -> None:
    assert math.isnan(auroc([1, 2, 3], [1, 1, 1]))
    assert math.isnan(auprc([1, 2, 3], [0, 0, 0]))
    assert math.isnan(ap_at_k([1, 2, 3], [0, 0, 0], 2))
    assert math.isnan(spearman([1, 1, 1], [0, 1, 0]))
    assert math.isnan(kendall([1, 2, 3], [1, 1, 1]))
    assert math.isnan(pairwise_accuracy([1.0], [1.0]))
    empty = prompt_metrics([], [], [], tie_threshold=0.0)
    assert all(math.isnan(v) for v in empty.values()) and math.isnan(auroc([], []))
    rows = {"a": {"auroc": 0.5, "x": math.nan}, "b": {"auroc": 1.0, "x": math.nan}, "c": {"auroc": math.nan}}
    out = macro_average(rows)
    assert out["auroc"] == 0.75 and math.isnan(out["x"])


@given(tied_scores, st.lists(st.booleans(), max_size=30), st.lists(st.integers(0, 3), min_size=30, max_size=30))
def test_prompt_metrics_equals_the_single_metric_functions(scores: list[int], bits: list[bool], t: list[int]) -> None:
    s = np.array(scores, dtype=float)
    y = np.array(bits[: len(s)] + [False] * (len(s) - len(bits)), dtype=bool)
    tt = np.array(t[: len(s)], dtype=float)
    m = prompt_metrics(s, y, tt, tie_threshold=0.0)
    assert list(m) == [*metrics.METRICS, "pairwise_acc"]
    want = {"auroc": auroc(s, y), "auprc": auprc(s, y), "ap5": ap_at_k(s, y, 5), "ap10": ap_at_k(s, y, 10),
            "ap25": ap_at_k(s, y, 25), "spearman": spearman(s, tt), "kendall": kendall(s, tt),
            "pairwise_acc": pairwise_accuracy(s, tt)}
    assert m == pytest.approx(want, nan_ok=True, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "error", "needle"),
    [
        (lambda: auroc([1, 2], [1, 0, 1]), LayoutError, "labels"),
        (lambda: auroc([[1, 2]], [[1, 0]]), LayoutError, "scores"),
        (lambda: auroc([1, float("nan")], [1, 0]), NonFiniteError, "scores"),
        (lambda: auroc([1, 2], [1, 2]), ParameterError, "labels"),
        (lambda: auroc(["a", "b"], [1, 0]), LayoutError, "scores"),
        (lambda: ap_at_k([1, 2], [1, 0], 0), ParameterError, "k"),
        (lambda: ap_at_k([1, 2], [1, 0], 2.5), ParameterError, "k"),
        (lambda: spearman([1, 2], [1, 2, 3]), LayoutError, "targets"),
        (lambda: kendall([1, 2], [1, float("inf")]), NonFiniteError, "targets"),
        (lambda: pairwise_accuracy([1, 2], [1, 2], tie_threshold=-1), ParameterError, "tie_threshold"),
        (lambda: choose_tie_threshold([[1, 2]], []), LayoutError, "targets"),
        (lambda: bootstrap.bootstrap_ci([[1.0]]), LayoutError, "values"),
        (lambda: bootstrap.bootstrap_ci([1.0], n_boot=0), ParameterError, "n_boot"),
        (lambda: bootstrap.bootstrap_ci([1.0], level=1.0), ParameterError, "level"),
        (lambda: bootstrap.bootstrap_diff([1.0], [1.0, 2.0]), LayoutError, "b"),
    ],
)
def test_errors_name_the_argument(call, error, needle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=needle):
        call()


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    v = rng.random(40)
    v[3] = np.nan
    ci = bootstrap.bootstrap_ci(v, n_boot=500, seed=7)
    assert ci.n == 39 and ci.mean == pytest.approx(np.nanmean(v))
    assert ci.lo < ci.mean < ci.hi
    # normal-theory half width as an independent scale check (within a factor of 1.5)
    half = 1.96 * np.nanstd(v) / math.sqrt(39)
    assert (ci.hi - ci.lo) / 2 == pytest.approx(half, rel=0.5)
    assert bootstrap.bootstrap_ci(v, n_boot=500, seed=7) == ci
    d = bootstrap.bootstrap_diff(v + 0.1, v, n_boot=200)
    assert d.mean == pytest.approx(0.1) and d.lo == pytest.approx(0.1) and d.hi == pytest.approx(0.1)
    assert math.isnan(bootstrap.bootstrap_ci([np.nan]).mean)


@pytest.mark.parametrize("module", [metrics, bootstrap])
def test_docstring_examples_run(module) -> None:  # type: ignore[no-untyped-def]
    result = doctest.testmod(module, extraglobs={"np": np})
    assert result.attempted > 0 and result.failed == 0
