"""TextNorm confidence over reward matrices: the typed facade of the Rust core.

A reward model scores each image against its prompt (the target) and K contrastive prompts;
these functions turn each row of logits into the probability of the target (DESIGN.md §2).

Layouts (the same for every function):

- dense ``(B, 1+K)``;
- ragged CSR: 1-D ``values`` with ``offsets`` of length B+1 (row b is
  ``values[offsets[b]:offsets[b+1]]``);
- padded ``(B, Kmax+1)`` with ``lengths`` (B,): row b is its first ``lengths[b]`` entries.

numpy arrays and array-likes go to Rust without a copy when C-contiguous float32/float64.
torch tensors: CPU tensors without grad go to Rust through numpy (zero-copy); tensors that
require grad take a torch implementation of the same maths so autograd works; GPU tensors without
grad take a host round trip when small and the on-device torch version when large.
float16/bfloat16 are computed in float32 and returned in the input dtype.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from textnorm import _core
from textnorm._core import LayoutError, ParameterError

__all__ = ["confidence", "ensemble", "probabilities"]

# Above this many values a GPU tensor is normalised on the device. On one H200 a straightforward
# torch version cost 110-130 us for (64..1024, 17) (launch-bound) while a host round trip cost
# 67 us at (64, 17); from (65536, 17) the device won by 200x. Not re-measured here (no GPU).
GPU_HOST_MAX_VALUES = 1 << 15

_NAN_POLICIES = ("raise", "propagate")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def confidence(
    logits: Any,
    /,
    *,
    offsets: Any = None,
    lengths: Any = None,
    scale: Any = 1.0,
    mode: str = "minmax",
    target: Any = 0,
    log: bool = False,
    nan_policy: str = "raise",
) -> Any:
    """Confidence of the target prompt in every row: ``softmax(z)[target]``.

    Args:
        logits: reward logits, dense ``(B, 1+K)``, 1-D values with ``offsets``, or padded
            ``(B, Kmax+1)`` with ``lengths``. numpy, any array-like, or a torch tensor.
        offsets: CSR row boundaries, B+1 non-decreasing integers from 0 to ``len(values)``;
            every row must hold at least its target.
        lengths: entries used per row of a padded matrix, each in ``[1, Kmax+1]``.
        scale: inverse temperature, a positive float or one per row ``(B,)``.
        mode: ``"minmax"`` (z = scale * (l - min l) / (max l - min l); a constant row gives
            exactly ``1 / (K+1)``) or ``"temperature"`` (z = scale * l).
        target: position of the target prompt in each row, an int or one per row ``(B,)``.
        log: return the log-confidence, computed stably.
        nan_policy: ``"raise"`` on NaN/Inf logits, or ``"propagate"`` them as NaN rows.

    Returns:
        ``(B,)`` confidences, of the input's family (numpy or torch), device and float dtype.

    Raises:
        LayoutError: bad shapes, offsets, lengths or target positions.
        NonFiniteError: NaN or Inf logits under ``nan_policy="raise"``.
        ParameterError: a non-positive scale, an unknown mode or nan_policy.

    Example:
        >>> import numpy as np, textnorm
        >>> logits = np.array([[3.0, 1.0, 2.0], [0.5, 0.5, 0.5]])
        >>> textnorm.confidence(logits, scale=1.0).round(4)
        array([0.5065, 0.3333])
    """
    # Fast path for the common call (a contiguous float matrix, defaults elsewhere): a small
    # batch costs a few microseconds, so every Python-level step counts.
    if (
        type(logits) is np.ndarray
        and offsets is None
        and lengths is None
        and type(scale) is float
        and type(target) is int
        and nan_policy == "raise"
        and logits.dtype in _FLOATS
        and logits.flags.c_contiguous
    ):
        return _core.confidence(logits, scale=scale, mode=mode, target=target, log=bool(log))
    nan_raise = _nan_raise(nan_policy)
    if _is_tensor(logits):
        from textnorm import _torch_norm

        return _torch_norm.dispatch(
            "confidence", logits, offsets=offsets, lengths=lengths, scale=scale, mode=mode,
            target=target, log=log, nan_raise=nan_raise,
        )  # fmt: skip
    values, restore = _values(logits)
    scale_f, scales = _scale(scale)
    target_i, targets = _target(target)
    out = _core.confidence(
        values, offsets=_index(offsets, "offsets"), lengths=_index(lengths, "lengths"),
        scale=scale_f, scales=scales, mode=mode, target=target_i, targets=targets,
        log=bool(log), nan_raise=nan_raise,
    )  # fmt: skip
    return restore(out)


def probabilities(
    logits: Any,
    /,
    *,
    offsets: Any = None,
    lengths: Any = None,
    scale: Any = 1.0,
    mode: str = "minmax",
    nan_policy: str = "raise",
) -> Any:
    """The whole softmax of every row, shaped like ``logits`` (padding entries are 0).

    Arguments as in :func:`confidence`. Every row sums to 1.

    Example:
        >>> import numpy as np, textnorm
        >>> textnorm.probabilities(np.array([[2.0, 0.0]]), scale=1.0).round(4)
        array([[0.7311, 0.2689]])
    """
    nan_raise = _nan_raise(nan_policy)
    if _is_tensor(logits):
        from textnorm import _torch_norm

        return _torch_norm.dispatch(
            "probabilities", logits, offsets=offsets, lengths=lengths, scale=scale, mode=mode,
            nan_raise=nan_raise,
        )  # fmt: skip
    values, restore = _values(logits)
    scale_f, scales = _scale(scale)
    out = _core.probabilities(
        values, offsets=_index(offsets, "offsets"), lengths=_index(lengths, "lengths"),
        scale=scale_f, scales=scales, mode=mode, nan_raise=nan_raise,
    )  # fmt: skip
    return restore(out)


def ensemble(
    logits: Any,
    /,
    *,
    offsets: Any = None,
    lengths: Any = None,
    scale: Any = 1.0,
    mode: str = "minmax",
    method: str = "mean",
    lam: float = 0.0,
    target: Any = 0,
    nan_policy: str = "raise",
) -> Any:
    """Ensemble of per-model confidences over a leading model axis M.

    ``logits`` is ``(M, B, 1+K)``, ``(M, N)`` with ``offsets``, or ``(M, B, Kmax+1)`` with
    ``lengths``; every model shares the layout. ``method="mean"`` averages the M confidences;
    ``"ur"`` subtracts ``lam`` times their population variance (the paper's
    uncertainty-regularised ensemble); ``"ur_std"`` subtracts ``lam`` times the standard
    deviation. Other arguments as in :func:`confidence`.

    Example:
        >>> import numpy as np, textnorm
        >>> two_models = np.array([[[2.0, 0.0]], [[0.0, 2.0]]])
        >>> textnorm.ensemble(two_models, scale=1.0, method="ur", lam=1.0).round(4)
        array([0.4466])
    """
    nan_raise = _nan_raise(nan_policy)
    if _is_tensor(logits):
        from textnorm import _torch_norm

        return _torch_norm.dispatch(
            "ensemble", logits, offsets=offsets, lengths=lengths, scale=scale, mode=mode,
            target=target, method=method, lam=lam, nan_raise=nan_raise,
        )  # fmt: skip
    values, restore = _values(logits)
    scale_f, scales = _scale(scale)
    target_i, targets = _target(target)
    out = _core.ensemble(
        values, offsets=_index(offsets, "offsets"), lengths=_index(lengths, "lengths"),
        scale=scale_f, scales=scales, mode=mode, target=target_i, targets=targets,
        method=method, lam=_lam(lam), nan_raise=nan_raise,
    )  # fmt: skip
    return restore(out)


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _values(logits: Any) -> tuple[np.ndarray, Any]:
    """A C-contiguous float32/float64 array, and how to give results the input's dtype."""
    if type(logits) is np.ndarray and logits.dtype in (np.float32, np.float64):
        if logits.flags.c_contiguous:
            return logits, _identity
        return np.ascontiguousarray(logits), _identity
    try:
        arr = np.asarray(logits)
    except (TypeError, ValueError) as e:
        raise LayoutError(f"logits: expected a numeric array, got {type(logits).__name__} ({e})")
    if arr.dtype == np.float16:
        return np.ascontiguousarray(arr, dtype=np.float32), _to_float16
    if arr.dtype.kind in "biuf":
        return np.ascontiguousarray(arr, dtype=np.float64 if arr.dtype.kind != "f" else arr.dtype), _identity
    raise LayoutError(f"logits: expected real numbers, got dtype {arr.dtype}")


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _to_float16(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float16)


