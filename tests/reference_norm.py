"""An independent float64 reference of DESIGN.md section 2, written from the formulas with a
plain per-row loop (no shared code with the library)."""

from __future__ import annotations

import math

import numpy as np


def row_probs(row: np.ndarray, scale: float, mode: str) -> np.ndarray:
    row = np.asarray(row, dtype=np.float64)
    lo, hi = row.min(), row.max()
    if mode == "minmax":
        if hi == lo:
            return np.full(row.shape, 1.0 / row.size)
        z = scale * (row - lo) / (hi - lo)
    else:
        z = scale * row
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def row_log_conf(row: np.ndarray, t: int, scale: float, mode: str) -> float:
    row = np.asarray(row, dtype=np.float64)
    lo, hi = row.min(), row.max()
    if mode == "minmax":
        if hi == lo:
            return -math.log(row.size)
        z = scale * (row - lo) / (hi - lo)
    else:
        z = scale * row
    m = z.max()
    return float(z[t] - m - math.log(np.exp(z - m).sum()))


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
