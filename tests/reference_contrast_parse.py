"""Pure-Python twin of the prompt grammar (``rust/contrast/parse.rs``): words, noun phrases and
spatial relations, with the same bounds, for the reference generator in ``reference_contrast``."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from reference_contrast_lexicon import NUMBER_WORDS, RefLexicon, lower, number_word_value

MAX_UNKNOWN_MODIFIERS = 3
MAX_JOINT_COUNTS = 4096
MAX_UNITS = 12
MAX_NPS = 16
MAX_ATTRIBUTE_WORDS = 64
OTHER_DETERMINERS = frozenset(
    "the this that these those some several many few my your his her its our their every each "
    "no another".split()
)
FUNCTION_WORDS = frozenset(
    "of in on at to with without and or but nor is are was were be been being for from by as "
    "into onto over under than then there here not it they he she we you i has have had do does "
    "did which who whom whose while where when if so also just only all both either neither "
    "about across against along among around through toward towards upon within via like "
    "unlike up down out off".split()
)
ARTICLE, ONE, WORD, DIGIT = range(4)
COLOR, SIZE, MATERIAL, TEXTURE = range(4)


@dataclass
class Tok:
    start: int
    end: int
    lower: str


@dataclass
class Np:
    start: int
    end: int
    det: tuple[int, int, tuple[int, int] | None] | None  # (start, end, (n, style) or None)
    mods: list[tuple[int, int, tuple[int, int] | None]]  # (start, end, (kind, group) or None)
    head: tuple[int, int, int, bool]  # (start, end, noun, plural)


@dataclass
class Parsed:
    toks: list[Tok]
    nps: list[Np]
    relations: list[tuple[int, int, int, str, bool]] = field(default_factory=list)


def _word_char(c: str) -> bool:
    return not c.isascii() or c.isalnum()


def tokenize(text: str) -> list[Tok]:
    toks, i, n = [], 0, len(text)
    while i < n:
        if not _word_char(text[i]):
            i += 1
            continue
        j = i + 1
        while j < n and (
            _word_char(text[j]) or (text[j] in "-'" and j + 1 < n and _word_char(text[j + 1]))
        ):
            j += 1
        toks.append(Tok(i, j, lower(text[i:j])))
        i = j
    return toks


def _space_gap(text: str, a: Tok, b: Tok) -> bool:
    gap = text[a.end : b.start]
    return bool(gap) and all(c in " \t" for c in gap)


def _count_of(w: str) -> tuple[int, int] | None:
    if w in ("a", "an"):
        return (1, ARTICLE)
    if w == "one":
        return (1, ONE)
    v = number_word_value(w)
    if v is not None:
        return (v, WORD)
    if w and len(w) <= 6 and all(c in "0123456789" for c in w) and 1 <= int(w) <= 999_999:
        return (int(w), DIGIT)
    return None


def parse(text: str, lex: RefLexicon) -> Parsed:
    toks = tokenize(text)

    def modifier_word(w: str) -> bool:
        return not (
            any(c in "0123456789" for c in w)
            or w in FUNCTION_WORDS
            or w in OTHER_DETERMINERS
            or w in NUMBER_WORDS
            or w in ("a", "an")
            or w in lex.relation_words
        )

    def noun_at(k: int) -> tuple[int, int, bool] | None:
        key, best = "", None
        for m in range(1, min(lex.max_noun_words, len(toks) - k) + 1):
            if m > 1:
                if not _space_gap(text, toks[k + m - 2], toks[k + m - 1]):
                    break
                key += " "
            key += toks[k + m - 1].lower
            if key in lex.forms:
                best = (m, *lex.forms[key])
        return best

    def phrase_at(j: int, allow_unknown: bool) -> tuple[list[Any], Any, int] | None:
        units: list[tuple[int, int, tuple[int, bool] | None]] = []
        k, unknown, seen_noun = j, 0, False
        while k < len(toks):
            if len(units) >= MAX_UNITS or (k > j and not _space_gap(text, toks[k - 1], toks[k])):
                break
            found = noun_at(k)
            if found:
                units.append((k, k + found[0], (found[1], found[2])))
                seen_noun, k = True, k + found[0]
                continue
            if seen_noun:
                break
            w = toks[k].lower
            if w in lex.attrs:
                units.append((k, k + 1, None))
            elif allow_unknown and unknown < MAX_UNKNOWN_MODIFIERS and modifier_word(w):
                unknown += 1
                units.append((k, k + 1, None))
            else:
                break
            k += 1
        nouns = [i for i, u in enumerate(units) if u[2] is not None]
        if not nouns:
            return None
        h = nouns[-1]
        hs, he, (noun, pl) = units[h]  # type: ignore[misc]
        mods = [
            (toks[a].start, toks[b - 1].end, lex.attrs.get(toks[a].lower) if b == a + 1 else None)
            for a, b, _ in units[:h]
        ]
        return mods, (toks[hs].start, toks[he - 1].end, noun, pl), he

    nps: list[Np] = []
    i = 0
    while i < len(toks) and len(nps) < MAX_NPS:
        w = toks[i].lower
        count = _count_of(w)
        if (count or w in OTHER_DETERMINERS) and i + 1 < len(toks) and _space_gap(text, toks[i], toks[i + 1]):
            got = phrase_at(i + 1, True)
            if got:
                mods, head, nxt = got
                det = (toks[i].start, toks[i].end, count)
                nps.append(Np(toks[i].start, head[1], det, mods, head))
                i = nxt
                continue
        got = phrase_at(i, False)
        if got:
            mods, head, i = got
            nps.append(Np(mods[0][0] if mods else head[0], head[1], None, mods, head))
            continue
        i += 1
    return Parsed(toks, nps, _relations(text, toks, nps, lex))


def _relations(
    text: str, toks: list[Tok], nps: list[Np], lex: RefLexicon
) -> list[tuple[int, int, int, str, bool]]:
    out = []
    starts = [t.start for t in toks]
    for t in range(len(nps) - 1):
        first = bisect_left(starts, nps[t].end)
        last = bisect_left(starts, nps[t + 1].start)
        m = last - first
        if m <= 0 or m > lex.max_relation_words or first == 0:
            continue
        if not all(_space_gap(text, toks[q], toks[q + 1]) for q in range(first - 1, last)):
            continue
        key = " ".join(w.lower for w in toks[first:last])
        if key in lex.relations:
            opposite, symmetric = lex.relations[key]
            out.append((t, toks[first].start, toks[last - 1].end, opposite, symmetric))
    return out


