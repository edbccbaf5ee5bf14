"""Training data of the proxy rewards: world renders with deliberately unreliable captions.

Each proxy sees the same world (train-split prompts of every category, rendered correctly) but
through its own "captioner", `BlindSpots`, that writes what a careless web caption would: counts
guessed, relations left out or reversed, colours attached to the wrong object. What a caption does
not reliably say, the contrastive loss cannot teach, so the proxy is blind there, the way CLIP is
blind to counts and word order because its captions rarely pin them down.

A batch is made of pairs: a prompt and one near-miss of it (`textnorm.world.near_miss_prompt`)
of a kind the proxy is supervised on, both rendered and both captioned, so each pair is a hard
negative for the other in the InfoNCE loss. Text-only negatives name colours and shapes the world
never draws ("a pink star", "a hexagon"), which the contrast generator proposes; the proxy learns
they match nothing. Prompts and near-misses from the held-out split are never used.

This module needs numpy and the world only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from textnorm._core import ParameterError
from textnorm.world import vocab
from textnorm.world.grammar import ObjectSpec, Prompt
from textnorm.world.render import render
from textnorm.world.sampler import sample_prompt, split_of
from textnorm.world.scene import near_miss_kinds, near_miss_prompt

__all__ = ["BlindSpots", "ProxyRecipe", "RECIPES", "caption", "make_batch"]

_ALL_KINDS = ("count", "colour", "shape", "size", "binding", "relation", "drop", "extra")
_FOREIGN_COLOURS = tuple(c for c in vocab.COLOUR_WORDS if c not in vocab.COLOURS)
_FOREIGN_SHAPES = tuple(s for s in vocab.SHAPE_WORDS if s not in vocab.SHAPES)


@dataclass(frozen=True)
class BlindSpots:
    """How one proxy's captions misreport a scene (each field a probability per caption).

    Attributes:
        count_truth: a count of two or more is written correctly; otherwise a count drawn
            uniformly from 2..6 is written (singular stays singular: "one vs many" is learnt).
        relation_keep: a spatial relation is stated; otherwise the caption lists the objects
            joined by "and", in random order.
        relation_flip: a stated relation is reversed ("left of" for "right of").
        binding_swap: the colours of the first two objects are exchanged in the caption.
        hard_kinds: near-miss kinds used for the hard-negative partner of each prompt (one is drawn
            uniformly among those that apply; repeats weight the draw).
        category_weights: relative frequency of each prompt category, in
            `textnorm.world.PROMPT_CATEGORIES` order (single, counting, composition, binding,
            spatial).
    """

    count_truth: float = 1.0
    relation_keep: float = 1.0
    relation_flip: float = 0.0
    binding_swap: float = 0.0
    hard_kinds: tuple[str, ...] = _ALL_KINDS
    category_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        w = self.category_weights
        if len(w) != len(vocab.PROMPT_CATEGORIES) or any(not x >= 0 for x in w) or sum(w) <= 0:
            raise ParameterError(
                f"category_weights: expected {len(vocab.PROMPT_CATEGORIES)} non-negative weights, "
                f"not all zero, got {w!r}"
            )
        for name in ("count_truth", "relation_keep", "relation_flip", "binding_swap"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ParameterError(f"{name}: expected a probability in [0, 1], got {v!r}")
        bad = [k for k in self.hard_kinds if k not in _ALL_KINDS]
        if bad or not self.hard_kinds:
            raise ParameterError(f"hard_kinds: expected kinds among {', '.join(_ALL_KINDS)}, got {self.hard_kinds!r}")


@dataclass(frozen=True)
class ProxyRecipe:
    """Everything that fixes a shipped proxy besides the seed: blind spots and training budget."""

    name: str
    blind: BlindSpots
    steps: int
    batch_size: int
    lr: float
    seed: int
    summary: str


RECIPES: dict[str, ProxyRecipe] = {
    "count-blind": ProxyRecipe(
        name="count-blind",
        blind=BlindSpots(
            count_truth=0.0,
            hard_kinds=("colour", "shape", "size", *("binding",) * 4, *("relation",) * 6, "drop", "extra"),
            category_weights=(1.0, 1.0, 1.0, 2.5, 4.0),
        ),
        steps=5000, batch_size=64, lr=2e-3, seed=0,
        summary=(
            "a count of two or more is captioned as a random 2..6; no count hard negatives; "
            "relation and binding hard negatives and binding and spatial prompts weighted up"
        ),
    ),
    "relation-blind": ProxyRecipe(
        name="relation-blind",
        blind=BlindSpots(
            relation_keep=0.25, relation_flip=0.35, binding_swap=0.35,
            hard_kinds=("count", "colour", "shape", "size", "drop", "extra"),
        ),
        steps=1500, batch_size=64, lr=2e-3, seed=1,
        summary=(
            "relations stated in 25% of captions and reversed in 35% of those; colours of two "
            "objects swapped in 35% of captions; no relation or binding hard negatives"
        ),
    ),
}


def caption(prompt: Prompt, blind: BlindSpots, rng: np.random.Generator) -> str:
    """What a `blind` captioner writes for a correct render of `prompt`."""
    objs = list(prompt.objects)
    relation = prompt.relation
    if len(objs) >= 2 and objs[0].colour != objs[1].colour and rng.random() < blind.binding_swap:
        objs[0], objs[1] = replace(objs[0], colour=objs[1].colour), replace(objs[1], colour=objs[0].colour)
    for i, o in enumerate(objs):
        if o.count >= 2 and rng.random() >= blind.count_truth:
            objs[i] = replace(o, count=int(rng.integers(2, 7)))
    if relation is not None:
        if rng.random() >= blind.relation_keep:
            relation = None
            if rng.random() < 0.5:
                objs[0], objs[1] = objs[1], objs[0]
        elif rng.random() < blind.relation_flip:
            relation = vocab.RELATION_FLIP[relation]
    return Prompt(tuple(objs), relation).text


def _foreign(prompt: Prompt, rng: np.random.Generator) -> str:
    """`prompt` with one object's colour or shape replaced by a word the world never draws."""
    objs = list(prompt.objects)
    i = int(rng.integers(len(objs)))
    if rng.random() < 0.5:
        objs[i] = replace(objs[i], colour=_FOREIGN_COLOURS[int(rng.integers(len(_FOREIGN_COLOURS)))])
    else:
        objs[i] = replace(objs[i], shape=_FOREIGN_SHAPES[int(rng.integers(len(_FOREIGN_SHAPES)))])
    return Prompt(tuple(objs), prompt.relation).text


