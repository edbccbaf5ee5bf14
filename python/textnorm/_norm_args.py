"""Argument checks of the normaliser: the one validation layer in front of both paths.

``normalize`` validates every argument here, then sends the call to the Rust core (numpy
arrays, tensors without grad) or to ``_torch_norm`` (tensors that need grad, large GPU
batches), so both paths accept and refuse exactly the same inputs with the same messages.
Every error is a ``TextnormError`` subclass whose message starts with the argument's name.

A leaf module: it imports numpy and ``textnorm._core`` only. It never imports torch (a
tensor is recognised through ``sys.modules``, so it can only be one if torch is loaded).

Rules:

- logits: real numbers. float32/float64 are used as they are; float16, bfloat16 and other
  floats are computed in float32 (float64 for floats wider than 64 bits) and returned in their
  own dtype; integers and bools are computed and returned in float64, exactly. Complex, object,
  string and other dtypes are refused. Any byte order and alignment is accepted (copied to a
  native, aligned, C-contiguous array when needed). numpy arrays and torch tensors alike.
- scale: a real number (Python, numpy or a 0-d array/tensor) or one per row, positive and
  finite. bools, strings and None are refused.
- target, offsets, lengths: integers (int64 range); bools, floats, None and object arrays are
  refused.
- mode, method, nan_policy: one of their documented strings; log: a bool.
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any, Callable, NamedTuple

import numpy as np

from textnorm._core import LayoutError, ParameterError

MODES = ("minmax", "temperature")
METHODS = ("mean", "ur", "ur_std")
NAN_POLICIES = ("raise", "propagate")
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

Restore = Callable[[np.ndarray], np.ndarray]
_CA: list[Any] = ["C", "A"]  # np.require: C-contiguous and aligned
_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Common(NamedTuple):
    """Validated arguments every function takes, in the form the Rust core takes them."""

    offsets: np.ndarray | None
    lengths: np.ndarray | None
    scale: float
    scales: np.ndarray | None
    mode: str
    nan_raise: bool

    def core_kwargs(self) -> dict[str, Any]:
        return {
            "offsets": self.offsets, "lengths": self.lengths, "scale": self.scale,
            "scales": self.scales, "mode": self.mode, "nan_raise": self.nan_raise,
        }  # fmt: skip


def common(offsets: Any, lengths: Any, scale: Any, mode: Any, nan_policy: Any) -> Common:
    """Validates the arguments shared by every function."""
    nan_raise = check_nan_policy(nan_policy)
    mode = check_mode(mode)
    off = index_array(offsets, "offsets")
    lens = index_array(lengths, "lengths")
    if off is not None and lens is not None:
        raise LayoutError("offsets: expected offsets or lengths, not both")
    scale_f, scales = check_scale(scale)
    return Common(off, lens, scale_f, scales, mode, nan_raise)


def is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _show(x: Any, limit: int = 60) -> str:
    """A short repr for messages (a 400-digit integer must not fill the screen)."""
    text = repr(x)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]} ({len(text)} chars)"


def _host(x: Any, name: str, err: type[Exception]) -> np.ndarray:
    """An array of ``x`` (a tensor is detached and copied to the host)."""
    if is_tensor(x):
        x = x.detach().cpu()
        if x.dtype.is_floating_point and x.element_size() < 4:  # bfloat16 has no numpy twin
            x = x.float()
        return x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError, OverflowError) as e:
        raise err(f"{name}: expected an array of numbers, got {type(x).__name__} ({e})") from None


def check_mode(mode: Any) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ParameterError(f'mode: expected "minmax" or "temperature", got {_show(mode)}')
    return mode


def check_method(method: Any) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ParameterError(f'method: expected "mean", "ur" or "ur_std", got {_show(method)}')
    return method


def check_nan_policy(nan_policy: Any) -> bool:
    """True for ``"raise"``, False for ``"propagate"``."""
    if not isinstance(nan_policy, str) or nan_policy not in NAN_POLICIES:
        raise ParameterError(f'nan_policy: expected "raise" or "propagate", got {_show(nan_policy)}')
    return nan_policy == "raise"


def check_log(log: Any) -> bool:
    if not isinstance(log, (bool, np.bool_)):
        raise ParameterError(f"log: expected True or False, got {_show(log)}")
    return bool(log)


def _is_real_scalar(x: Any) -> bool:
    kind = type(x)
    if kind is float or kind is int:  # the common cases first: the ABC check costs a microsecond
        return True
    if isinstance(x, (bool, np.bool_)):
        return False
    return isinstance(x, (np.floating, np.integer, numbers.Real))


def scalar_scale(scale: Any, name: str = "scale") -> float:
    """A positive finite real number (Python or numpy scalar) as a float."""
    if not _is_real_scalar(scale):
        raise ParameterError(f"{name}: expected a positive finite number, got {_show(scale)}")
    try:
        value = float(scale)
    except OverflowError:
        raise ParameterError(f"{name}: expected a positive finite number, got {_show(scale)}") from None
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{name}: expected a positive finite number, got {_show(scale)}")
    return value


def check_scale(scale: Any) -> tuple[float, np.ndarray | None]:
    """``(scale, None)`` for one scale, ``(1.0, per_row)`` for one per row (float64)."""
    if _is_real_scalar(scale):
        return scalar_scale(scale), None
    if isinstance(scale, (str, bytes)) or scale is None:
        raise ParameterError(f"scale: expected a positive finite number or one per row, got {_show(scale)}")
    arr = _host(scale, "scale", ParameterError)
    if arr.dtype.kind not in "iuf":
        raise ParameterError(
            f"scale: expected a positive finite number or one per row, got {_show(scale)} (dtype {arr.dtype})"
        )
    if arr.ndim == 0:
        return scalar_scale(arr.item()), None
    if arr.ndim != 1:
        raise LayoutError(f"scale: expected a float or a 1-D array (B,), got shape {arr.shape}")
    values = _require(arr, np.dtype(np.float64))
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        b = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"scale: expected positive finite values, got scale[{b}] = {arr[b]}")
    return 1.0, values


def check_lam(lam: Any) -> float:
    if not _is_real_scalar(lam) and (is_tensor(lam) or isinstance(lam, np.ndarray)) and lam.ndim == 0:
        lam = lam.item()  # a 0-d array or tensor
    try:
        value = float(lam) if _is_real_scalar(lam) else float("nan")
    except OverflowError:
        value = float("inf")
    if not (math.isfinite(value) and value >= 0):
        raise ParameterError(f"lam: expected a finite number >= 0, got {_show(lam)}")
    return value


def check_target(target: Any) -> tuple[int, np.ndarray | None]:
    """``(target, None)`` for one position, ``(0, per_row)`` for one per row (int64)."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, (bool, np.bool_)):
        t = int(target)
        if not I64_MIN <= t <= I64_MAX:
            raise LayoutError(f"target: expected an index below 2**63, got {_show(t)}")
        return t, None
    if target is None or isinstance(target, (str, bytes, bool, np.bool_, float)):
        raise LayoutError(f"target: expected an int or one index per row, got {_show(target)}")
    arr = index_array(target, "target")
    assert arr is not None
    if arr.ndim == 0:  # a 0-d array or tensor
        return int(arr), None
    return 0, arr


