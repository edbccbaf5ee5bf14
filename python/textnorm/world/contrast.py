"""World-native contrast sets: the near-miss prompts of a world prompt, in the world's words only.

TextNorm scores an image against its prompt and a set of contrastive prompts. For a world prompt
the useful contrastive prompts are exactly the near-misses the judge can tell apart: each is
built from the prompt's parsed structure (`textnorm.world.parse`) and names only shapes, colours,
sizes, counts and relations the world draws (`textnorm.world.vocab`), so every one of them parses
and renders. Kinds (`CONTRAST_KINDS`), and where each applies:

- ``count``: one phrase's count moves by -2, -1, +1 or +2, staying within 1..`MAX_PHRASE_COUNT`
  and the scene's `MAX_SCENE_OBJECTS` (never to zero: that is ``drop``). A target that itself asks
  for more keeps its own counts as the limits (up to ten, the grammar's largest count).
- ``colour``: one coloured phrase takes each other drawable colour.
- ``shape``: one phrase takes each other drawable shape.
- ``size``: one sized phrase takes the other size.
- ``binding``: two phrases of different shapes exchange their colours (both coloured, colours
  differ) or their sizes (both sized, sizes differ).
- ``relation``: the relation flips ("left of" <-> "right of", "above" <-> "below").
- ``swap``: the relation's subject and object change places, the relation kept.
- ``drop``: one phrase is left out (prompts of two phrases or more).
- ``extra``: one object that no phrase describes at any size (a drawable shape-colour pair) is
  added as a last phrase. Not for relation prompts: the grammar cannot state a relation and a
  third phrase.

Every contrast prompt contradicts its target: no scene that satisfies the target satisfies it
(the relation's other two directions are therefore not used: an object can be both left of and
above another). Candidates that say the same as the target (a flip and a swap together) are
left out, and each text appears once, under the first kind above that made it.

With a cap ``k``, the kept prompts are drawn round-robin over the kinds in a seeded order, each
kind's candidates in a seeded order, so every applicable kind is represented before any kind
gets a second prompt. The draw depends on the prompt's text and the seed only, never on the
other prompts of a batch.

Example:
    >>> s = contrast_set("two red circles", k=4, seed=0)
    >>> len(s.prompts), sorted(set(s.kinds)) == sorted(s.kinds)
    (4, True)
    >>> contrast_set("a red circle above a blue star").by_kind()["relation"]
    ['a red circle below a blue star']
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from textnorm._core import ParameterError
from textnorm.world import vocab
from textnorm.world.grammar import ObjectSpec, Prompt, parse

__all__ = [
    "CONTRAST_KINDS", "MAX_PHRASE_COUNT", "MAX_SCENE_OBJECTS", "ContrastSet", "contrast_candidates",
    "contrast_set", "contrast_sets",
]

#: Every near-miss kind, in the order that claims a text made by two kinds.
CONTRAST_KINDS: tuple[str, ...] = ("count", "colour", "shape", "size", "binding", "relation", "swap", "drop", "extra")
#: Largest count of one phrase (the scene near-miss rule's, `textnorm.world.near_miss_prompt`).
MAX_PHRASE_COUNT = 6
#: Most objects one scene holds (`textnorm.world.sample_scene`).
MAX_SCENE_OBJECTS = 8


@dataclass(frozen=True)
class ContrastSet:
    """The contrast prompts of one target and the near-miss kind of each.

    Attributes:
        target: the target's canonical text.
        prompts: contrast prompts (canonical text), never the target.
        kinds: the kind of each prompt (one of `CONTRAST_KINDS`).
    """

    target: str
    prompts: tuple[str, ...]
    kinds: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.prompts)

    def by_kind(self) -> dict[str, list[str]]:
        """{kind: its prompts}, kinds in `CONTRAST_KINDS` order, only those present."""
        out: dict[str, list[str]] = {k: [] for k in CONTRAST_KINDS}
        for p, k in zip(self.prompts, self.kinds):
            out[k].append(p)
        return {k: v for k, v in out.items() if v}


def _meaning(p: Prompt) -> tuple[object, ...]:
    """What a prompt says, independent of phrase order and of how a relation is phrased: the
    merged counts per description, and the relation read both ways (the smaller reading)."""
    counts: dict[tuple[str, str | None, str | None], int] = {}
    for o in p.objects:
        counts[o.key()] = counts.get(o.key(), 0) + o.count
    rel: tuple[object, ...] = ()
    if p.relation is not None:
        s, o = p.objects[0], p.objects[1]
        a = (s.key(), s.count, p.relation, o.key(), o.count)
        b = (o.key(), o.count, vocab.RELATION_FLIP[p.relation], s.key(), s.count)
        rel = min(a, b, key=repr)
    return (tuple(sorted(counts.items(), key=repr)), rel)


def _limits(p: Prompt) -> tuple[int, int]:
    """Largest phrase count and scene total a contrast prompt of `p` may have: the world's limits,
    or the target's own values when it asks for more (never past what the grammar writes)."""
    top = min(max(MAX_PHRASE_COUNT, *(o.count for o in p.objects)), vocab.MAX_COUNT)
    return top, max(MAX_SCENE_OBJECTS, sum(o.count for o in p.objects))


