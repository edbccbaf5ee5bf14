"""Every bad input of the normaliser raises a TextnormError subclass that names the argument,
on the Rust path (numpy) and on the torch path alike."""

from __future__ import annotations

import numpy as np
import pytest

import textnorm
from textnorm import LayoutError, NonFiniteError, ParameterError, TextnormError

V = np.arange(6, dtype=np.float64)
M = np.arange(6, dtype=np.float64).reshape(2, 3)

CASES = [
    # (function, args, kwargs, exception, words the message must contain)
    ("confidence", (V,), {"offsets": [1, 3, 6]}, LayoutError, ["offsets", "offsets[0] == 0", "1"]),
    ("confidence", (V,), {"offsets": [0, 4, 3, 6]}, LayoutError, ["offsets", "decrease"]),
    ("confidence", (V,), {"offsets": [0, 3, 5]}, LayoutError, ["offsets[-1]", "6"]),
    ("confidence", (V,), {"offsets": [0, 3, 3, 6]}, LayoutError, ["offsets", "empty segment"]),
    ("confidence", (V,), {"offsets": []}, LayoutError, ["offsets", "empty"]),
    ("confidence", (V,), {"offsets": [0.0, 6.0]}, LayoutError, ["offsets", "integers"]),
    ("confidence", (V,), {}, LayoutError, ["logits", "(B, 1+K)"]),
    ("confidence", (M,), {"offsets": [0, 6]}, LayoutError, ["logits", "1-D"]),
    ("confidence", (np.zeros((2, 0)),), {}, LayoutError, ["logits", "column"]),
    ("confidence", (M,), {"target": 3}, LayoutError, ["target", "[0, 3)", "3"]),
    ("confidence", (M,), {"target": -1}, LayoutError, ["target", "-1"]),
    ("confidence", (M,), {"target": [0, 1, 2]}, LayoutError, ["target", "one index per row"]),
    ("confidence", (M,), {"lengths": [0, 3]}, LayoutError, ["lengths", "[1, 3]", "lengths[0] = 0"]),
    ("confidence", (M,), {"lengths": [3, 4]}, LayoutError, ["lengths", "lengths[1] = 4"]),
    ("confidence", (M,), {"lengths": [3]}, LayoutError, ["lengths", "one length per row"]),
    ("confidence", (V,), {"offsets": [0, 6], "lengths": [6]}, LayoutError, ["not both"]),
    ("confidence", (M,), {"scale": 0.0}, ParameterError, ["scale", "positive", "0"]),
    ("confidence", (M,), {"scale": -2.0}, ParameterError, ["scale", "-2"]),
    ("confidence", (M,), {"scale": float("inf")}, ParameterError, ["scale", "inf"]),
    ("confidence", (M,), {"scale": float("nan")}, ParameterError, ["scale", "NaN"]),
    ("confidence", (M,), {"scale": [1.0, 0.0]}, ParameterError, ["scale[1]"]),
    ("confidence", (M,), {"scale": [1.0, 2.0, 3.0]}, LayoutError, ["scale", "one value per row"]),
    ("confidence", (M,), {"mode": "softmax"}, ParameterError, ["mode", "minmax", "softmax"]),
    ("confidence", (M,), {"nan_policy": "omit"}, ParameterError, ["nan_policy", "omit"]),
    ("confidence", (np.array([[0.0, np.nan]]),), {}, NonFiniteError, ["row 0", "position 1", "NaN"]),
    ("confidence", (np.array([[0.0, 1.0], [np.inf, 0.0]]),), {}, NonFiniteError, ["row 1", "inf"]),
    ("confidence", (np.array([["a", "b"]]),), {}, LayoutError, ["logits", "dtype"]),
    ("probabilities", (V,), {"offsets": [0, 3, 3, 6]}, LayoutError, ["empty segment"]),
    ("probabilities", (M,), {"mode": "x"}, ParameterError, ["mode"]),
    ("ensemble", (M[None],), {"method": "median"}, ParameterError, ["method", "median"]),
    ("ensemble", (M[None],), {"lam": -0.5}, ParameterError, ["lam", "-0.5"]),
    ("ensemble", (M[None],), {"lam": "big"}, ParameterError, ["lam", "big"]),
    ("ensemble", (np.zeros((0, 2, 3)),), {}, LayoutError, ["model"]),
    ("ensemble", (M,), {}, LayoutError, ["logits"]),
]


def _as_torch(args, kwargs):
    torch = pytest.importorskip("torch")
    x = torch.tensor(args[0], dtype=torch.float64, requires_grad=True)  # forces the torch path
    return (x, *args[1:]), kwargs


@pytest.mark.parametrize("path", ["numpy", "torch"])
@pytest.mark.parametrize("fn,args,kwargs,exc,words", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_raises_a_clear_error(path, fn, args, kwargs, exc, words):
    if path == "torch":
        if args[0].dtype.kind not in "f":
            pytest.skip("torch tensors cannot hold strings")
        args, kwargs = _as_torch(args, kwargs)
    with pytest.raises(exc) as info:
        getattr(textnorm, fn)(*args, **kwargs)
    assert isinstance(info.value, TextnormError) and isinstance(info.value, ValueError)
    msg = str(info.value)
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in {msg!r}"
