"""Keep glibc's heap from holding on to freed tensor memory in a long scoring loop.

glibc serves an allocation from ``mmap`` (returned to the system when freed) only above a
threshold that it raises, up to 32 MiB, each time a large mmapped block is freed; after that,
torch's large temporaries come from the heap, which fragments, and freed memory stays with the
process. Scoring `textnorm demo`'s 30,720 base samples with five proxies peaked at 9.9 GB that
way; with the threshold held at 4 MiB while scoring, under 1 GB (benches/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Callable, Iterator

__all__ = ["mmap_threshold"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
_GLIBC_MAX = 32 << 20  # the most glibc's dynamic threshold grows to on 64-bit


def _mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn  # type: ignore[no-any-return]


@contextlib.contextmanager
def mmap_threshold(nbytes: int = 4 << 20) -> Iterator[bool]:
    """Within the block, serve allocations of at least `nbytes` from mmap (glibc only; a
    process-wide setting). Setting a threshold ends glibc's dynamic adjustment of it and of the
    trim threshold (twice the mmap threshold), so on exit both are fixed where the dynamic ones end
    up in a long torch run: 32 MiB and 64 MiB (left at its 128 KiB default, the trim threshold
    would hand the heap's top back to the system after nearly every free and fault it in again).
    Yields whether the setting took effect.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 < nbytes <= _GLIBC_MAX:
        raise ValueError(f"nbytes: expected an int in [1, {_GLIBC_MAX}], got {nbytes!r}")
    mallopt = _mallopt()
    applied = bool(mallopt and mallopt(_M_MMAP_THRESHOLD, nbytes) and mallopt(_M_TRIM_THRESHOLD, 2 * nbytes))
    try:
        yield applied
    finally:
        if mallopt and applied:
            mallopt(_M_MMAP_THRESHOLD, _GLIBC_MAX)
            mallopt(_M_TRIM_THRESHOLD, 2 * _GLIBC_MAX)