def index_array(x: Any, name: str) -> np.ndarray | None:
    """offsets/lengths/targets as aligned, C-contiguous int64 (tensors and lists accepted)."""
    if x is None:
        return None
    if isinstance(x, (str, bytes)):
        raise LayoutError(f"{name}: expected a 1-D integer array, got {_show(x)}")
    arr = _host(x, name, LayoutError)
    if arr.size and arr.dtype.kind not in "iu":
        raise LayoutError(f"{name}: expected integers, got dtype {arr.dtype}")
    if arr.ndim != 1 and not (name == "target" and arr.ndim == 0):
        raise LayoutError(f"{name}: expected a 1-D integer array, got shape {arr.shape}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > I64_MAX:
        raise LayoutError(f"{name}: expected values below 2**63, got {arr.max()}")
    return _require(arr, np.dtype(np.int64))


def _require(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` as an aligned, C-contiguous array of ``dtype`` (a copy only when needed)."""
    if arr.dtype == dtype:
        flags = arr.flags
        if flags.c_contiguous and flags.aligned:
            return arr
    return np.require(arr, dtype=dtype, requirements=_CA)


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _restore_to(dtype: np.dtype) -> Restore:
    return lambda x: x.astype(dtype)


def logits_array(logits: Any) -> tuple[np.ndarray, Restore]:
    """Aligned, C-contiguous, native float32/float64 values, and how to give results the
    input's dtype (see the module docs for the dtype rule)."""
    if type(logits) is np.ndarray and logits.dtype in _NATIVE_FLOATS:
        flags = logits.flags
        if flags.c_contiguous and flags.aligned:
            return logits, _identity
    arr = _host(logits, "logits", LayoutError)
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    restore: Restore
    if kind == "f" and size in (4, 8):
        work, restore = arr.dtype.newbyteorder("="), _identity
    elif kind == "f":
        work, restore = np.dtype(np.float32 if size < 4 else np.float64), _restore_to(arr.dtype)
    elif kind in "biu":
        work, restore = np.dtype(np.float64), _identity
    else:
        raise LayoutError(f"logits: expected real numbers (float, int or bool), got dtype {arr.dtype}")
    return _require(arr, work), restore


def tensor_logits(x: Any) -> tuple[Any, Any]:
    """A float32/float64 tensor to compute on (same device, grad kept), and the result's dtype.

    The same rule as :func:`logits_array`: float16/bfloat16 compute in float32 and come back
    in their dtype; integers and bools compute and come back in float64; complex is refused.
    """
    torch = sys.modules["torch"]
    dt = x.dtype
    if dt in (torch.float32, torch.float64):
        return x, dt
    if dt.is_complex:
        raise LayoutError(f"logits: expected real numbers (float, int or bool), got dtype {dt}")
    if dt.is_floating_point:
        return x.float(), dt
    return x.double(), torch.float64
