"""The torch implementation of the normaliser's maths, used when gradients must flow and for
large GPU batches. ``textnorm.normalize`` validates every argument (``_norm_args``) and chooses
the path; this module only computes, on float32/float64 tensors.

Every layout is padded to ``(B, C)`` with a mask, so it is one set of kernels for dense, padded
and CSR input. Parity with the Rust core is tested. Offsets, lengths and per-row targets arrive
as validated int64 numpy arrays; ``scale`` as a float, a float64 array or a tensor (kept as it
is, so a learned scale gets gradients too).
"""

from __future__ import annotations

from typing import Any

import torch

from textnorm._core import LayoutError, NonFiniteError


def _padded(
    logits: torch.Tensor, offsets: Any, lengths: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(B, C) values, (B, C) validity mask, and the CSR gather index (None if not CSR)."""
    dev = logits.device
    if offsets is not None:
        off = torch.as_tensor(offsets, device=dev)
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
    lens = torch.as_tensor(lengths, device=dev)
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


def _row_scale(x: Any, n: int, like: torch.Tensor) -> torch.Tensor:
    """(n, 1) scales in the dtype of ``like``, clamped to its largest finite value (a float64
    scale of 1e300 must not become inf in float32: 0 * inf is NaN)."""
    t = torch.as_tensor(x, dtype=torch.float64, device=like.device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise LayoutError(f"scale: expected a float or one value per row ({n}), got {t.numel()} values")
    return t.clamp(max=torch.finfo(like.dtype).max).to(like.dtype)[:, None]


def _log_probs(
    logits: torch.Tensor, offsets: Any, lengths: Any, scale: Any, mode: str, nan_raise: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Log-probabilities (B, C) (padding -inf), the mask, the CSR index, and bad-row flags."""
    x, mask, index = _padded(logits, offsets, lengths)
    s = _row_scale(scale, x.shape[0], x)
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
    lo = torch.where(mask, safe, torch.full_like(safe, torch.inf)).amin(dim=1, keepdim=True)
    # A finite row whose spread overflows the dtype ([1e308, -1e308]) is halved first (exact
    # for normal numbers), so neither l - max l nor max l - min l overflows; other rows keep
    # h = 1, so subnormal spreads stay exact.
    h = torch.where(torch.isfinite(hi - lo), 1.0, 0.5).to(x.dtype).detach()
    d = safe * h - hi * h  # in [-(max - min) h, 0]
    if mode == "minmax":
        width = hi * h - lo * h
        ok = width > 0
        # d / width lies in [-1, 0]: no overflow, whatever the spread or the scale.
        ratio = torch.where(ok, d / torch.where(ok, width, torch.ones_like(width)), 0.0)
        z = ratio * s
    else:
        z = (d * s) / h
    z = torch.where(mask, z, torch.full_like(z, -torch.inf))
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
    return out


def probabilities(
    logits: torch.Tensor, *, offsets: Any = None, lengths: Any = None, scale: Any = 1.0,
    mode: str = "minmax", nan_raise: bool = True,
) -> torch.Tensor:  # fmt: skip
    logp, mask, index, bad = _log_probs(logits, offsets, lengths, scale, mode, nan_raise)
    p = torch.where(mask, logp.exp(), torch.zeros_like(logp))
    p = torch.where(bad[:, None], torch.full_like(p, torch.nan), p)
    if index is not None:
        p = p[mask]  # rows in order, entries in order: the CSR layout again
    return p


def ensemble(
    logits: torch.Tensor, *, offsets: Any = None, lengths: Any = None, scale: Any = 1.0,
    mode: str = "minmax", target: Any = 0, method: str = "mean", lam: float = 0.0,
    nan_raise: bool = True,
) -> torch.Tensor:  # fmt: skip
    if logits.ndim == 0 or logits.shape[0] == 0:
        raise LayoutError("logits: expected at least one model on the leading axis, got 0 models")
    per_model = torch.stack([
        confidence(m, offsets=offsets, lengths=lengths, scale=scale, mode=mode, target=target,
                   nan_raise=nan_raise)
        for m in logits
    ])  # fmt: skip
    mean = per_model.mean(dim=0)
    var = ((per_model - mean) ** 2).mean(dim=0)
    if method == "ur":
        mean = mean - lam * var
    elif method == "ur_std":
        mean = mean - lam * var.sqrt()
    return mean


def _targets(target: Any, mask: torch.Tensor) -> torch.Tensor:
    n_rows = mask.shape[0]
    lens = mask.sum(dim=1)
    if isinstance(target, int):
        t = torch.full((n_rows,), target, dtype=torch.int64, device=mask.device)
    else:
        t = torch.as_tensor(target, device=mask.device)
        if t.numel() != n_rows:
            raise LayoutError(f"target: expected an int or one index per row ({n_rows}), got {t.numel()} indices")
    bad = (t < 0) | (t >= lens)
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        raise LayoutError(f"target: expected an index in [0, {int(lens[b])}) for row {b}, got {int(t[b])}")
    return t
