"""The torch side of the normaliser: routing, dtype/device round trips, parity of the torch
implementation with the Rust core, and autograd."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import textnorm  # noqa: E402
from textnorm import normalize  # noqa: E402

OPS = {
    "confidence": dict(target=1, scale=3.0),
    "probabilities": dict(scale=3.0),
    "ensemble": dict(scale=3.0, method="ur", lam=0.5),
}


def _layouts(rng, dtype):
    lens = rng.integers(1, 9, size=7)
    offsets = np.concatenate([[0], np.cumsum(lens)])
    values = rng.normal(size=offsets[-1]) * 4
    padded = np.zeros((7, lens.max()))
    for b in range(7):
        padded[b, : lens[b]] = values[offsets[b] : offsets[b + 1]]
    t = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
    return [
        (t(rng.normal(size=(5, 6))), {}),
        (t(values), {"offsets": torch.tensor(offsets)}),
        (t(padded), {"lengths": lens}),
    ]


def _both_paths(op, x, **kw):
    """(Rust core result, torch implementation result): normalize routes a tensor without grad
    to the core and one that requires grad to the torch implementation."""
    fn = getattr(textnorm, op)
    a = fn(x.detach(), **kw)
    b = fn(x.detach().clone().requires_grad_(True), **kw).detach()
    return a, b


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("mode", ["minmax", "temperature"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_implementation_matches_rust_core(op, mode, dtype):
    rng = np.random.default_rng(3)
    for x, layout in _layouts(rng, dtype):
        kw = dict(OPS[op], mode=mode, **layout)
        if op == "confidence" and layout:  # ragged rows may hold only the target
            kw["target"] = 0
        if op == "ensemble":
            x = torch.stack([x, x * 0.5 + 1.0, -x])
            kw.pop("target", None)
        a, b = _both_paths(op, x, **kw)
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        tol = 1e-12 if dtype == torch.float64 else 2e-6
        torch.testing.assert_close(a, b, atol=tol, rtol=0)


def test_cpu_tensor_without_grad_is_zero_copy_into_the_core(monkeypatch):
    x = torch.randn(4, 5)
    seen = {}
    real = textnorm.normalize._core.confidence

    def spy(values, **kw):
        seen["shares"] = np.shares_memory(values, x.numpy())
        return real(values, **kw)

    monkeypatch.setattr(textnorm.normalize._core, "confidence", spy)
    out = textnorm.confidence(x)
    assert seen["shares"] and isinstance(out, torch.Tensor) and out.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32_and_returned_as_is(dtype):
    x = torch.randn(8, 5).to(dtype)
    want = textnorm.confidence(x.float().numpy(), scale=2.0)
    for grad in (False, True):
        y = x.clone().requires_grad_(grad)
        out = textnorm.confidence(y, scale=2.0)
        assert out.dtype == dtype
        np.testing.assert_allclose(out.detach().float().numpy(), want, atol=1e-2)


def test_gradients_flow_through_the_torch_path():
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    textnorm.confidence(x, scale=3.0).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["minmax", "temperature"])
def test_gradcheck_dense_ragged_padded_and_ensemble(mode):
    gen = torch.Generator().manual_seed(0)
    dense = torch.randn(3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: textnorm.confidence(t, scale=2.0, mode=mode), (dense,))
    assert torch.autograd.gradcheck(lambda t: textnorm.confidence(t, mode=mode, log=True), (dense,))
    flat = torch.randn(9, dtype=torch.float64, generator=gen, requires_grad=True)
    off = [0, 2, 6, 9]
    assert torch.autograd.gradcheck(lambda t: textnorm.probabilities(t, offsets=off, mode=mode), (flat,))
    assert torch.autograd.gradcheck(
        lambda t: textnorm.confidence(t, lengths=[2, 4, 3], mode=mode), (dense,)
    )
    models = torch.randn(3, 2, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda t: textnorm.ensemble(t, mode=mode, method="ur", lam=0.5), (models,)
    )


def test_constant_rows_have_zero_gradient_not_nan():
    x = torch.ones(2, 4, dtype=torch.float64, requires_grad=True)
    out = textnorm.confidence(x, scale=5.0)
    out.sum().backward()
    assert torch.equal(out.detach(), torch.full((2,), 0.25, dtype=torch.float64))
    assert torch.isfinite(x.grad).all()


def test_gpu_routing_uses_size(monkeypatch):
    class FakeCuda:  # only the attributes _tensor_path reads
        requires_grad = False
        device = torch.device("meta")

        def __init__(self, n):
            self._n = n

        def numel(self):
            return self._n

    small, large = FakeCuda(64 * 17), FakeCuda(normalize.GPU_HOST_MAX_VALUES + 1)
    assert normalize._tensor_path(small) == "core"
    assert normalize._tensor_path(large) == "torch"
    assert normalize._tensor_path(torch.randn(10**6)) == "core"
