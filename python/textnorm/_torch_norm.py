"""The normaliser for torch tensors: routing between the Rust core and a torch implementation
of the same maths (used when gradients must flow, and for large GPU batches).

The torch version pads every layout to ``(B, C)`` with a mask, so it is one set of kernels
for dense, padded and CSR input. Parity with the Rust core is tested.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from textnorm import normalize as _np
from textnorm._core import LayoutError, NonFiniteError, ParameterError

_MODES = ("minmax", "temperature")
_METHODS = ("mean", "ur", "ur_std")


def dispatch(op: str, logits: torch.Tensor, *, force: str | None = None, **kw: Any) -> torch.Tensor:
    """Runs ``op`` on a tensor by the fastest path that keeps its semantics.

    ``force`` ("torch" or "core") pins the path; tests use it to check parity.
    """
    path = force or _choose_path(logits)
    if path == "torch":
        return _TORCH_OPS[op](logits, **kw)
    # Through numpy to the Rust core: zero-copy for contiguous CPU float32/float64 tensors.
    x = logits.detach()
    compute = x if x.dtype in (torch.float32, torch.float64) else x.to(torch.float32)
    host = compute.cpu().numpy()
    kw = {k: (_host(v) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    nan_policy = "raise" if kw.pop("nan_raise") else "propagate"
    out = getattr(_np, op)(host, nan_policy=nan_policy, **kw)
    return torch.from_numpy(out).to(device=logits.device, dtype=logits.dtype)


def _host(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _choose_path(x: torch.Tensor) -> str:
    if x.requires_grad and torch.is_grad_enabled():
        return "torch"
    if x.device.type != "cpu" and x.numel() > _np.GPU_HOST_MAX_VALUES:
        return "torch"
    return "core"


def _padded(
    logits: torch.Tensor, offsets: Any, lengths: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(B, C) values, (B, C) validity mask, and the CSR gather index (None if not CSR)."""
    dev = logits.device
    if offsets is not None and lengths is not None:
        raise LayoutError("offsets: expected offsets or lengths, not both")
    if offsets is not None:
        off = torch.as_tensor(_np._index(offsets, "offsets"), device=dev)
        _check_offsets(off, logits)
        lens = off[1:] - off[:-1]
        width = int(lens.max()) if lens.numel() else 1
        cols = torch.arange(width, device=dev)
        mask = cols[None, :] < lens[:, None]
        index = (off[:-1, None] + cols[None, :]).clamp(max=max(logits.shape[0] - 1, 0))
        return logits[index], mask, index
    if logits.ndim != 2:
        raise LayoutError(
            f"logits: expected a (B, 1+K) matrix per model (or 1-D values with offsets), "
            f"got shape {tuple(logits.shape)}"
        )
    if logits.shape[1] == 0:
        raise LayoutError("logits: expected at least one column (the target), got 0 columns")
    cols = torch.arange(logits.shape[1], device=dev)
    if lengths is None:
        return logits, torch.ones(logits.shape, dtype=torch.bool, device=dev), None
    lens = torch.as_tensor(_np._index(lengths, "lengths"), device=dev)
    if lens.numel() != logits.shape[0]:
        raise LayoutError(
            f"lengths: expected one length per row ({logits.shape[0]}), got {lens.numel()} lengths"
        )
    bad = (lens < 1) | (lens > logits.shape[1])
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        raise LayoutError(
            f"lengths: expected every length in [1, {logits.shape[1]}], "
            f"got lengths[{b}] = {int(lens[b])}"
        )
    return logits, cols[None, :] < lens[:, None], None


def _check_offsets(off: torch.Tensor, logits: torch.Tensor) -> None:
    if logits.ndim != 1:
        raise LayoutError(
            f"logits: expected 1-D values per model with offsets, got shape {tuple(logits.shape)}"
        )
    if off.numel() == 0:
        raise LayoutError("offsets: expected B+1 offsets starting at 0, got an empty array")
    if int(off[0]) != 0:
        raise LayoutError(f"offsets: expected offsets[0] == 0, got offsets[0] = {int(off[0])}")
    steps = off[1:] - off[:-1]
    if bool((steps <= 0).any()):
        b = int((steps <= 0).nonzero()[0, 0])
        what = "an empty segment" if int(steps[b]) == 0 else "a decrease"
        raise LayoutError(
            "offsets: expected strictly increasing offsets (every row holds its target), "
            f"got {what}: offsets[{b}] = {int(off[b])}, offsets[{b + 1}] = {int(off[b + 1])}"
        )
    if int(off[-1]) != logits.shape[0]:
        raise LayoutError(
            f"offsets: expected offsets[-1] == number of values ({logits.shape[0]}), "
            f"got offsets[-1] = {int(off[-1])}"
        )


