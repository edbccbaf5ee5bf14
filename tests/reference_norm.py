"""An independent reference of DESIGN.md section 2, written from the formulas with a plain
per-row loop (no shared code with the library).

The affine part is exact: logits are turned into ``fractions.Fraction`` (every finite float is
one exactly), so ``z_i - max z`` is computed without overflow or cancellation for any finite
row, [1e308, -1e308] included, and rounded once to float64. Only the exponentials and their
sum (``math.fsum``) are in float64; since max z = 0 the sum lies in [1, n].
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def _shifted_z(row: np.ndarray, scale: float, mode: str) -> list[float]:
    """z_i - max z for every entry, exact up to one final rounding (-inf below the floats)."""
    fr = [Fraction(float(v)) for v in np.asarray(row).ravel()]
    hi, lo = max(fr), min(fr)
    if mode == "minmax":
        if hi == lo:
            return [0.0] * len(fr)
        exact = [Fraction(scale) * (f - hi) / (hi - lo) for f in fr]
    else:
        exact = [Fraction(scale) * (f - hi) for f in fr]
    out = []
    for v in exact:
        try:
            out.append(float(v))
        except OverflowError:  # below -1.8e308: exp gives 0 either way
            out.append(-math.inf)
    return out


def row_probs(row: np.ndarray, scale: float, mode: str) -> np.ndarray:
    z = _shifted_z(row, scale, mode)
    e = [math.exp(v) for v in z]
    total = math.fsum(e)
    return np.array([v / total for v in e])


def row_log_conf(row: np.ndarray, t: int, scale: float, mode: str) -> float:
    z = _shifted_z(row, scale, mode)
    return z[t] - math.log(math.fsum(math.exp(v) for v in z))


def rows_of(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [values[offsets[b] : offsets[b + 1]] for b in range(len(offsets) - 1)]


def ensemble_ref(conf: np.ndarray, method: str, lam: float) -> np.ndarray:
    """conf: (M, B) per-model confidences."""
    mean = conf.mean(axis=0)
    var = ((conf - mean) ** 2).mean(axis=0)
    if method == "ur":
        return mean - lam * var
    if method == "ur_std":
        return mean - lam * np.sqrt(var)
    return mean