def _fits(objs: Sequence[ObjectSpec], limits: tuple[int, int]) -> bool:
    return all(1 <= o.count <= limits[0] for o in objs) and sum(o.count for o in objs) <= limits[1]


def _drawable(p: Prompt) -> bool:
    return all(
        o.shape in vocab.SHAPES and (o.colour is None or o.colour in vocab.PALETTE)
        and (o.size is None or o.size in vocab.SIZES)
        for o in p.objects
    )


def _with(objs: Sequence[ObjectSpec], i: int, new: ObjectSpec) -> tuple[ObjectSpec, ...]:
    out = list(objs)
    out[i] = new
    return tuple(out)


def _raw_candidates(p: Prompt) -> list[tuple[str, Prompt]]:
    objs, rel = p.objects, p.relation
    out: list[tuple[str, Prompt]] = []
    for i, o in enumerate(objs):
        for d in (-2, -1, 1, 2):
            out.append(("count", Prompt(_with(objs, i, replace(o, count=o.count + d)), rel)))
    for i, o in enumerate(objs):
        if o.colour is not None:
            out += [("colour", Prompt(_with(objs, i, replace(o, colour=c)), rel))
                    for c in vocab.COLOURS if c != o.colour]
    for i, o in enumerate(objs):
        out += [("shape", Prompt(_with(objs, i, replace(o, shape=s)), rel)) for s in vocab.SHAPES if s != o.shape]
    for i, o in enumerate(objs):
        if o.size is not None:
            out += [("size", Prompt(_with(objs, i, replace(o, size=z)), rel)) for z in vocab.SIZES if z != o.size]
    for i in range(len(objs)):
        for j in range(i + 1, len(objs)):
            a, b = objs[i], objs[j]
            if a.shape == b.shape:
                continue
            if a.colour and b.colour and a.colour != b.colour:
                swapped = _with(_with(objs, i, replace(a, colour=b.colour)), j, replace(b, colour=a.colour))
                out.append(("binding", Prompt(swapped, rel)))
            if a.size and b.size and a.size != b.size:
                swapped = _with(_with(objs, i, replace(a, size=b.size)), j, replace(b, size=a.size))
                out.append(("binding", Prompt(swapped, rel)))
    if rel is not None:
        out.append(("relation", Prompt(objs, vocab.RELATION_FLIP[rel])))
        out.append(("swap", Prompt((objs[1], objs[0], *objs[2:]), rel)))
    if len(objs) >= 2:
        for i in range(len(objs)):
            out.append(("drop", Prompt(objs[:i] + objs[i + 1 :], None)))
    if rel is None:
        for shape in vocab.SHAPES:
            for colour in vocab.COLOURS:
                if not any(o.shape == shape and o.colour in (None, colour) for o in objs):
                    out.append(("extra", Prompt((*objs, ObjectSpec(shape, colour, None, 1)), None)))
    return out


