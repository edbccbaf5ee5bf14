"""textnorm.confidence / probabilities / ensemble on numpy input against the float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference_norm import ensemble_ref, row_log_conf, row_probs, rows_of

import textnorm

MODES = ["minmax", "temperature"]
finite = st.floats(-50.0, 50.0, allow_nan=False, width=32)
scales = st.floats(0.1, 10.0)


@st.composite
def ragged(draw, max_rows=12, max_len=20):
    lens = draw(st.lists(st.integers(1, max_len), min_size=1, max_size=max_rows))
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    values = draw(hnp.arrays(np.float64, int(offsets[-1]), elements=finite))
    return values, offsets


@given(m=hnp.arrays(np.float32, st.tuples(st.integers(1, 16), st.integers(1, 24)), elements=finite),
       scale=scales, mode=st.sampled_from(MODES), log=st.booleans())
def test_dense_float32_matches_reference(m, scale, mode, log):
    got = textnorm.confidence(m, scale=scale, mode=mode, log=log)
    assert got.dtype == np.float32 and got.shape == (m.shape[0],)
    for b, row in enumerate(m):
        want = row_log_conf(row, 0, scale, mode)
        if log:
            # 2e-6 absolute, plus a few float32 ulps once |log p| is large
            assert abs(got[b] - want) <= 2e-6 + 4e-7 * abs(want)
        else:
            assert abs(got[b] - np.exp(want)) <= 1e-6


@given(data=ragged(), scale=scales, mode=st.sampled_from(MODES))
def test_ragged_float64_matches_reference_and_sums_to_one(data, scale, mode):
    values, offsets = data
    p = textnorm.probabilities(values, offsets=offsets, scale=scale, mode=mode)
    assert p.shape == values.shape
    for row, prow in zip(rows_of(values, offsets), rows_of(p, offsets)):
        np.testing.assert_allclose(prow, row_probs(row, scale, mode), rtol=0, atol=1e-12)
        assert abs(prow.sum() - 1.0) < 1e-12


@given(data=ragged(), scale=scales, mode=st.sampled_from(MODES), seed=st.integers(0, 2**32 - 1))
def test_ragged_equals_padded_equals_loop(data, scale, mode, seed):
    values, offsets = data
    lens = np.diff(offsets)
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, lens)
    padded = np.full((len(lens), lens.max()), 1e30)  # padding must never be read
    for b, row in enumerate(rows_of(values, offsets)):
        padded[b, : row.size] = row
    a = textnorm.confidence(values, offsets=offsets, scale=scale, mode=mode, target=targets)
    b = textnorm.confidence(padded, lengths=lens, scale=scale, mode=mode, target=targets)
    loop = [textnorm.confidence(r[None], scale=scale, mode=mode, target=int(t))[0]
            for r, t in zip(rows_of(values, offsets), targets)]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, loop)
    pp = textnorm.probabilities(padded, lengths=lens, scale=scale, mode=mode)
    for b_, n in enumerate(lens):
        assert np.all(pp[b_, n:] == 0.0)
        np.testing.assert_allclose(pp[b_, :n].sum(), 1.0, atol=1e-12)


@given(m=hnp.arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(2, 10)), elements=finite),
       shift=st.floats(-100, 100), factor=st.floats(0.01, 100), scale=scales)
def test_minmax_is_invariant_to_shift_and_positive_scaling(m, shift, factor, scale):
    # Only where the affine map keeps every row's spread (a shift of 1 erases a spread of 1e-30).
    spread = m.max(axis=1) - m.min(axis=1)
    assume(np.all((spread == 0) | (spread > 1e-6 * (np.abs(m).max() + abs(shift / factor)))))
    a = textnorm.confidence(m, scale=scale)
    b = textnorm.confidence(m * factor + shift, scale=scale)
    np.testing.assert_allclose(a, b, atol=1e-9)


@given(conf_logits=hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 9)),
                              elements=finite),
       method=st.sampled_from(["mean", "ur", "ur_std"]), lam=st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0]),
       scale=scales, mode=st.sampled_from(MODES))
def test_ensemble_matches_its_formula(conf_logits, method, lam, scale, mode):
    per_model = np.array([[np.exp(row_log_conf(r, 0, scale, mode)) for r in model] for model in conf_logits])
    got = textnorm.ensemble(conf_logits, scale=scale, mode=mode, method=method, lam=lam)
    np.testing.assert_allclose(got, ensemble_ref(per_model, method, lam), atol=1e-12)


def test_ensemble_ragged_and_padded_agree_with_dense():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(3, 4, 5))
    offsets = np.arange(0, 21, 5)
    a = textnorm.ensemble(dense, scale=3.0, method="ur", lam=0.5)
    b = textnorm.ensemble(dense.reshape(3, 20), offsets=offsets, scale=3.0, method="ur", lam=0.5)
    c = textnorm.ensemble(dense, lengths=[5, 5, 5, 5], scale=3.0, method="ur", lam=0.5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_constant_row_is_exactly_uniform_and_per_row_scale():
    m = np.array([[2.0, 2.0, 2.0, 2.0], [1.0, 0.0, 0.0, 0.0]])
    got = textnorm.confidence(m, scale=np.array([5.0, 2.0]))
    assert got[0] == 0.25
    assert got[1] == pytest.approx(np.exp(2) / (np.exp(2) + 3))


def test_large_inputs_use_threads_and_match_the_loop():
    rng = np.random.default_rng(1)
    lens = rng.integers(3, 33, size=5000)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    values = rng.normal(size=offsets[-1]).astype(np.float32)
    got = textnorm.confidence(values, offsets=offsets, scale=3.0)
    rows = rows_of(values, offsets)
    picked = range(0, len(rows), 7)  # every thread's chunk, at a seventh of the exact reference's cost
    want = [np.exp(row_log_conf(rows[b], 0, 3.0, "minmax")) for b in picked]
    np.testing.assert_allclose(got[picked], want, atol=1e-6)


def test_dtypes_and_array_likes():
    half = np.array([[1.0, 0.0]], dtype=np.float16)
    assert textnorm.confidence(half).dtype == np.float16
    assert textnorm.confidence([[1, 0]]).dtype == np.float64
    strided = np.arange(20.0).reshape(4, 5)[:, ::2]
    np.testing.assert_array_equal(textnorm.confidence(strided), textnorm.confidence(strided.copy()))
    assert textnorm.confidence(np.zeros((0, 3))).shape == (0,)


def test_log_confidence_never_rounds_to_minus_infinity():
    m = np.array([[-1.0e4, 0.0, 1.0]], dtype=np.float32)
    lg = textnorm.confidence(m, mode="temperature", log=True)
    assert np.isfinite(lg[0]) and lg[0] == pytest.approx(row_log_conf(m[0], 0, 1.0, "temperature"), abs=2e-3)


def test_nan_policy_propagate_marks_only_bad_rows():
    m = np.array([[1.0, np.nan, 0.0], [1.0, 0.0, 0.0], [np.inf, 0.0, 1.0]])
    got = textnorm.confidence(m, nan_policy="propagate")
    assert np.isnan(got[0]) and np.isnan(got[2]) and np.isfinite(got[1])
    p = textnorm.probabilities(m, nan_policy="propagate")
    assert np.isnan(p[0]).all() and np.isfinite(p[1]).all()