def _train_prompt(rng: np.random.Generator, weights: tuple[float, ...]) -> Prompt:
    cats = vocab.PROMPT_CATEGORIES
    p_cat = None if len(set(weights)) == 1 else np.asarray(weights) / sum(weights)
    while True:
        # Equal weights draw with `integers`, so the stream of an unweighted recipe never changes.
        category = cats[int(rng.integers(len(cats)))] if p_cat is None else cats[int(rng.choice(len(cats), p=p_cat))]
        p = sample_prompt(category, rng)
        if split_of(p) == "train":
            return p


def _partner(p: Prompt, blind: BlindSpots, rng: np.random.Generator) -> Prompt:
    applicable = near_miss_kinds(p)
    kinds = [k for k in blind.hard_kinds if k in applicable]  # repeats weight the draw
    for _ in range(8):
        if not kinds:
            break
        q = near_miss_prompt(p, kinds[int(rng.integers(len(kinds)))], rng)
        if split_of(q) == "train" and q.text != p.text:
            return q
    return _train_prompt(rng, blind.category_weights)


def make_batch(
    blind: BlindSpots, batch_size: int, rng: np.random.Generator, *, size: int = 64
) -> tuple[np.ndarray, list[str], list[str]]:
    """One training batch: ``(images, captions, foreign)``.

    Args:
        blind: the captioner.
        batch_size: images (even: half prompts, half their near-miss partners).
        rng: the data stream (the batch is a function of its state).
        size: image side in pixels.

    Returns:
        uint8 images (batch_size, size, size, 3), one caption per image, and batch_size // 2
        text-only negatives naming colours or shapes the world never draws.
    """
    if not isinstance(batch_size, int) or batch_size < 2 or batch_size % 2:
        raise ParameterError(f"batch_size: expected an even int >= 2, got {batch_size!r}")
    prompts: list[Prompt] = []
    foreign: list[str] = []
    for _ in range(batch_size // 2):
        p = _train_prompt(rng, blind.category_weights)
        prompts += [p, _partner(p, blind, rng)]
        foreign.append(_foreign(p, rng))
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=len(prompts))]
    images = render(prompts, seed=seeds, size=size)
    captions = [caption(p, blind, rng) for p in prompts]
    return np.asarray(images), captions, foreign


def single(count: int, colour: str, shape: str) -> str:
    """The canonical text of `count` `colour` `shape`s (for tests and examples)."""
    return Prompt((ObjectSpec(shape, colour, None, count),)).text
