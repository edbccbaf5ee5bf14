"""Scenes: the objects of one image, sampled from a prompt, and deliberate near-misses.

A scene is a tuple of `WorldObject`s (geometry: see `textnorm.world.geometry`). `sample_scene`
draws one that satisfies its prompt: radii from the size ranges below, colours jittered a little,
positions uniform inside the image with at least `GAP` between circumcircles (objects never
touch), and for spatial prompts centres at least `RELATION_RENDER` apart along the relation's axis
(twice the judge's margin, so the truth is never borderline). A near-miss is the scene of a
perturbed prompt (`near_miss_prompt`) that the original prompt's constraints reject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from textnorm._core import ParameterError
from textnorm.world import vocab
from textnorm.world.grammar import RELATION_MARGIN, ObjectSpec, Prompt, check

# Radius ranges (normalised units, circumradius) for each size word; a radius below
# SIZE_THRESHOLD reads as "small". At 64 px: small 5.4-6.4 px, big 8.6-9.9 px.
SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.085, 0.10), "big": (0.135, 0.155)}
SIZE_THRESHOLD = 0.1175
GAP = 0.035  # free space between two objects' circumcircles
BORDER = 0.02  # free space between an object's circumcircle and the image edge
RELATION_RENDER = 2 * RELATION_MARGIN
COLOUR_JITTER = 10  # each channel of an object's colour moves by at most this much
NEAR_MISS_KINDS: tuple[str, ...] = ("count", "colour", "shape", "size", "binding", "relation", "drop", "extra")


@dataclass(frozen=True, eq=False)
class WorldObject:
    """One drawn object: what it is and where (normalised units, see geometry)."""

    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Scene:
    """Everything in one image, background excluded."""

    objects: tuple[WorldObject, ...]

    def holds(self, prompt: Prompt) -> bool:
        """Whether every constraint of `prompt` holds for this scene (the ground truth)."""
        return all(h for h, _ in check(self.objects, prompt))


def size_of(radius: float) -> str:
    """The size word a radius reads as."""
    return "small" if radius < SIZE_THRESHOLD else "big"


def _check_drawable(prompt: Prompt) -> None:
    for o in prompt.objects:
        if o.shape not in vocab.SHAPES:
            raise ParameterError(f"prompt: shape {o.shape!r} is not drawable; drawable: {', '.join(vocab.SHAPES)}")
        if o.colour is not None and o.colour not in vocab.PALETTE:
            raise ParameterError(f"prompt: colour {o.colour!r} is not drawable; drawable: {', '.join(vocab.COLOURS)}")


def _relation_ok(a: np.ndarray, b: np.ndarray, relation: str) -> np.ndarray:
    """Vectorised: subject centres `a` (n,2) against one object centre `b` (2,)."""
    m = RELATION_RENDER
    if relation == "to the left of":
        return b[0] - a[:, 0] >= m
    if relation == "to the right of":
        return a[:, 0] - b[0] >= m
    if relation == "above":
        return b[1] - a[:, 1] >= m
    return a[:, 1] - b[1] >= m


def sample_scene(prompt: Prompt | str, rng: np.random.Generator, *, jitter: bool = True) -> Scene:
    """Draw a scene that satisfies `prompt`.

    Args:
        prompt: a parsed `Prompt` or its text.
        rng: the random generator (the scene is a function of the prompt and its state).
        jitter: jitter colours by up to `COLOUR_JITTER` per channel.

    Raises:
        ParameterError: the prompt names a shape or colour the world does not draw, or asks for
            more objects than fit.
    """
    from textnorm.world.grammar import parse

    p = parse(prompt) if isinstance(prompt, str) else prompt
    _check_drawable(p)
    total = sum(o.count for o in p.objects)
    if total > 8:
        raise ParameterError(f"prompt: at most 8 objects fit in a scene, got {total} in {p.text!r}")
    for attempt in range(200):
        scene = _try_place(p, rng, prefer_small=attempt >= 20, jitter=jitter)
        if scene is not None:
            return scene
    raise ParameterError(f"prompt: could not place the objects of {p.text!r} without overlap")


def _try_place(p: Prompt, rng: np.random.Generator, *, prefer_small: bool, jitter: bool) -> Scene | None:
    items: list[tuple[int, ObjectSpec, str, float]] = []  # (phrase index, spec, size, radius)
    for gi, spec in enumerate(p.objects):
        for _ in range(spec.count):
            size = spec.size or ("small" if prefer_small or rng.random() < 0.5 else "big")
            lo, hi = SIZE_RANGES[size]
            items.append((gi, spec, size, float(rng.uniform(lo, hi))))
    order = sorted(range(len(items)), key=lambda i: -items[i][3])
    centres = np.zeros((len(items), 2))
    placed: list[int] = []
    for i in order:
        gi, _, _, r = items[i]
        cand = rng.uniform(r + BORDER, 1 - r - BORDER, size=(96, 2))
        ok = np.ones(len(cand), dtype=bool)
        for j in placed:
            rj = items[j][3]
            ok &= np.hypot(*(cand - centres[j]).T) >= r + rj + GAP
            if p.relation is not None and {gi, items[j][0]} == {0, 1}:
                if gi == 0:
                    ok &= _relation_ok(cand, centres[j], p.relation)
                else:  # j is the subject: it must stand in the relation to each candidate
                    ok &= np.array([_relation_ok(centres[j][None], c, p.relation)[0] for c in cand])
        hits = np.flatnonzero(ok)
        if hits.size == 0:
            return None
        centres[i] = cand[hits[0]]
        placed.append(i)
    objs = []
    for i, (_, spec, size, r) in enumerate(items):
        colour = spec.colour or vocab.COLOURS[int(rng.integers(len(vocab.COLOURS)))]
        base = np.array(vocab.PALETTE[colour])
        if jitter:
            base = base + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
        red, green, blue = (int(c) for c in np.clip(base, 0, 255))
        x, y = float(centres[i, 0]), float(centres[i, 1])
        objs.append(WorldObject(spec.shape, colour, size, x, y, r, (red, green, blue)))
    return Scene(tuple(objs))


def _free_pairs(objs: Sequence[ObjectSpec]) -> list[tuple[str, str]]:
    """(shape, colour) pairs that no phrase describes at any size."""
    return [
        (shape, colour)
        for shape in vocab.SHAPES
        for colour in vocab.COLOURS
        if not any(p.shape == shape and p.colour in (None, colour) for p in objs)
    ]


def near_miss_kinds(prompt: Prompt) -> tuple[str, ...]:
    """The near-miss kinds that apply to `prompt` (see `near_miss_prompt`)."""
    objs = prompt.objects
    kinds = ["count", "colour", "shape"]
    if _free_pairs(objs):
        kinds.append("extra")
    if any(o.size for o in objs):
        kinds.append("size")
    if len(objs) >= 2:
        kinds.append("drop")
        a, b = objs[0], objs[1]
        if (a.colour != b.colour and a.colour and b.colour and a.shape != b.shape) or (
            a.size != b.size and a.size and b.size and a.shape != b.shape
        ):
            kinds.append("binding")
    if prompt.relation is not None:
        kinds.append("relation")
    return tuple(k for k in NEAR_MISS_KINDS if k in kinds)


def _other(options: Sequence[str], exclude: object, rng: np.random.Generator) -> str:
    choices = [o for o in options if o != exclude]
    return choices[int(rng.integers(len(choices)))]


def near_miss_prompt(prompt: Prompt, kind: str, rng: np.random.Generator) -> Prompt:
    """A prompt whose scenes violate `prompt` in one way (`kind`).

    Kinds: "count" (one phrase's count moves by 1 or 2, never to 0), "colour" (one phrase's colour
    changes), "shape" (one phrase's shape changes), "size" (a stated size flips), "binding" (the
    two phrases exchange colours, or sizes), "relation" (the relation flips), "drop" (one phrase
    is left out), "extra" (an object no phrase describes is added).

    Raises:
        ParameterError: `kind` is unknown or does not apply to `prompt`.
    """
    if kind not in near_miss_kinds(prompt):
        raise ParameterError(
            f"kind: expected one of {', '.join(near_miss_kinds(prompt))} for {prompt.text!r}, got {kind!r}"
        )
    objs = list(prompt.objects)
    i = int(rng.integers(len(objs)))
    o = objs[i]
    if kind == "count":
        steps = [d for d in (-2, -1, 1, 2) if 1 <= o.count + d <= 6]
        if not steps:
            raise ParameterError(f"prompt: a count near-miss of {o.count} objects would not fit a scene")
        objs[i] = replace(o, count=o.count + steps[int(rng.integers(len(steps)))])
    elif kind == "colour":
        objs[i] = replace(o, colour=_other(vocab.COLOURS, o.colour, rng))
    elif kind == "shape":
        objs[i] = replace(o, shape=_other(vocab.SHAPES, o.shape, rng))
    elif kind == "size":
        i = next(k for k, ob in enumerate(objs) if ob.size)
        objs[i] = replace(objs[i], size=_other(vocab.SIZES, objs[i].size, rng))
    elif kind == "binding":
        a, b = objs[0], objs[1]
        if a.colour != b.colour and a.colour and b.colour and a.shape != b.shape:
            objs[0], objs[1] = replace(a, colour=b.colour), replace(b, colour=a.colour)
        else:
            objs[0], objs[1] = replace(a, size=b.size), replace(b, size=a.size)
    elif kind == "relation":
        assert prompt.relation is not None
        return Prompt(tuple(objs), vocab.RELATION_FLIP[prompt.relation])
    elif kind == "drop":
        del objs[i]
        return Prompt(tuple(objs), None)
    else:  # extra: a colour-shape pair that no phrase matches at any size (one exists: see kinds)
        while True:  # rejection keeps the random stream of earlier versions (shipped data)
            shape = vocab.SHAPES[int(rng.integers(len(vocab.SHAPES)))]
            colour = vocab.COLOURS[int(rng.integers(len(vocab.COLOURS)))]
            if not any(p.shape == shape and p.colour in (None, colour) for p in objs):
                break
        # With a relation, the extra phrase comes third: the relation binds the first two only.
        objs.append(ObjectSpec(shape, colour, None, 1))
    return Prompt(tuple(objs), prompt.relation)


def sample_near_miss(
    prompt: Prompt | str, rng: np.random.Generator, *, kind: str | None = None, jitter: bool = True
) -> tuple[Scene, str]:
    """Draw a scene that violates `prompt` (checked), and say how.

    Args:
        prompt: the prompt the scene must fail.
        rng: random generator.
        kind: the near-miss kind; a random applicable one when None.
        jitter: colour jitter as in `sample_scene`.

    Returns:
        (scene, kind).
    """
    from textnorm.world.grammar import parse

    p = parse(prompt) if isinstance(prompt, str) else prompt
    kinds = near_miss_kinds(p)
    for _ in range(50):
        k = kind or kinds[int(rng.integers(len(kinds)))]
        scene = sample_scene(near_miss_prompt(p, k, rng), rng, jitter=jitter)
        if not scene.holds(p):
            return scene, k
    raise ParameterError(f"kind: could not make a {kind!r} near-miss of {p.text!r}")
