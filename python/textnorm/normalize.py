"""TextNorm confidence over reward matrices: the typed facade of the Rust core.

A reward model scores each image against its prompt (the target) and K contrastive prompts;
these functions turn each row of logits into the probability of the target (DESIGN.md §2).

Layouts (the same for every function):

- dense ``(B, 1+K)``;
- ragged CSR: 1-D ``values`` with ``offsets`` of length B+1 (row b is
  ``values[offsets[b]:offsets[b+1]]``);
- padded ``(B, Kmax+1)`` with ``lengths`` (B,): row b is its first ``lengths[b]`` entries.

numpy arrays and array-likes go to Rust without a copy when aligned, C-contiguous, native
float32/float64 (others are copied). torch tensors: CPU tensors without grad go to Rust through
numpy (zero-copy); tensors that require grad take a torch implementation of the same maths
(``_torch_norm``) so autograd works; GPU tensors without grad take a host round trip when small
and the on-device torch version when large. This module only chooses the path: every argument is
validated first, once, by ``_norm_args``, so both paths accept and refuse the same inputs.

dtypes, the same for numpy and torch: float32/float64 as they are; float16/bfloat16 computed in
float32 and returned in the input dtype; integers and bools computed and returned in float64;
complex (and object or string) logits are refused with a ``LayoutError``.

Finite logits always give the right confidence, even when their spread overflows the float type
(float64 ``[1e308, -1e308]``, float32 ``[3e38, -3e38, 0]``): the range is computed without
overflow in every path.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from textnorm import _core
from textnorm import _norm_args as _args

__all__ = ["confidence", "ensemble", "probabilities"]

# Above this many values a GPU tensor is normalised on the device. On one H200 a straightforward
# torch version cost 110-130 us for (64..1024, 17) (launch-bound) while a host round trip cost
# 67 us at (64, 17); from (65536, 17) the device won by 200x. Not re-measured here (no GPU).
GPU_HOST_MAX_VALUES = 1 << 15

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INF = float("inf")


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
        offsets: CSR row boundaries, B+1 strictly increasing integers from 0 to
            ``len(values)`` (every row holds at least its target).
        lengths: entries used per row of a padded matrix, each in ``[1, Kmax+1]``.
        scale: inverse temperature, a positive float or one per row ``(B,)``.
        mode: ``"minmax"`` (z = scale * (l - min l) / (max l - min l); a constant row gives
            exactly ``1 / (K+1)``) or ``"temperature"`` (z = scale * l).
        target: position of the target prompt in each row, an int or one per row ``(B,)``.
        log: ``True`` for the log-confidence, computed stably (a bool; ``"False"`` is refused).
        nan_policy: ``"raise"`` on NaN/Inf logits, or ``"propagate"`` them as NaN rows.

    Returns:
        ``(B,)`` confidences, of the input's family (numpy or torch), device and float dtype.

    Raises:
        LayoutError: bad shapes, offsets, lengths or target positions (``None``, a float, a
            bool, beyond int64), or logits that are not real numbers (complex, object, str).
        NonFiniteError: NaN or Inf logits under ``nan_policy="raise"``.
        ParameterError: a scale that is not a positive finite real number (bools, strings and
            ``10**400`` included), an unknown mode or nan_policy, a ``log`` that is not a bool.

    Example:
        >>> import numpy as np, textnorm
        >>> logits = np.array([[3.0, 1.0, 2.0], [0.5, 0.5, 0.5]])
        >>> textnorm.confidence(logits, scale=1.0).round(4)
        array([0.5065, 0.3333])
    """
    # Fast path for the common call (an aligned, C-contiguous, native float matrix; defaults
    # elsewhere): a small batch costs a few microseconds, so every Python-level step counts.
    # Anything else, errors included, goes through _norm_args below, so that every path words
    # its errors the same way (the core checks each target against its row's length).
    if (
        type(logits) is np.ndarray
        and offsets is None
        and lengths is None
        and type(scale) is float
        and 0.0 < scale < _INF
        and type(target) is int
        and _args.I64_MIN <= target <= _args.I64_MAX
        and type(log) is bool
        and type(mode) is str
        and mode in _args.MODES
        and type(nan_policy) is str
        and nan_policy == "raise"
        and logits.dtype in _FLOATS
        and logits.flags.c_contiguous
        and logits.flags.aligned
    ):
        return _core.confidence(logits, scale=scale, mode=mode, target=target, log=log)
    args = _args.common(offsets, lengths, scale, mode, nan_policy)
    target_i, targets = _args.check_target(target)
    extra = {"target": target_i, "targets": targets, "log": _args.check_log(log)}
    return _run("confidence", logits, args, scale, extra)


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
    args = _args.common(offsets, lengths, scale, mode, nan_policy)
    return _run("probabilities", logits, args, scale, {})


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
    args = _args.common(offsets, lengths, scale, mode, nan_policy)
    target_i, targets = _args.check_target(target)
    extra = {
        "target": target_i, "targets": targets, "method": _args.check_method(method),
        "lam": _args.check_lam(lam),
    }  # fmt: skip
    return _run("ensemble", logits, args, scale, extra)


def _run(op: str, logits: Any, args: _args.Common, scale: Any, extra: dict[str, Any]) -> Any:
    """Runs ``op`` with validated arguments on the path that fits ``logits``."""
    if _args.is_tensor(logits):
        return _run_tensor(op, logits, args, scale, extra)
    values, restore = _args.logits_array(logits)
    return restore(getattr(_core, op)(values, **args.core_kwargs(), **extra))


def _run_tensor(op: str, x: Any, args: _args.Common, scale: Any, extra: dict[str, Any]) -> Any:
    """A tensor through the torch implementation or through numpy to the Rust core."""
    work, out_dtype = _args.tensor_logits(x)
    if _tensor_path(x) == "torch":
        from textnorm import _torch_norm

        # A scale tensor goes as it is, so gradients can also flow into a learned scale.
        torch_scale = scale if _args.is_tensor(scale) else args.scales if args.scales is not None else args.scale
        kw = {k: v for k, v in extra.items() if k != "targets"}
        if extra.get("targets") is not None:  # one target per row
            kw["target"] = extra["targets"]
        out = getattr(_torch_norm, op)(
            work, offsets=args.offsets, lengths=args.lengths, scale=torch_scale, mode=args.mode,
            nan_raise=args.nan_raise, **kw,
        )  # fmt: skip
        return out.to(out_dtype)
    torch = sys.modules["torch"]
    values, _ = _args.logits_array(work.detach().cpu().numpy())
    out = getattr(_core, op)(values, **args.core_kwargs(), **extra)
    return torch.from_numpy(out).to(device=x.device, dtype=out_dtype)


def _tensor_path(x: Any) -> str:
    """"torch" for tensors that need grad and for large GPU tensors, else "core"."""
    if x.requires_grad and sys.modules["torch"].is_grad_enabled():
        return "torch"
    if x.device.type != "cpu" and x.numel() > GPU_HOST_MAX_VALUES:
        return "torch"
    return "core"
