"""Normaliser benchmarks: textnorm against the strongest alternatives, in one process.

pytest-benchmark: ``python -m pytest benches/bench_normalize.py --benchmark-only``.
Ratio table for benches/RESULTS.md: ``python benches/bench_normalize.py`` (medians).
Every alternative computes the same min-max confidence of column 0 (scale 3); torch runs on
one intra-op thread.
"""

from __future__ import annotations

import os

# Idle BLAS/OpenMP worker threads of numpy and torch spin after each call and steal the core the
# Rust pool needs (ragged calls measured 2x slower); torch runs on one thread anyway.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics
import time
from collections.abc import Callable

import numpy as np
import pytest
import scipy.special
import torch

import textnorm
from textnorm import _core

SCALE = 3.0


def numpy_dense(m: np.ndarray) -> np.ndarray:
    lo, hi = m.min(axis=1, keepdims=True), m.max(axis=1, keepdims=True)
    width = hi - lo
    z = SCALE * (m - hi) / np.where(width > 0, width, 1)
    e = np.exp(z)
    return e[:, 0] / e.sum(axis=1)


def scipy_dense(m: np.ndarray) -> np.ndarray:
    lo, hi = m.min(axis=1, keepdims=True), m.max(axis=1, keepdims=True)
    width = hi - lo
    z = SCALE * (m - lo) / np.where(width > 0, width, 1)
    return scipy.special.softmax(z, axis=1)[:, 0]


def torch_dense(m: torch.Tensor) -> torch.Tensor:
    lo, hi = m.amin(dim=1, keepdim=True), m.amax(dim=1, keepdim=True)
    width = hi - lo
    z = SCALE * (m - lo) / torch.where(width > 0, width, 1)
    return torch.softmax(z, dim=1)[:, 0]


