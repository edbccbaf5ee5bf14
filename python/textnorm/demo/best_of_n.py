"""Best-of-n overoptimization on base samples: gold (the judge) and proxy against KL.

Following Gao, Schulman and Hilton (ICML 2023): for each prompt draw N samples of the base
generator once; picking the best of n by a reward moves the output distribution by
``KL = log n - (n - 1) / n`` nats from the base. The expected judge alignment and proxy score of
the pick are computed exactly over all size-n subsets of the N samples (no resampling noise):
with the samples sorted by the selection reward, the i-th smallest of N is the maximum of a
random n-subset with probability ``C(i - 1, n - 1) / C(N, n)``. Ties in the selection reward are
broken by averaging over their order (each tied group shares its members' mean gold and proxy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

from textnorm._core import ParameterError

__all__ = ["best_of_n_kl", "expected_best_of_n", "pick_weights"]


def best_of_n_kl(n: int | np.ndarray) -> np.ndarray:
    """KL (nats) of best-of-n sampling from the base distribution: ``log n - (n - 1) / n``."""
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1):
        raise ParameterError(f"n: expected counts >= 1, got {n!r}")
    return np.log(n) - (n - 1) / n


def pick_weights(total: int, n: int) -> np.ndarray:
    """Probability that the i-th smallest of `total` items is the maximum of a uniformly random
    n-subset (i = 1..total): ``C(i-1, n-1) / C(total, n)``; sums to one."""
    if not 1 <= n <= total:
        raise ParameterError(f"n: expected 1 <= n <= {total}, got {n!r}")
    i = np.arange(1, total + 1, dtype=np.float64)
    ok = i >= n
    logw = np.full(total, -np.inf)
    k = i[ok] - 1
    logw[ok] = (gammaln(k + 1) - gammaln(n) - gammaln(k - n + 2)) - (
        gammaln(total + 1) - gammaln(n + 1) - gammaln(total - n + 1))
    return np.exp(logw)


def _tie_averaged(select: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` sorted by `select` ascending, each run of tied `select` replaced by its mean."""
    order = np.argsort(select, kind="stable")
    s, v = select[order], values[order]
    out = v.astype(np.float64).copy()
    start = 0
    for end in range(1, len(s) + 1):
        if end == len(s) or s[end] != s[start]:
            out[start:end] = v[start:end].mean()
            start = end
    return out


def expected_best_of_n(select: np.ndarray, values: Sequence[np.ndarray] | np.ndarray,
                       ns: Sequence[int]) -> np.ndarray:
    """Expected value of each of `values` at the best-of-n pick by `select`, per prompt and n.

    Args:
        select: selection reward, (P, N): P prompts, N samples each.
        values: one or more (P, N) arrays to read at the pick (the judge's 0/1, the raw proxy).
        ns: the n values (each in 1..N).

    Returns:
        float64 (len(values), P, len(ns)).
    """
    sel = np.asarray(select, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim == 2:
        vals = vals[None]
    if sel.ndim != 2 or vals.shape[1:] != sel.shape:
        raise ParameterError(f"values: expected arrays shaped like select {sel.shape}, got {vals.shape}")
    if not np.isfinite(sel).all():
        raise ParameterError("select: expected finite rewards")
    weights = np.stack([pick_weights(sel.shape[1], int(n)) for n in ns])  # (len(ns), N)
    out = np.empty((vals.shape[0], sel.shape[0], len(ns)))
    for p in range(sel.shape[0]):
        for v in range(vals.shape[0]):
            out[v, p] = weights @ _tie_averaged(sel[p], vals[v, p])
    return out
