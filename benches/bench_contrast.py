"""Rule-based contrastive sets: the Rust generator end to end (Python list in, Python
strings out, ContrastiveSets built) against the pure-Python reference of the same rules,
on 100,000 prompts from TIA2-like and synthetic-world templates, k = 8.

Run: ``python -m pytest benches/bench_contrast.py -q -s`` (prints prompts/s and the ratio).
Both sides run in this process on the same prompts; the reference runs once (it is slow),
the Rust side five times (median reported). Threads: TEXTNORM_NUM_THREADS (default: cores).
Wall-clock time is the headline; process CPU time is printed too, because on a shared
machine a multi-threaded run and a long single-threaded one get different shares of the cores
(the load average is printed with the result).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any

import sys
from pathlib import Path

import pytest

import textnorm
from textnorm import _core

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_contrast as ref  # noqa: E402  (the test oracle lives beside the tests)

N_PROMPTS = 100_000
K = 8
OBJECTS = ["airplane", "apple", "bird", "book", "cake", "carrot", "cat", "chair", "cup", "deer", "dog",
           "fork", "frog", "horse", "laptop", "microwave", "orange", "ship", "suitcase", "teddy bear",
           "toaster", "truck", "umbrella", "vase", "mouse"]  # fmt: skip
SHAPES = ["circle", "square", "triangle", "star", "cross", "hexagon", "diamond", "heart", "ring", "pentagon"]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan", "white", "black"]
SIZES = ["small", "big"]
RELATIONS = ["to the left of", "to the right of", "above", "below", "on top of", "next to", "behind"]
NUMBERS = ["a", "two", "three", "four", "five", "six"]


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _noun(word: str, n: str) -> str:
    if n in ("a", "an"):
        return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"
    return f"{n} {word}s" if word not in ("deer", "mouse") else f"{n} {'mice' if word == 'mouse' else word}"


def make_prompts(n: int, seed: int = 0) -> list[str]:
    """TIA2 counting/composition templates plus the synthetic world's grammar."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = i % 6
        if t == 0:
            out.append(f"a realistic photo of {_noun(rng.choice(OBJECTS), rng.choice(NUMBERS))}")
        elif t == 1:
            a, b = rng.sample(OBJECTS, 2)
            out.append(f"a realistic photo of {_noun(a, 'a')} and {_noun(b, 'a')}")
        elif t == 2:
            out.append(f"{_noun(rng.choice(COLORS) + ' ' + rng.choice(SHAPES), rng.choice(NUMBERS))}")
        elif t == 3:
            out.append(f"{_a(rng.choice(COLORS))} {rng.choice(SHAPES)} and {_a(rng.choice(COLORS))} {rng.choice(SHAPES)}")
        elif t == 4:
            out.append(f"{_a(rng.choice(COLORS))} {rng.choice(SHAPES)} {rng.choice(RELATIONS)} "
                       f"{_a(rng.choice(COLORS))} {rng.choice(SHAPES)}")
        else:
            out.append(f"a {rng.choice(SIZES)} {rng.choice(COLORS)} {rng.choice(SHAPES)} {rng.choice(RELATIONS)} "
                       f"a {rng.choice(SIZES)} {rng.choice(COLORS)} {rng.choice(SHAPES)}")
    return out


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    return make_prompts(N_PROMPTS)


def test_rust_vs_python_reference(prompts: list[str], benchmark: Any) -> None:
    # Reference once (it takes a while); parity checked on the full input.
    t0, c0 = time.perf_counter(), time.process_time()
    want = ref.contrast(prompts, k=K, seed=0)
    t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0

    def run() -> textnorm.ContrastiveSets:
        return textnorm.contrast(prompts, k=K, seed=0)

    times, cpus = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        sets = run()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    t_rust, c_rust = statistics.median(times), statistics.median(cpus)
    assert [list(zip(sets[i], sets.rules(i))) for i in range(len(sets))] == want
    benchmark.pedantic(run, rounds=3, iterations=1)  # pytest-benchmark's own table
    n = len(prompts)
    print(
        f"\ncontrast, {n:,} prompts, k={K}, threads={_core.num_threads()}, load average "
        f"{os.getloadavg()[0]:.1f}: Rust {n / t_rust:,.0f} prompts/s (median of 5: {t_rust * 1e3:.0f} ms wall, "
        f"{c_rust * 1e3:.0f} ms CPU), Python reference {n / t_ref:,.0f} prompts/s ({t_ref:.1f} s wall, "
        f"{c_ref:.1f} s CPU); ratio {t_ref / t_rust:.1f}x wall, {c_ref / c_rust:.1f}x CPU"
    )
    assert t_ref / t_rust >= 20, "target: the Rust generator at least 20x the Python reference"