def torch_ragged_padded(values: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Best torch CPU version found: gather to (B, Kmax) with a mask, then masked reductions."""
    lens = offsets[1:] - offsets[:-1]
    cols = torch.arange(int(lens.max()))
    mask = cols[None, :] < lens[:, None]
    idx = (offsets[:-1, None] + cols[None, :]).clamp_(max=values.numel() - 1)
    x = values[idx]
    hi = x.masked_fill(~mask, -torch.inf).amax(dim=1, keepdim=True)
    lo = x.masked_fill(~mask, torch.inf).amin(dim=1, keepdim=True)
    width = hi - lo
    z = (SCALE * (x - hi) / torch.where(width > 0, width, 1)).masked_fill_(~mask, -torch.inf)
    return torch.softmax(z, dim=1)[:, 0]


def torch_ragged_segments(values: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """The segment-operation alternative: segment_reduce for min/max and sums."""
    lens = offsets[1:] - offsets[:-1]
    hi = torch.segment_reduce(values, "max", lengths=lens)
    lo = torch.segment_reduce(values, "min", lengths=lens)
    width = hi - lo
    c = SCALE / torch.where(width > 0, width, 1)
    z = (values - hi.repeat_interleave(lens)) * c.repeat_interleave(lens)
    e = z.exp()
    return e[offsets[:-1]] / torch.segment_reduce(e, "sum", lengths=lens)


def numpy_ragged_loop(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.empty(len(offsets) - 1, dtype=values.dtype)
    for b in range(len(offsets) - 1):
        out[b] = numpy_dense(values[offsets[b] : offsets[b + 1]][None])[0]
    return out


def dense(rows: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(rows, 17)).astype(np.float32)


def ragged(rows: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    lens = rng.integers(3, 34, size=rows)  # 1 target + K contrastive, K uniform in 2..32
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return rng.normal(size=offsets[-1]).astype(np.float32), offsets


@pytest.fixture(autouse=True)
def _one_torch_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("rows", [64, 1024, 65536])
@pytest.mark.parametrize("impl", ["textnorm", "numpy", "scipy", "torch"])
def test_dense(benchmark, rows, impl):
    m = dense(rows)
    t = torch.from_numpy(m)
    fn: Callable[[], object] = {
        "textnorm": lambda: textnorm.confidence(m, scale=SCALE),
        "numpy": lambda: numpy_dense(m),
        "scipy": lambda: scipy_dense(m),
        "torch": lambda: torch_dense(t),
    }[impl]
    benchmark.group = f"dense ({rows},17) float32"
    benchmark(fn)


def test_bare_torch_softmax_64(benchmark):
    t = torch.from_numpy(dense(64))
    benchmark.group = "dense (64,17) float32"
    benchmark(lambda: torch.softmax(t, dim=1))


@pytest.mark.parametrize("impl", ["textnorm", "torch_padded", "torch_segments"])
def test_ragged(benchmark, impl):
    v, o = ragged()
    tv, to = torch.from_numpy(v), torch.from_numpy(o)
    fn = {
        "textnorm": lambda: textnorm.confidence(v, offsets=o, scale=SCALE),
        "torch_padded": lambda: torch_ragged_padded(tv, to),
        "torch_segments": lambda: torch_ragged_segments(tv, to),
    }[impl]
    benchmark.group = "ragged B=65536, K in 2..32"
    benchmark(fn)


def _median_us(fn: Callable[[], object], budget_s: float = 1.0, min_runs: int = 5) -> float:
    fn()
    runs: list[float] = []
    start = time.perf_counter()
    while len(runs) < min_runs or (time.perf_counter() - start < budget_s and len(runs) < 20000):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) * 1e6


def main() -> None:
    torch.set_num_threads(1)
    print(f"textnorm threads available: {_core.num_threads()}, torch threads: 1")
    print("| case | textnorm (us) | alternative | alt (us) | ratio alt/textnorm |")
    print("|---|---|---|---|---|")
    for rows in (64, 1024, 65536):
        m = dense(rows)
        t = torch.from_numpy(m)
        ours = _median_us(lambda: textnorm.confidence(m, scale=SCALE))
        alts = {"numpy": lambda: numpy_dense(m), "scipy.special.softmax": lambda: scipy_dense(m),
                "torch (1 thread)": lambda: torch_dense(t)}  # fmt: skip
        if rows == 64:
            alts["bare torch.softmax"] = lambda: torch.softmax(t, dim=1)
        for name, fn in alts.items():
            alt = _median_us(fn)
            print(f"| dense ({rows},17) f32 | {ours:.1f} | {name} | {alt:.1f} | {alt / ours:.1f}x |")
    v, o = ragged()
    tv, to = torch.from_numpy(v), torch.from_numpy(o)
    ours = _median_us(lambda: textnorm.confidence(v, offsets=o, scale=SCALE))
    for name, fn in {"torch padded+mask": lambda: torch_ragged_padded(tv, to),
                     "torch segment_reduce": lambda: torch_ragged_segments(tv, to),
                     "numpy per-row loop": lambda: numpy_ragged_loop(v, o)}.items():  # fmt: skip
        alt = _median_us(fn, budget_s=2.0, min_runs=3)
        print(f"| ragged B=65536 K 2..32 f32 | {ours:.0f} | {name} | {alt:.0f} | {alt / ours:.1f}x |")
    big = dense(65536)
    for label, call in {"dense (65536,17)": lambda: textnorm.confidence(big, scale=SCALE),
                        "ragged B=65536": lambda: textnorm.confidence(v, offsets=o, scale=SCALE)}.items():  # fmt: skip
        times = {}
        for n in (1, 2):
            _core.set_num_threads(n)
            times[n] = _median_us(call)
        _core.set_num_threads(0)
        print(f"| {label}: 1 vs 2 threads | {times[2]:.0f} (2 thr) | 1 thread | {times[1]:.0f} | {times[1] / times[2]:.2f}x |")
    # accuracy against float64 on the large cases
    ref = numpy_dense(big.astype(np.float64))
    err = np.abs(textnorm.confidence(big, scale=SCALE) - ref).max()
    ref_log = np.log(ref)
    err_log = np.abs(textnorm.confidence(big, scale=SCALE, log=True) - ref_log).max()
    print(f"\nmax |p - p64| = {err:.2e}, max |log p - log p64| = {err_log:.2e} on (65536,17)")


if __name__ == "__main__":
    main()
