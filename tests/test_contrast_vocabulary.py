"""Contrast restricted to a vocabulary (``vocabulary=`` / ``Lexicon.restricted``): no rule
writes a word outside it, on random prompts and random vocabularies; the synthetic world's
vocabulary keeps every set inside what the world draws and parses."""

from __future__ import annotations

import reference_contrast as ref
from hypothesis import given
from hypothesis import strategies as st
from reference_contrast_lexicon import NUMBER_WORDS, compile_lexicon
from reference_contrast_parse import tokenize

import textnorm
from textnorm import Lexicon, ParameterError

import pytest

_LEX = compile_lexicon(ref.default_layers())
_NOUNS = sorted({n.singular for n in _LEX.nouns})
_KINDS = ("colors", "sizes", "materials", "textures")
_ATTRS = {key: sorted(w for w, (k, _) in _LEX.attrs.items() if k == i) for i, key in enumerate(_KINDS)}
_RELATIONS = sorted(_LEX.relations)
_FORMS = sorted(_LEX.forms)
_DETS = ["a", "an", "one", "two", "three", "five", "12", "the", ""]
_JOINS = [" and ", ", ", " with "] + [f" {r} " for r in _RELATIONS]


def _words(text: str) -> list[str]:
    return [t.lower for t in tokenize(text)]


def _noun_words(noun_index: int) -> set[str]:
    n = _LEX.nouns[noun_index]
    out = set(n.singular.split()) | set(n.plural.split())
    *head, last = n.singular.split()
    return out | set(head) | {f"{last}-like"}  # hybrid writes "an X-like Y"


def _allowed(target: str, vocabulary: dict[str, list[str]]) -> set[str]:
    """Words a rule may write: the vocabulary's (every form of its nouns), counts and
    articles, and the forms of nouns already in the target (counts inflect them; hybrids
    write "X-like")."""
    out = {"a", "an", *NUMBER_WORDS}
    for w in vocabulary.get("nouns", []):
        out |= _noun_words(_LEX.forms[w][0])
    for key in (*_KINDS, "relations"):
        for w in vocabulary.get(key, []):
            out |= set(w.split())
    toks = _words(target)
    for form, (i, _) in _LEX.forms.items():
        f = form.split()
        if any(toks[j : j + len(f)] == f for j in range(len(toks))):
            out |= _noun_words(i)
    return out


def _outside(target: str, candidate: str, vocabulary: dict[str, list[str]]) -> list[str]:
    known = set(_words(target)) | _allowed(target, vocabulary)
    return [w for w in _words(candidate) if w not in known and not w.isdigit()]


@st.composite
def _prompt(draw: st.DrawFn) -> str:
    n = draw(st.integers(1, 3))
    phrases = []
    for _ in range(n):
        mods = draw(st.lists(st.sampled_from(sum(_ATTRS.values(), [])), max_size=2))
        phrase = [draw(st.sampled_from(_DETS)), *mods, draw(st.sampled_from(_FORMS))]
        phrases.append(" ".join(w for w in phrase if w))
    joins = draw(st.lists(st.sampled_from(_JOINS), min_size=n - 1, max_size=n - 1))
    body = phrases[0] + "".join(j + p for j, p in zip(joins, phrases[1:]))
    return draw(st.sampled_from(["", "a photo of "])) + body


@st.composite
def _vocabulary(draw: st.DrawFn) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if draw(st.booleans()):
        out["nouns"] = draw(st.lists(st.sampled_from(_NOUNS), max_size=25, unique=True))
    for key in _KINDS:
        if draw(st.booleans()):
            out[key] = draw(st.lists(st.sampled_from(_ATTRS[key]), max_size=6, unique=True))
    if draw(st.booleans()):
        out["relations"] = draw(st.lists(st.sampled_from(_RELATIONS), max_size=8, unique=True))
    return out