def _index(x: Any, name: str) -> np.ndarray | None:
    """offsets/lengths/targets as contiguous int64 (torch tensors and lists accepted)."""
    if x is None:
        return None
    if _is_tensor(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise LayoutError(f"{name}: expected a 1-D integer array, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise LayoutError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise LayoutError(f"{name}: expected values below 2**63, got {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _scale(scale: Any) -> tuple[float, np.ndarray | None]:
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        return float(scale), None
    if _is_tensor(scale):
        scale = scale.detach().cpu().numpy()
    arr = np.asarray(scale)
    if arr.dtype.kind not in "iuf":
        raise ParameterError(f"scale: expected a positive float or an array of them, got {scale!r}")
    if arr.ndim == 0:
        return float(arr), None
    if arr.ndim != 1:
        raise LayoutError(f"scale: expected a float or a 1-D array (B,), got shape {arr.shape}")
    return 1.0, np.ascontiguousarray(arr, dtype=np.float64)


def _target(target: Any) -> tuple[int, np.ndarray | None]:
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return int(target), None
    arr = _index(target, "target")
    return 0, arr


def _lam(lam: Any) -> float:
    try:
        return float(lam)
    except (TypeError, ValueError):
        raise ParameterError(f"lam: expected a finite number >= 0, got {lam!r}") from None


def _nan_raise(nan_policy: str) -> bool:
    if nan_policy not in _NAN_POLICIES:
        raise ParameterError(f'nan_policy: expected "raise" or "propagate", got {nan_policy!r}')
    return nan_policy == "raise"
