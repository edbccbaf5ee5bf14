"""textnorm._heap: glibc's mmap threshold held for a block, and refused arguments named (its
effect on memory is measured on the demo, benches/RESULTS.md)."""

from __future__ import annotations

import platform

import pytest

from textnorm._heap import mmap_threshold

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_threshold_takes_effect_on_glibc():
    with mmap_threshold(1 << 20) as applied:
        assert applied


@pytest.mark.parametrize("nbytes", [0, -1, 1.5, True, 64 << 20])
def test_bad_threshold_is_named(nbytes):
    with pytest.raises(ValueError, match="nbytes"):
        with mmap_threshold(nbytes):
            pass