@given(st.lists(_prompt(), min_size=1, max_size=4), _vocabulary())
def test_every_substituted_word_comes_from_the_vocabulary(prompts: list[str], vocabulary: dict[str, list[str]]) -> None:
    sets = textnorm.contrast(prompts, vocabulary=vocabulary)
    for target, row in zip(prompts, sets):
        for c in row:
            assert _outside(target, c, vocabulary) == [], (target, c)
    # the same as restricting the lexicon once and passing it
    assert textnorm.contrast(prompts, lexicon=Lexicon.default().restricted(vocabulary)) == sets


def test_the_check_catches_words_outside_the_vocabulary() -> None:
    vocabulary = {"nouns": ["square"], "colors": ["blue"]}
    free = textnorm.contrast(["a red circle"])[0]
    assert any(_outside("a red circle", c, vocabulary) for c in free)
    kept = textnorm.contrast(["a red circle"], vocabulary=vocabulary)[0]
    assert "a red square" in kept and "a blue circle" in kept
    assert not any(_outside("a red circle", c, vocabulary) for c in kept)


def test_restriction_keeps_parsing_and_the_vocabulary_spelling() -> None:
    grey = {"colors": ["grey", "blue"]}
    # lexicon order, in the vocabulary's spelling
    assert textnorm.contrast(["a red cat"], rules=["color"], vocabulary=grey)[0] == ["a blue cat", "a grey cat"]
    # a word outside the vocabulary still parses: its count and colour still vary
    got = textnorm.contrast(["two red hexagons"], rules=["count", "color", "object"], vocabulary=grey)[0]
    assert got == ["a red hexagon", "three red hexagons", "four red hexagons", "two blue hexagons", "two grey hexagons"]
    # no relations listed: none is flipped; swapping writes no new word
    assert textnorm.contrast(["a cat above a dog"], rules=["relation", "swap"], vocabulary={})[0] == ["a dog above a cat"]
    lex = Lexicon.default().restricted(grey)
    assert "restricted=1" in repr(lex) and lex.vocabularies() == [grey]


@pytest.mark.parametrize(
    ("vocabulary", "match"),
    [
        ({"objects": ["cat"]}, "vocabulary: expected keys among"),
        ({"nouns": "cat"}, r"vocabulary\['nouns'\]: expected a sequence of str"),
        ({"nouns": ["cat", 3]}, r"vocabulary\['nouns'\]: expected str items"),
        ({"nouns": ["blorp"]}, "vocabulary: expected nouns the lexicon knows .*blorp"),
        ({"colors": ["big"]}, "vocabulary: expected colors the lexicon knows .*big"),
        ({"relations": ["amid"]}, "vocabulary: expected relations the lexicon knows .*amid"),
        (["cat"], "vocabulary: expected a mapping"),
    ],
)
def test_bad_vocabularies_name_the_argument(vocabulary: object, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        textnorm.contrast(["a cat"], vocabulary=vocabulary)  # type: ignore[arg-type]


def test_the_world_vocabulary_keeps_sets_inside_the_world() -> None:
    """With the world's drawable words, every prompt but a hybrid parses under the world's
    grammar and names only shapes and colours the world draws (README, contrast section)."""
    from textnorm.world import PROMPT_CATEGORIES, sample_prompts, try_parse, vocab

    world = {
        "nouns": list(vocab.SHAPES),
        "colors": list(vocab.COLOURS),
        "sizes": list(vocab.SIZES),
        "relations": list(vocab.RELATIONS),
    }
    prompts = [p for c in PROMPT_CATEGORIES for p in sample_prompts(c, 10, seed=4)]
    sets = textnorm.contrast(prompts, vocabulary=world)
    n = 0
    for i in range(len(prompts)):
        for text, rule in zip(sets[i], sets.rules(i)):
            if rule == "hybrid":
                continue
            parsed = try_parse(text)
            assert parsed is not None, (rule, text)
            for o in parsed.objects:
                assert o.shape in vocab.SHAPES and o.colour in (None, *vocab.COLOURS), (rule, text)
            n += 1
    assert n > 500
