"""Finite logits anywhere in the float range give the right confidence in every path (issue 14
item 2): rows whose spread overflows the float type ([1e308, -1e308] in float64, [3e38, -3e38]
in float32), subnormal spreads, huge and tiny scales. Checked against the exact reference
(fractions, no overflow), on the Rust core and on the torch implementation, with and without
grad, dense, CSR, padded, probabilities, log and ensemble."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference_norm import row_log_conf, row_probs

import textnorm
from textnorm import normalize

torch = pytest.importorskip("torch")

F64_MAX, F32_MAX = float(np.finfo(np.float64).max), float(np.finfo(np.float32).max)

# (row, dtype, scale, mode): every row is finite, and every one broke a path before.
CASES = [
    ([1e308, -1e308], np.float64, 3.0, "minmax"),  # NaN before (expected 0.9526)
    ([3e38, -3e38, 0.0], np.float32, 3.0, "minmax"),  # 0.8176 before (expected 0.786)
    ([F64_MAX, -F64_MAX, 0.0, 1.0], np.float64, 10.0, "minmax"),
    ([-F32_MAX, F32_MAX], np.float32, 0.1, "minmax"),
    ([1e308, -1e308, 5e307], np.float64, 1e-308, "temperature"),  # z = [1, -1, 0.5]
    ([3e38, -3e38, 1e38], np.float32, 1e-38, "temperature"),
    ([0.0, 5e-324], np.float64, 10.0, "minmax"),  # 10 / 5e-324 overflows
    ([0.0, 1e-45, -1e-45], np.float32, 5.0, "minmax"),  # subnormal spread in float32
    ([1e300, -1e300, 0.0], np.float64, 1e300, "minmax"),  # a huge scale
    ([1e30, -1e30, 2e29], np.float32, 1e200, "minmax"),  # scale beyond float32
]
IDS = [f"{np.dtype(d).name}-{m}-{i}" for i, (_, d, _, m) in enumerate(CASES)]


def _tol(dtype) -> float:
    # float32: the kernels' bound is 1e-6 up to s (max - min) = 100; rows here go far beyond,
    # where the rounding of l - max l in float32 can cost a few ulps of |z|.
    return 1e-12 if dtype == np.float64 else 1e-5


def _in(dtype, value: float) -> float:
    """``value`` as the output dtype holds it (a log-confidence of -4e199 is -inf in float32)."""
    with np.errstate(over="ignore"):
        return float(np.asarray(value, dtype=np.float64).astype(dtype))


def _run(path, fn, x, monkeypatch, **kw):
    """One call of ``fn`` on numpy or torch input through the named path."""
    if path == "numpy":
        return np.asarray(fn(x, **kw), dtype=np.float64)
    t = torch.from_numpy(np.array(x))
    if path == "torch-grad":
        t.requires_grad_(True)
    elif path == "torch-nograd":  # the on-device implementation, as a large GPU batch gets it
        monkeypatch.setattr(normalize, "_tensor_path", lambda _x: "torch")
    out = fn(t, **kw)
    assert out.dtype == t.dtype
    return out.detach().double().numpy()


PATHS = ["numpy", "torch-core", "torch-grad", "torch-nograd"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("row,dtype,scale,mode", CASES, ids=IDS)
def test_overflowing_and_subnormal_spreads_match_the_exact_reference(path, row, dtype, scale, mode, monkeypatch):
    n = len(row)
    m = np.array([row, row[::-1]], dtype=dtype)  # two rows, the target at both ends
    want = [row_probs(r, scale, mode) for r in m]
    tol = _tol(dtype)
    kw = dict(scale=scale, mode=mode)
    conf = _run(path, textnorm.confidence, m, monkeypatch, **kw)
    np.testing.assert_allclose(conf, [w[0] for w in want], rtol=0, atol=tol)
    logc = _run(path, textnorm.confidence, m, monkeypatch, log=True, target=n - 1, **kw)
    want_log = [_in(dtype, row_log_conf(r, n - 1, scale, mode)) for r in m]
    for got, w in zip(logc, want_log):
        assert got == w or abs(got - w) <= tol + 4e-7 * abs(w), (got, w)
    probs = _run(path, textnorm.probabilities, m, monkeypatch, **kw)
    np.testing.assert_allclose(probs, np.array(want), rtol=0, atol=tol)
    # CSR and padded: the same rows beside a short ordinary row.
    flat = np.concatenate([m[0], np.array([2.0, 1.0], dtype=dtype), m[1]])
    offsets = np.array([0, n, n + 2, 2 * n + 2])
    ragged_want = [want[0][0], row_probs(np.array([2.0, 1.0]), scale, mode)[0], want[1][0]]
    csr = _run(path, textnorm.confidence, flat, monkeypatch, offsets=offsets, **kw)
    np.testing.assert_allclose(csr, ragged_want, rtol=0, atol=tol)
    padded = np.zeros((3, n), dtype=dtype)
    for b in range(3):
        padded[b, : offsets[b + 1] - offsets[b]] = flat[offsets[b] : offsets[b + 1]]
    pad = _run(path, textnorm.confidence, padded, monkeypatch, lengths=np.diff(offsets), **kw)
    np.testing.assert_allclose(pad, ragged_want, rtol=0, atol=tol)
    # Ensemble of the two orders as two models of one row each.
    ens = _run(path, textnorm.ensemble, m[:, None, :], monkeypatch, method="ur", lam=0.5, **kw)
    per_model = np.array([want[0][0], want[1][0]])
    mean = per_model.mean()
    np.testing.assert_allclose(ens, [mean - 0.5 * ((per_model - mean) ** 2).mean()], rtol=0, atol=tol)


def test_the_issue_numbers():
    assert textnorm.confidence(np.array([[1e308, -1e308]]), scale=3.0)[0] == pytest.approx(
        1 / (1 + math.exp(-3)), abs=1e-15
    )
    got = textnorm.confidence(np.array([[3e38, -3e38, 0]], dtype=np.float32), scale=3.0)[0]
    assert got == pytest.approx(1 / (1 + math.exp(-3) + math.exp(-1.5)), abs=1e-6)


def test_gradients_of_an_overflowing_row_are_finite():
    x = torch.tensor([[1e308, -1e308, 0.0]], dtype=torch.float64, requires_grad=True)
    textnorm.confidence(x, scale=3.0).sum().backward()
    assert torch.isfinite(x.grad).all()


def _rows(dtype):
    width = 64 if dtype == np.float64 else 32
    anything = st.floats(allow_nan=False, allow_infinity=False, width=width)
    return hnp.arrays(dtype, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=anything)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       scale=st.floats(0.1, 10.0), mode=st.sampled_from(["minmax", "temperature"]),
       grad=st.booleans())  # fmt: skip
def test_any_finite_row_matches_the_exact_reference(data, dtype, scale, mode, grad):
    m = data.draw(_rows(dtype))
    tol = _tol(dtype)
    x = torch.from_numpy(m).requires_grad_(True) if grad else m
    got = textnorm.probabilities(x, scale=scale, mode=mode)
    got = got.detach().double().numpy() if grad else got.astype(np.float64)
    for b, row in enumerate(m):
        np.testing.assert_allclose(got[b], row_probs(row, scale, mode), rtol=0, atol=tol)
        lg = textnorm.confidence(x[b : b + 1], scale=scale, mode=mode, log=True)
        lg = float(lg.detach()[0]) if grad else float(lg[0])
        want = _in(dtype, row_log_conf(row, 0, scale, mode))
        assert lg == want or abs(lg - want) <= tol + 4e-7 * abs(want), (lg, want)
