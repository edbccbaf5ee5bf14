"""Bootstrap confidence intervals over prompts for macro-averaged metrics.

Prompts are the unit of resampling (images of one prompt are not independent: they share the
prompt's difficulty). A percentile interval of the macro mean over ``n_boot`` resamples with
replacement; NaN prompts are dropped first. Paired differences resample the same prompts for both
methods, which is what a comparison of two rewards on one benchmark needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from textnorm._core import LayoutError, ParameterError

__all__ = ["Interval", "bootstrap_ci", "bootstrap_diff"]


@dataclass(frozen=True)
class Interval:
    """A macro mean with its bootstrap percentile interval and the number of prompts behind it."""

    mean: float
    lo: float
    hi: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "n": self.n}


def _check(n_boot: int, level: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ParameterError(f"n_boot: expected an integer >= 1, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ParameterError(f"level: expected a confidence level in (0, 1), got {level!r}")


def _interval(values: np.ndarray, n_boot: int, level: float, seed: int) -> Interval:
    n = values.size
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return Interval(float(values.mean()), float(lo), float(hi), int(n))


def bootstrap_ci(values: ArrayLike, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of per-prompt values with a percentile bootstrap interval over prompts.

    Args:
        values: (n_prompts,) per-prompt metric values; NaN entries are ignored.
        n_boot: number of resamples.
        level: confidence level of the interval.
        seed: seed of the resampling (the same seed gives the same interval).

    Example:
        >>> bootstrap_ci([0.5, 0.5, 0.5]).as_dict()
        {'mean': 0.5, 'lo': 0.5, 'hi': 0.5, 'n': 3}
    """
    _check(n_boot, level)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise LayoutError(f"values: expected a 1-D array of per-prompt values, got shape {v.shape}")
    return _interval(v[~np.isnan(v)], n_boot, level, seed)


def bootstrap_diff(
    a: ArrayLike, b: ArrayLike, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> Interval:
    """Paired difference mean(a - b) over prompts where both are defined, with its interval."""
    _check(n_boot, level)
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise LayoutError(f"b: expected the shape of a {x.shape}, got {y.shape}")
    d = x - y
    return _interval(d[~np.isnan(d)], n_boot, level, seed)