def _row_param(x: Any, n: int, dev: torch.device, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.to(device=dev, dtype=torch.float64)
    else:
        t = torch.as_tensor(np.asarray(x, dtype=np.float64), device=dev)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise LayoutError(f"{name}: expected a float or one value per row ({n}), got shape {tuple(t.shape)}")
    bad = ~(torch.isfinite(t) & (t > 0))
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        raise ParameterError(f"{name}: expected positive finite values, got {name}[{b}] = {float(t[b])}")
    return t


def _log_probs(
    logits: torch.Tensor, offsets: Any, lengths: Any, scale: Any, mode: str, nan_raise: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-probabilities (B, C) (padding -inf), the mask, the CSR index, and bad-row flags."""
    if mode not in _MODES:
        raise ParameterError(f'mode: expected "minmax" or "temperature", got {mode!r}')
    work = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
    x, mask, index = _padded(work, offsets, lengths)
    n_rows = x.shape[0]
    s = _row_param(scale, n_rows, x.device, "scale").to(x.dtype)
    finite = torch.isfinite(x) | ~mask
    bad = ~finite.all(dim=1)
    if nan_raise and bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        pos = int((~finite[b]).nonzero()[0, 0])
        raise NonFiniteError(
            f'logits: expected finite values (nan_policy="raise"), got {float(x[b, pos].detach())} '
            f"in row {b} at position {pos}"
        )
    safe = torch.where(finite & mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    hi = torch.where(mask, safe, torch.full_like(safe, -torch.inf)).amax(dim=1, keepdim=True)
    if mode == "minmax":
        lo = torch.where(mask, safe, torch.full_like(safe, torch.inf)).amin(dim=1, keepdim=True)
        width = hi - lo
        ok = width > 0
        c = torch.where(ok, s[:, None] / torch.where(ok, width, torch.ones_like(width)), 0.0)
    else:
        c = s[:, None]
    z = torch.where(mask, (safe - hi) * c, torch.full_like(safe, -torch.inf))
    return torch.log_softmax(z, dim=1), mask, index, bad


def confidence(
    logits: torch.Tensor, *, offsets: Any = None, lengths: Any = None, scale: Any = 1.0,
    mode: str = "minmax", target: Any = 0, log: bool = False, nan_raise: bool = True,
) -> torch.Tensor:  # fmt: skip
    logp, mask, _, bad = _log_probs(logits, offsets, lengths, scale, mode, nan_raise)
    t = _targets(target, mask)
    out = logp.gather(1, t[:, None])[:, 0]
    out = out if log else out.exp()
    out = torch.where(bad, torch.full_like(out, torch.nan), out)
    return out.to(logits.dtype)


def probabilities(
    logits: torch.Tensor, *, offsets: Any = None, lengths: Any = None, scale: Any = 1.0,
    mode: str = "minmax", nan_raise: bool = True,
) -> torch.Tensor:  # fmt: skip
    logp, mask, index, bad = _log_probs(logits, offsets, lengths, scale, mode, nan_raise)
    p = torch.where(mask, logp.exp(), torch.zeros_like(logp))
    p = torch.where(bad[:, None], torch.full_like(p, torch.nan), p)
    if index is not None:
        p = p[mask]  # rows in order, entries in order: the CSR layout again
    return p.to(logits.dtype)


def ensemble(
    logits: torch.Tensor, *, offsets: Any = None, lengths: Any = None, scale: Any = 1.0,
    mode: str = "minmax", target: Any = 0, method: str = "mean", lam: float = 0.0,
    nan_raise: bool = True,
) -> torch.Tensor:  # fmt: skip
    if method not in _METHODS:
        raise ParameterError(f'method: expected "mean", "ur" or "ur_std", got {method!r}')
    lam = _np._lam(lam)
    if not (np.isfinite(lam) and lam >= 0):
        raise ParameterError(f"lam: expected a finite number >= 0, got {lam}")
    if logits.ndim == 0 or logits.shape[0] == 0:
        raise LayoutError("logits: expected at least one model on the leading axis, got 0 models")
    per_model = torch.stack([
        confidence(m, offsets=offsets, lengths=lengths, scale=scale, mode=mode, target=target,
                   nan_raise=nan_raise)
        for m in logits
    ]).to(torch.float64 if logits.dtype == torch.float64 else torch.float32)  # fmt: skip
    mean = per_model.mean(dim=0)
    var = ((per_model - mean) ** 2).mean(dim=0)
    if method == "ur":
        mean = mean - lam * var
    elif method == "ur_std":
        mean = mean - lam * var.sqrt()
    return mean.to(logits.dtype)


def _targets(target: Any, mask: torch.Tensor) -> torch.Tensor:
    n_rows = mask.shape[0]
    lens = mask.sum(dim=1)
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        t = torch.full((n_rows,), int(target), dtype=torch.int64, device=mask.device)
    else:
        t = torch.as_tensor(_np._index(target, "target"), device=mask.device)
        if t.numel() != n_rows:
            raise LayoutError(f"target: expected an int or one index per row ({n_rows}), got {t.numel()} indices")
    bad = (t < 0) | (t >= lens)
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        raise LayoutError(f"target: expected an index in [0, {int(lens[b])}) for row {b}, got {int(t[b])}")
    return t


_TORCH_OPS = {"confidence": confidence, "probabilities": probabilities, "ensemble": ensemble}
