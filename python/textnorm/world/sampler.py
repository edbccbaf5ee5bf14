"""Seeded prompt samplers per category, with a fixed held-out split.

Categories (the last four like TIA2's, `CATEGORIES`; all five in `PROMPT_CATEGORIES`):

- ``single``: one object, sometimes with a size ("a big red star", "a cyan ring").
- ``counting``: one to four objects of one kind ("three red circles").
- ``composition``: two objects of different shapes ("a blue square and a yellow star").
- ``binding``: two objects of different shapes and different colours, sometimes also different
  sizes, so that exchanging attributes makes a near-miss ("a red circle and a blue square").
- ``spatial``: two distinguishable objects in a relation ("a green triangle to the left of a
  purple circle").

The split is a property of the prompt's canonical text, not of the sampler's seed: a prompt is
held out ("test") when a keyed BLAKE2b hash of its text falls in the lowest `HELD_OUT` share, so
every tool and every seed agrees on it.
"""

from __future__ import annotations

import hashlib

import numpy as np

from textnorm._core import ParameterError
from textnorm.world import vocab
from textnorm.world.grammar import ObjectSpec, Prompt

HELD_OUT = 0.2
SPLITS = ("train", "test", "all")


def split_of(prompt: Prompt) -> str:
    """"test" for held-out prompts, else "train" (by a hash of the canonical text)."""
    digest = hashlib.blake2b(prompt.text.encode(), digest_size=8, key=b"textnorm-world").digest()
    return "test" if int.from_bytes(digest, "big") / 2**64 < HELD_OUT else "train"


def _pick(rng: np.random.Generator, options: tuple[str, ...], exclude: str | None = None) -> str:
    choices = [o for o in options if o != exclude]
    return choices[int(rng.integers(len(choices)))]


def sample_prompt(category: str, rng: np.random.Generator) -> Prompt:
    """One random prompt of `category` (any split)."""
    shape, colour = _pick(rng, vocab.SHAPES), _pick(rng, vocab.COLOURS)
    if category == "single":
        u = rng.random()
        size = None if u < 0.5 else ("small" if u < 0.75 else "big")
        return Prompt((ObjectSpec(shape, colour, size, 1),))
    if category == "counting":
        return Prompt((ObjectSpec(shape, colour, None, int(rng.integers(1, 5))),))
    shape2 = _pick(rng, vocab.SHAPES, exclude=shape)
    if category == "composition":
        return Prompt((ObjectSpec(shape, colour), ObjectSpec(shape2, _pick(rng, vocab.COLOURS))))
    if category == "binding":
        colour2 = _pick(rng, vocab.COLOURS, exclude=colour)
        sizes: tuple[str | None, str | None] = (None, None)
        if rng.random() < 0.3:
            sizes = ("big", "small") if rng.random() < 0.5 else ("small", "big")
        return Prompt((ObjectSpec(shape, colour, sizes[0]), ObjectSpec(shape2, colour2, sizes[1])))
    if category == "spatial":
        # Different shapes, or the same shape in different colours: the two must be told apart.
        if rng.random() < 0.25:
            shape2, colour2 = shape, _pick(rng, vocab.COLOURS, exclude=colour)
        else:
            colour2 = _pick(rng, vocab.COLOURS)
        return Prompt((ObjectSpec(shape, colour), ObjectSpec(shape2, colour2)), _pick(rng, vocab.RELATIONS))
    raise ParameterError(f"category: expected one of {', '.join(vocab.PROMPT_CATEGORIES)}, got {category!r}")


def sample_prompts(
    category: str, n: int, *, seed: int = 0, split: str = "train", unique: bool = False
) -> list[str]:
    """`n` prompts of `category` from `split`, reproducible from `seed`.

    Args:
        category: one of `textnorm.world.PROMPT_CATEGORIES` ("single" or a benchmark category).
        n: how many.
        seed: sampler seed.
        split: "train", "test" (held out) or "all".
        unique: no prompt twice (raises when the split has fewer than `n` prompts).

    >>> sample_prompts("counting", 2, seed=1)
    ['three purple crosses', 'four green stars']
    """
    if category not in vocab.PROMPT_CATEGORIES:
        raise ParameterError(f"category: expected one of {', '.join(vocab.PROMPT_CATEGORIES)}, got {category!r}")
    if split not in SPLITS:
        raise ParameterError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(n, int) or n < 0:
        raise ParameterError(f"n: expected a non-negative int, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"seed: expected a non-negative int, got {seed!r}")
    rng = np.random.default_rng([seed, vocab.PROMPT_CATEGORIES.index(category)])
    out: list[str] = []
    seen: set[str] = set()
    misses = 0
    while len(out) < n:
        p = sample_prompt(category, rng)
        text = p.text
        if (split != "all" and split_of(p) != split) or (unique and text in seen):
            misses += 1
            if misses > 200 * (n + 10):
                raise ParameterError(
                    f"n: the {split!r} split of {category!r} has fewer than {n} distinct prompts "
                    f"(found {len(seen)}; held-out splits: single 33, counting 42; split='all' has 5x more)"
                )
            continue
        seen.add(text)
        out.append(text)
    return out