def contrast_candidates(prompt: str | Prompt) -> list[tuple[str, str]]:
    """Every contrast prompt of `prompt` with its kind, deduplicated, in a fixed order (kinds in
    `CONTRAST_KINDS` order, each kind's candidates in the order they are built).

    Raises:
        ParameterError: `prompt` is not a world prompt, or names something the world does not draw.
    """
    p = parse(prompt) if isinstance(prompt, str) else prompt
    if not isinstance(p, Prompt):
        raise ParameterError(f"prompt: expected a world prompt (str or Prompt), got {type(prompt).__name__}")
    if not _drawable(p):
        raise ParameterError(f"prompt: {p.text!r} names a shape or colour the world does not draw")
    target = _meaning(p)
    limits = _limits(p)
    seen = {p.text}
    by_kind: dict[str, list[str]] = {k: [] for k in CONTRAST_KINDS}
    for kind, cand in _raw_candidates(p):
        if not _fits(cand.objects, limits) or _meaning(cand) == target:
            continue
        text = cand.text
        if text in seen:
            continue
        seen.add(text)
        by_kind[kind].append(text)
    # kinds claim texts in CONTRAST_KINDS order (the build order above is the same order)
    return [(k, t) for k in CONTRAST_KINDS for t in by_kind[k]]


def _rng(text: str, seed: int) -> np.random.Generator:
    digest = hashlib.blake2b(text.encode(), digest_size=8, key=b"textnorm-contrast").digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "big")])


def contrast_set(prompt: str | Prompt, *, k: int | None = None, seed: int = 0) -> ContrastSet:
    """The contrast prompts of one world prompt, at most `k` of them, kinds balanced.

    Args:
        prompt: a world prompt (text or parsed).
        k: the most prompts to keep (None: all candidates, in `contrast_candidates` order).
        seed: seed of the draw when `k` caps the set.

    Returns:
        A `ContrastSet` (prompts and their kinds).

    Raises:
        ParameterError: `prompt` is not a drawable world prompt, or `k` / `seed` is out of range.
    """
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ParameterError(f"k: expected a positive int or None, got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"seed: expected a non-negative int, got {seed!r}")
    cands = contrast_candidates(prompt)
    target = parse(prompt).text if isinstance(prompt, str) else prompt.text
    if k is None or k >= len(cands):
        return ContrastSet(target, tuple(t for _, t in cands), tuple(kd for kd, _ in cands))
    rng = _rng(target, seed)
    pools: dict[str, list[str]] = {}
    for kind, text in cands:
        pools.setdefault(kind, []).append(text)
    kinds = list(pools)
    order = [kinds[i] for i in rng.permutation(len(kinds))]
    queues = {kd: [pools[kd][i] for i in rng.permutation(len(pools[kd]))] for kd in order}
    picked: list[tuple[str, str]] = []
    depth = 0
    while len(picked) < k:
        for kd in order:
            if depth < len(queues[kd]) and len(picked) < k:
                picked.append((kd, queues[kd][depth]))
        depth += 1
    return ContrastSet(target, tuple(t for _, t in picked), tuple(kd for kd, _ in picked))


def contrast_sets(prompts: Sequence[str | Prompt], *, k: int | None = None, seed: int = 0) -> list[ContrastSet]:
    """`contrast_set` of each prompt (each prompt's draw is independent of the others).

    Raises:
        ParameterError: `prompts` is a bare string, or one prompt fails (its index is named).
    """
    if isinstance(prompts, (str, Prompt)):
        raise ParameterError("prompts: expected a list of world prompts, got a single prompt")
    out = []
    for i, p in enumerate(prompts):
        try:
            out.append(contrast_set(p, k=k, seed=seed))
        except ParameterError as exc:
            raise ParameterError(f"prompts[{i}]: {exc}") from exc
    return out
