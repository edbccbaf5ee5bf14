"""The prompt grammar: parse plain-English world prompts into constraints, and write them back.

Grammar (case, surrounding spaces and a final full stop are ignored)::

    prompt   := phrase ("," phrase)* [","] "and" phrase      # one or more objects
              | phrase RELATION phrase                        # a spatial relation
    phrase   := COUNT [SIZE] [COLOUR] SHAPE                   # size and colour in either order
    COUNT    := a | an | one .. ten | 1 .. 10
    RELATION := to the left of | to the right of | above | below  (and synonyms, see vocab)

Articles and plurals are accepted leniently ("a orange circle", "two red circle") so that every
variant a rule-based contrast generator writes (count change, colour swap, binding swap,
relation flip, subject/object swap, object change, dropped object) parses; `Prompt.text` always
writes the agreeing form ("an orange circle", "two red circles").

Semantics (what `constraints` checks and the judge reports, one verdict each):

- ``count``: for each distinct object description (phrases with the same shape, colour and size
  are merged and their counts added), exactly that many objects match it. An object matches when
  its shape equals the phrase's and so do its colour and size where the phrase names them.
- ``relation``: ``S rel O`` holds when both S and O are present and every S instance stands in
  the relation to every other O instance (centres differ by more than `RELATION_MARGIN`, in
  normalised image units, along the relation's axis; y grows downwards, so "above" means a
  smaller y). When S and O are the same description, one such pair suffices.
- ``no_extra``: every object in the image matches some phrase (the world is exact: nothing else).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Protocol

from textnorm._core import ParameterError
from textnorm.world import vocab

# Centres must differ by more than this (fraction of the image side) for a relation to hold.
RELATION_MARGIN = 0.08


@dataclass(frozen=True)
class ObjectSpec:
    """One noun phrase: `count` objects of `shape`, optionally of a `colour` and a `size`."""

    shape: str
    colour: str | None = None
    size: str | None = None
    count: int = 1

    def describe(self, *, numeral: bool = False) -> str:
        """The phrase in plain English with article/number agreement ("an orange circle"; with
        `numeral`, "one orange circle")."""
        n = self.count
        words = [w for w in (self.size, self.colour) if w]
        noun = self.shape if n == 1 else vocab.SHAPE_PLURALS[self.shape]
        rest = " ".join([*words, noun])
        if n == 1 and not numeral:
            return ("an " if rest[0] in "aeiou" else "a ") + rest
        return f"{vocab.NUMBER_WORDS[n] if n < len(vocab.NUMBER_WORDS) else n} {rest}"

    def key(self) -> tuple[str, str | None, str | None]:
        """The description without the count: what an object must match."""
        return (self.shape, self.colour, self.size)

    def matches(self, shape: str, colour: str, size: str) -> bool:
        """Whether an object with these attributes fits this description."""
        return (
            shape == self.shape
            and (self.colour is None or colour == self.colour)
            and (self.size is None or size == self.size)
        )


@dataclass(frozen=True)
class Constraint:
    """One checkable statement: kind "count", "relation" or "no_extra"."""

    kind: str
    text: str
    subject: ObjectSpec | None = None
    relation: str | None = None
    other: ObjectSpec | None = None


@dataclass(frozen=True)
class Prompt:
    """A parsed prompt: its object phrases and, for spatial prompts, the relation between the
    first phrase (subject) and the second (object)."""

    objects: tuple[ObjectSpec, ...]
    relation: str | None = None

    @property
    def text(self) -> str:
        """Canonical English for this prompt; `parse(p.text) == p`."""
        phrases = [o.describe() for o in self.objects]
        if self.relation is not None:  # a third phrase only in "extra" near-miss scenes
            return " and ".join([f"{phrases[0]} {self.relation} {phrases[1]}", *phrases[2:]])
        if len(phrases) == 1:
            return phrases[0]
        return ", ".join(phrases[:-1]) + " and " + phrases[-1]

    @cached_property
    def constraints(self) -> tuple[Constraint, ...]:
        """The statements the judge checks, in a fixed order (counts, relation, no_extra)."""
        merged: dict[tuple[str, str | None, str | None], int] = {}
        for o in self.objects:
            merged[o.key()] = merged.get(o.key(), 0) + o.count
        out = []
        for (shape, colour, size), n in merged.items():
            spec = ObjectSpec(shape, colour, size, n)
            out.append(Constraint("count", f"exactly {spec.describe(numeral=True)}", subject=spec))
        if self.relation is not None:
            s, o = self.objects[:2]
            out.append(
                Constraint(
                    "relation",
                    f"{s.describe()} {self.relation} {o.describe()}",
                    subject=s,
                    relation=self.relation,
                    other=o,
                )
            )
        out.append(Constraint("no_extra", "nothing else"))
        return tuple(out)


class Observed(Protocol):
    """What the checker needs to know of one object (a scene's or a detected one)."""

    @property
    def shape(self) -> str: ...
    @property
    def colour(self) -> str: ...
    @property
    def size(self) -> str: ...
    @property
    def x(self) -> float: ...
    @property
    def y(self) -> float: ...


def _relation_holds(a: Observed, b: Observed, relation: str) -> bool:
    m = RELATION_MARGIN
    if relation == "to the left of":
        return b.x - a.x > m
    if relation == "to the right of":
        return a.x - b.x > m
    if relation == "above":
        return b.y - a.y > m
    return a.y - b.y > m  # below


def check(objects: Sequence[Observed], prompt: Prompt) -> tuple[tuple[bool, int | None], ...]:
    """Check each of `prompt.constraints` against a list of objects.

    Returns:
        One `(holds, observed)` per constraint: `observed` is the matching count for "count"
        constraints, the number of unmatched objects for "no_extra", and None for relations.
    """
    out: list[tuple[bool, int | None]] = []
    for c in prompt.constraints:
        if c.kind == "count":
            assert c.subject is not None
            n = sum(c.subject.matches(o.shape, o.colour, o.size) for o in objects)
            out.append((n == c.subject.count, n))
        elif c.kind == "relation":
            assert c.subject is not None and c.other is not None and c.relation is not None
            subj = [o for o in objects if c.subject.matches(o.shape, o.colour, o.size)]
            obj = [o for o in objects if c.other.matches(o.shape, o.colour, o.size)]
            pairs = [(a, b) for a in subj for b in obj if a is not b]
            tests = [_relation_holds(a, b, c.relation) for a, b in pairs]
            same = c.subject.key() == c.other.key()
            holds = bool(tests) and (any(tests) if same else all(tests))
            out.append((holds, None))
        else:
            extra = sum(
                not any(p.matches(o.shape, o.colour, o.size) for p in prompt.objects)
                for o in objects
            )
            out.append((extra == 0, extra))
    return tuple(out)


_TOKEN = re.compile(r"[a-z0-9]+|,")
_REL_TOKENS = sorted(
    ((tuple(k.split()), v) for k, v in vocab.RELATION_PHRASES.items()),
    key=lambda kv: -len(kv[0]),
)


def _phrase(tokens: list[str], prompt: str) -> ObjectSpec:
    if len(tokens) < 2:
        raise ParameterError(f"prompt: expected '<count> [size] [colour] <shape>', got {prompt!r}")
    count = vocab.COUNT_WORDS.get(tokens[0])
    if count is None:
        raise ParameterError(f"prompt: expected a count word (a, an, one..ten) in {prompt!r}, got {tokens[0]!r}")
    noun = tokens[-1]
    shape = next((s for s, p in vocab.SHAPE_PLURALS.items() if noun in (s, p)), None)
    if shape is None:
        raise ParameterError(f"prompt: unknown shape {noun!r} in {prompt!r}; known: {', '.join(vocab.SHAPE_WORDS)}")
    colour = size = None
    for w in tokens[1:-1]:
        w = vocab.COLOUR_ALIASES.get(w, w)
        if w in vocab.COLOUR_WORDS and colour is None:
            colour = w
        elif w in vocab.SIZE_WORDS and size is None:
            size = vocab.SIZE_WORDS[w]
        else:
            raise ParameterError(f"prompt: unexpected word {w!r} in {prompt!r}")
    return ObjectSpec(shape, colour, size, count)


@lru_cache(maxsize=65536)
def _parse(prompt: str) -> Prompt:
    tokens = _TOKEN.findall(prompt.lower())
    for i in range(len(tokens)):
        for phrase, rel in _REL_TOKENS:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                left, right = tokens[:i], tokens[i + len(phrase) :]
                return Prompt((_phrase(left, prompt), _phrase(right, prompt)), rel)
    if not tokens:
        raise ParameterError(f"prompt: expected a world prompt like 'three red circles', got {prompt!r}")
    # Phrases are separated by ",", "and" or ", and"; nothing may lead, trail or repeat.
    parts: list[list[str]] = [[]]
    prev = ""
    for t in tokens:
        if t in (",", "and"):
            if not parts[-1] and not (prev == "," and t == "and"):
                raise ParameterError(f"prompt: misplaced {t!r} in {prompt!r}")
            if parts[-1]:
                parts.append([])
        else:
            parts[-1].append(t)
        prev = t
    if not parts[-1]:
        raise ParameterError(f"prompt: expected a phrase after {prev!r} in {prompt!r}")
    return Prompt(tuple(_phrase(p, prompt) for p in parts))


def parse(prompt: str) -> Prompt:
    """Parse a world prompt.

    Args:
        prompt: e.g. "a green triangle to the left of a purple circle".

    Returns:
        The parsed `Prompt` (its `.constraints` are what the judge checks).

    Raises:
        ParameterError: `prompt` is not a string or not in the grammar (the message says why).

    >>> parse("Three red circles.").text
    'three red circles'
    >>> [c.text for c in parse("a red circle above an orange square").constraints]
    ['exactly one red circle', 'exactly one orange square', 'a red circle above an orange square', 'nothing else']
    """
    if not isinstance(prompt, str):
        raise ParameterError(f"prompt: expected a str, got {type(prompt).__name__}")
    if len(prompt) > 1000:
        raise ParameterError(f"prompt: expected at most 1000 characters, got {len(prompt)}")
    return _parse(prompt)


def try_parse(prompt: object) -> Prompt | None:
    """`parse`, or None when `prompt` is not a world prompt (no exception)."""
    try:
        return parse(prompt)  # type: ignore[arg-type]
    except ParameterError:
        return None
