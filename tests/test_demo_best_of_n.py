"""Best-of-n expectations (`textnorm.demo.best_of_n`) against brute force over all subsets."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textnorm._core import ParameterError
from textnorm.demo.best_of_n import best_of_n_kl, expected_best_of_n, pick_weights


def brute_force(select: np.ndarray, values: np.ndarray, n: int) -> float:
    """Mean over every n-subset of the value at its best pick; ties split evenly."""
    total = []
    for subset in itertools.combinations(range(len(select)), n):
        top = max(select[i] for i in subset)
        tied = [values[i] for i in subset if select[i] == top]
        total.append(sum(tied) / len(tied))
    return float(np.mean(total))


@given(st.lists(st.integers(0, 4), min_size=1, max_size=8), st.data())
@settings(max_examples=60, deadline=None)
def test_expected_best_of_n_equals_brute_force(select, data):
    sel = np.asarray(select, dtype=np.float64)
    vals = np.asarray(data.draw(st.lists(st.floats(-5, 5), min_size=len(sel), max_size=len(sel))))
    ns = list(range(1, len(sel) + 1))
    got = expected_best_of_n(sel[None], vals[None], ns)[0, 0]
    want = [brute_force(sel, vals, n) for n in ns]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("total", [1, 5, 256])
def test_pick_weights_are_a_distribution(total):
    for n in sorted({1, min(2, total), total}):
        w = pick_weights(total, n)
        assert w.sum() == pytest.approx(1.0)
        assert (w >= 0).all()
    # n = total: the largest always wins; n = 1: uniform
    assert pick_weights(total, total)[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(pick_weights(total, 1), 1 / total)


def test_kl_of_best_of_n():
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(256) == pytest.approx(math.log(256) - 255 / 256)
    with pytest.raises(ParameterError, match="n"):
        best_of_n_kl(0)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ParameterError, match="values"):
        expected_best_of_n(np.zeros((2, 3)), np.zeros((2, 4)), [1])
    with pytest.raises(ParameterError, match="select"):
        expected_best_of_n(np.full((1, 3), np.nan), np.zeros((1, 3)), [1])
    with pytest.raises(ParameterError, match="n"):
        expected_best_of_n(np.zeros((1, 3)), np.zeros((1, 3)), [4])
