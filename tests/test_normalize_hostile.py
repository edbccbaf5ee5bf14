"""Hostile arguments to the normaliser (issue 14 items 3, 6, 7, 13, 14): each raises a
TextnormError subclass whose message names the argument, never a TypeError, OverflowError or
ValueError from deeper down, and the numpy path and both torch paths (Rust core, torch
implementation with grad) accept and refuse exactly the same values with the same message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import textnorm
from textnorm import LayoutError, ParameterError, TextnormError, _core

torch = pytest.importorskip("torch")

M = np.array([[3.0, 1.0, 2.0], [0.5, 0.25, 1.0]])

# Options of each function, besides the logits.
OPTIONS = {
    "confidence": ["offsets", "lengths", "scale", "mode", "target", "log", "nan_policy"],
    "probabilities": ["offsets", "lengths", "scale", "mode", "nan_policy"],
    "ensemble": ["offsets", "lengths", "scale", "mode", "target", "method", "lam", "nan_policy"],
}
PATHS = ["numpy", "torch-core", "torch-grad"]


def _logits(fn: str, path: str):
    base = M[None] if fn == "ensemble" else M
    if path == "numpy":
        return base
    return torch.tensor(base, requires_grad=path == "torch-grad")


def _outcome(fn: str, path: str, **kw):
    """("ok", values) or (exception type, message)."""
    try:
        out = getattr(textnorm, fn)(_logits(fn, path), **kw)
    except TextnormError as e:
        return type(e), str(e)
    values = out.detach().numpy() if isinstance(out, torch.Tensor) else out
    return "ok", np.asarray(values, dtype=np.float64)


# (function, argument, value, exception): the cases the issue lists, and their neighbours.
TABLE = [
    ("confidence", "target", None, LayoutError),
    ("confidence", "target", 2**63, LayoutError),
    ("confidence", "target", -(2**63) - 1, LayoutError),
    ("confidence", "target", True, LayoutError),
    ("confidence", "target", 1.0, LayoutError),
    ("confidence", "target", "0", LayoutError),
    ("confidence", "target", np.array([0, 1], dtype=object), LayoutError),
    ("confidence", "target", [0, 2**64], LayoutError),
    ("ensemble", "target", None, LayoutError),
    ("confidence", "log", "False", ParameterError),
    ("confidence", "log", None, ParameterError),
    ("confidence", "log", 1, ParameterError),
    ("confidence", "scale", 10**400, ParameterError),
    ("confidence", "scale", True, ParameterError),
    ("confidence", "scale", "3", ParameterError),
    ("confidence", "scale", None, ParameterError),
    ("confidence", "scale", 1 + 2j, ParameterError),
    ("confidence", "scale", np.array([1.0, 2.0], dtype=object), ParameterError),
    ("confidence", "scale", [True, True], ParameterError),
    ("probabilities", "scale", 10**400, ParameterError),
    ("ensemble", "scale", "3", ParameterError),
    ("confidence", "mode", None, ParameterError),
    ("confidence", "mode", 0, ParameterError),
    ("probabilities", "mode", None, ParameterError),
    ("ensemble", "mode", None, ParameterError),
    ("confidence", "nan_policy", None, ParameterError),
    ("confidence", "nan_policy", np.array(["raise"]), ParameterError),
    ("ensemble", "method", None, ParameterError),
    ("ensemble", "lam", None, ParameterError),
    ("ensemble", "lam", True, ParameterError),
    ("ensemble", "lam", "0.5", ParameterError),
    ("ensemble", "lam", 10**400, ParameterError),
    ("confidence", "offsets", np.array([0, 3, 6], dtype=object), LayoutError),
    ("confidence", "offsets", "0,3,6", LayoutError),
    ("confidence", "offsets", [[0, 6]], LayoutError),
    ("confidence", "lengths", np.array([3, 3], dtype=object), LayoutError),
    ("confidence", "lengths", [True, True], LayoutError),
    ("confidence", "lengths", [3.0, 3.0], LayoutError),
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fn,arg,value,exc", TABLE, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(TABLE)])
def test_each_hostile_argument_raises_its_error_naming_the_argument(path, fn, arg, value, exc):
    with pytest.raises(exc) as info:
        getattr(textnorm, fn)(_logits(fn, path), **{arg: value})
    assert str(info.value).startswith(f"{arg}: "), str(info.value)


def _junk():
    """Values of every kind a careless caller might pass as an option."""
    arrays = hnp.arrays(
        st.sampled_from([np.int64, np.uint64, np.float64, np.bool_, np.complex128, np.dtype(">f8"), object]),
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
        elements=st.integers(0, 1),
    )
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.complex_numbers(max_magnitude=10),
        st.text(max_size=12), st.sampled_from(["minmax", "temperature", "raise", "propagate", "mean", "ur"]),
        st.binary(max_size=4), st.lists(st.integers(-3, 2**65), max_size=4),
        st.lists(st.floats(), max_size=3), st.lists(st.text(max_size=2), max_size=3),
        arrays, st.builds(object), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(fn=st.sampled_from(sorted(OPTIONS)), data=st.data(), value=_junk())
def test_fuzz_every_option_gives_a_result_or_a_textnorm_error_naming_it_on_every_path(fn, data, value):
    arg = data.draw(st.sampled_from(OPTIONS[fn]), label="arg")
    outcomes = {path: _outcome(fn, path, **{arg: value}) for path in PATHS}
    kind, detail = outcomes["numpy"]
    if kind == "ok":
        assert detail.shape == (2,) or fn == "probabilities"
    else:
        assert arg in detail.split(":")[0] or (arg in detail and detail.startswith("logits")), detail
    for path in PATHS[1:]:
        other_kind, other_detail = outcomes[path]
        assert other_kind == kind, (path, outcomes)
        if kind == "ok":
            np.testing.assert_allclose(other_detail, detail, rtol=0, atol=1e-12)
        else:
            assert other_detail == detail, (path, outcomes)


# logits of every dtype: one rule for numpy arrays and tensors.
@pytest.mark.parametrize("dtype", ["int64", "int8", "uint8", "bool"])
def test_integer_and_bool_logits_are_computed_and_returned_in_float64_on_both_paths(dtype):
    ints = np.array([[3, 1, 2], [0, 1, 1]]).astype(dtype)
    want = textnorm.confidence(ints.astype(np.float64), scale=2.0)
    got_np = textnorm.confidence(ints, scale=2.0)
    got_t = textnorm.confidence(torch.from_numpy(ints), scale=2.0)
    assert got_np.dtype == np.float64 and got_t.dtype == torch.float64
    np.testing.assert_array_equal(got_np, want)
    np.testing.assert_array_equal(got_t.numpy(), want)
    p = textnorm.probabilities(torch.from_numpy(ints))
    assert p.dtype == torch.float64 and torch.allclose(p.sum(dim=1), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("grad", [False, True])
def test_complex_logits_are_refused_on_both_paths(grad):
    c = np.array([[1 + 2j, 3.0]])
    for logits in (c, torch.tensor(c, requires_grad=grad)):
        for fn in ("confidence", "probabilities"):
            with pytest.raises(LayoutError, match=r"^logits: expected real numbers .*complex"):
                getattr(textnorm, fn)(logits)
    with pytest.raises(LayoutError, match=r"^logits: .*object"):
        textnorm.confidence(np.array([[1.0, 2.0]], dtype=object))


def test_float32_numpy_scale_is_accepted_everywhere():
    for grad in (False, True):
        x = torch.tensor(M, requires_grad=grad)
        a = textnorm.confidence(x, scale=np.float32(3.0)).detach()
        b = textnorm.confidence(x, scale=3.0).detach()
        assert torch.equal(a, b)
    np.testing.assert_array_equal(textnorm.confidence(M, scale=np.float32(3)), textnorm.confidence(M, scale=3.0))
    np.testing.assert_array_equal(
        textnorm.ensemble(M[None], scale=np.float32(3), lam=np.float32(0.5), method="ur"),
        textnorm.ensemble(M[None], scale=3.0, lam=0.5, method="ur"),
    )


def test_unaligned_arrays_are_copied_and_the_core_names_the_real_problem():
    buf = bytearray(M.nbytes + 1)
    un = np.frombuffer(buf, dtype=np.float64, offset=1, count=M.size).reshape(M.shape)
    un[...] = M
    assert un.flags.c_contiguous and not un.flags.aligned
    np.testing.assert_array_equal(textnorm.confidence(un), textnorm.confidence(M))
    np.testing.assert_array_equal(textnorm.probabilities(un), textnorm.probabilities(M))
    with pytest.raises(LayoutError, match="unaligned") as info:
        _core.confidence(un)
    assert "strided" not in str(info.value)
    with pytest.raises(LayoutError, match="strided"):
        _core.confidence(np.arange(12.0).reshape(2, 6)[:, ::2])


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">i8", ">f2"])
def test_big_endian_logits_and_layouts_are_converted_like_native_ones(dtype):
    native = np.dtype(dtype).newbyteorder("=")
    values = np.array([3.0, 1.0, 2.0, 0.5, 1.0], dtype=dtype)
    offsets = np.array([0, 3, 5], dtype=">i8")
    got = textnorm.confidence(values, offsets=offsets, scale=2.0)
    want = textnorm.confidence(values.astype(native), offsets=offsets.astype(np.int64), scale=2.0)
    np.testing.assert_array_equal(got, want)
    assert got.dtype.kind == "f"


@pytest.mark.parametrize("n", [-1, 2**63, 2**64, True, "3", 1.5, None])
def test_set_num_threads_refuses_bad_values_with_a_parameter_error(n):
    with pytest.raises(ParameterError, match=r"^n: expected an integer"):
        _core.set_num_threads(n)


def test_set_num_threads_accepts_zero_and_counts():
    try:
        _core.set_num_threads(1)
        assert _core.num_threads() == 1
    finally:
        _core.set_num_threads(0)


_CHILD = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    from textnorm import _core
values = np.random.default_rng(0).normal(size=(4096, 17))  # above the parallel threshold
out = _core.confidence(values, scale=3.0)
print(json.dumps({"threads": _core.num_threads(), "ok": bool(np.isfinite(out).all()),
                  "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}))
"""


def _child(value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TEXTNORM_NUM_THREADS"}
    if value is not None:
        env["TEXTNORM_NUM_THREADS"] = value
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_num_threads_from_the_environment_is_validated_capped_and_never_hangs():
    default = _child(None)
    assert default["ok"] and default["warnings"] == [] and default["threads"] >= 1
    cores = default["threads"]
    for bad in ("abc", "0", "-3"):
        got = _child(bad)
        assert got["ok"] and got["threads"] == cores, (bad, got)
        (warning,) = got["warnings"]
        assert warning.startswith("RuntimeWarning: TEXTNORM_NUM_THREADS: expected a positive integer")
        assert repr(bad).replace("'", '"') in warning
    cap = _core.MAX_THREADS_PER_CORE * cores
    huge = _child("100000")  # the first call once did not return in 100 s
    assert huge["ok"] and huge["threads"] == cap
    (warning,) = huge["warnings"]
    assert f"expected at most {cap}" in warning and "100000" in warning
    assert _child("1") == {"threads": 1, "ok": True, "warnings": []}
