"""Argument checks shared by the contrastive-set generators (``textnorm.contrast`` and
``textnorm.llm``): one rule for what a prompt list and a bounded integer are, and errors that
name the argument. A leaf module: it imports nothing of textnorm but the error types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from textnorm._core import LayoutError, ParameterError


def str_list(x: Any, name: str) -> list[str]:
    """``x`` as a list of str.

    Raises:
        LayoutError: ``x`` is a str (one prompt, not a list of them), is not iterable, or
            holds a non-str (the message gives its index).
    """
    if isinstance(x, str) or not isinstance(x, Iterable):
        raise LayoutError(f"{name}: expected a sequence of str, got {type(x).__name__}")
    out = list(x)
    for i, s in enumerate(out):
        if not isinstance(s, str):
            raise LayoutError(f"{name}: expected str items, got {type(s).__name__} at index {i}")
    return out


def int_arg(x: Any, name: str, lo: int, hi: int) -> int:
    """``x`` as an int in ``[lo, hi]`` (numpy integers accepted, bool refused).

    Raises:
        ParameterError: anything else.
    """
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not lo <= int(x) <= hi:
        raise ParameterError(f"{name}: expected an integer in [{lo}, {hi}], got {x!r}")
    return int(x)
