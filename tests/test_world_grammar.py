"""The world's prompt grammar: parsing, canonical text, contrast-style variants, semantics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from textnorm import ParameterError
from textnorm.world import (
    PROMPT_CATEGORIES,
    ObjectSpec,
    Prompt,
    check,
    parse,
    sample_prompt,
    sample_prompts,
    split_of,
    try_parse,
)


@dataclass(eq=False)
class Obj:
    shape: str
    colour: str
    size: str
    x: float
    y: float


@given(st.integers(0, 2**32 - 1), st.sampled_from(PROMPT_CATEGORIES))
def test_sampled_prompts_round_trip(seed: int, category: str) -> None:
    p = sample_prompt(category, np.random.default_rng(seed))
    assert parse(p.text) == p
    assert parse(p.text.upper() + ".") == p


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("three red circles", Prompt((ObjectSpec("circle", "red", None, 3),))),
        ("A big red star.", Prompt((ObjectSpec("star", "red", "big", 1),))),
        ("an orange circle", Prompt((ObjectSpec("circle", "orange", None, 1),))),
        ("a orange circle", Prompt((ObjectSpec("circle", "orange", None, 1),))),  # lenient article
        ("two red circle", Prompt((ObjectSpec("circle", "red", None, 2),))),  # lenient plural
        ("5 grey crosses", Prompt((ObjectSpec("cross", "gray", None, 5),))),
        ("a red large star", Prompt((ObjectSpec("star", "red", "big", 1),))),
        (
            "a blue square and a yellow star",
            Prompt((ObjectSpec("square", "blue"), ObjectSpec("star", "yellow"))),
        ),
        (
            "a red circle, a blue square, and two green rings",
            Prompt((ObjectSpec("circle", "red"), ObjectSpec("square", "blue"), ObjectSpec("ring", "green", None, 2))),
        ),
        (
            "a green triangle to the left of a purple circle",
            Prompt((ObjectSpec("triangle", "green"), ObjectSpec("circle", "purple")), "to the left of"),
        ),
        (
            "two red stars under a cyan diamond",
            Prompt((ObjectSpec("star", "red", None, 2), ObjectSpec("diamond", "cyan")), "below"),
        ),
    ],
)
def test_parse_examples(text: str, expected: Prompt) -> None:
    assert parse(text) == expected


# Variants the rule-based contrast rules write from world prompts (hand-written, so this test
# does not depend on the contrast generator): count change, colour swap, binding swap, relation
# flip, subject/object swap, object change, dropped object, size change, lexicon synonyms.
VARIANTS = {
    "three red circles": ["two red circles", "a red circle", "five red circles", "three blue circles",
                          "three red hexagons", "three magenta circles", "three red hearts"],
    "a red circle and a blue square": ["a blue circle and a red square", "a red circle", "a blue square",
                                       "two red circles and a blue square", "a red circle and two blue squares",
                                       "a red pentagon and a blue square", "a teal circle and a blue square"],
    "a green triangle to the left of a purple circle": [
        "a green triangle to the right of a purple circle", "a purple circle to the left of a green triangle",
        "two green triangles to the left of a purple circle", "a green star to the left of a purple circle",
        "a green triangle to the left of a purple square"],
    "a big red star": ["a small red star", "a tiny red star", "a big golden star", "a big violet star",
                       "two big red stars", "a big red cross"],
    "a cyan ring above an orange diamond": ["a cyan ring below an orange diamond",
                                             "an orange diamond above a cyan ring",
                                             "a cyan ring under an orange diamond",
                                             "a cyan ring beneath an orange diamond"],
}


@pytest.mark.parametrize("target", sorted(VARIANTS))
def test_contrast_style_variants_parse(target: str) -> None:
    base = parse(target)
    for v in VARIANTS[target]:
        p = parse(v)
        assert p != base, v
        assert parse(p.text) == p


def test_contrast_generator_outputs_parse() -> None:
    """Every rule output of the real generator parses, except hybrids ("a ring-like square")."""
    import textnorm

    contrast = getattr(textnorm, "contrast", None)
    if contrast is None:  # pragma: no cover - the contrast generator ships with the package
        pytest.skip("textnorm.contrast is not available")
    prompts = [p for c in PROMPT_CATEGORIES for p in sample_prompts(c, 10, seed=4)]
    sets = contrast(prompts)
    n = 0
    for i in range(len(prompts)):
        for text, rule in zip(sets[i], sets.rules(i)):
            if rule != "hybrid":
                assert try_parse(text) is not None, (rule, text)
                n += 1
    assert n > 500


def test_synonyms_read_as_their_canonical_word() -> None:
    for v in ("a large red star", "a giant red star", "a huge red star", "A BIG RED STAR"):
        assert parse(v) == parse("a big red star")
    assert parse("a little grey ring") == parse("a small gray ring")
    assert parse("a violet heart").objects[0].colour == "purple"
    left = parse("a green triangle to the left of a purple circle")
    assert parse("a green triangle on the left of a purple circle") == left
    assert parse("a green triangle left of a purple circle") == left
    assert parse("a cyan ring on top of a red star") == parse("a cyan ring above a red star")


def test_canonical_text_agrees_in_article_and_number() -> None:
    assert ObjectSpec("circle", "orange").describe() == "an orange circle"
    assert ObjectSpec("circle", "orange").describe(numeral=True) == "one orange circle"
    assert ObjectSpec("cross", "red", "big", 2).describe() == "two big red crosses"
    assert ObjectSpec("star").describe() == "a star"
    p = Prompt((ObjectSpec("ring", "cyan"), ObjectSpec("diamond", "orange")), "above")
    assert p.text == "a cyan ring above an orange diamond"
    assert [c.kind for c in p.constraints] == ["count", "count", "relation", "no_extra"]


@pytest.mark.parametrize(
    "bad", ["", "   ", "red circles", "a dog", "a red circle and", "a red circle to the left of",
            "a shiny red circle", "a red blue circle", "a circle-like square", "x" * 2000,
            "a red circle and a blue square to the left of a star", "ünïcode circle"],
)
def test_unparseable_prompts_raise_naming_the_argument(bad: str) -> None:
    with pytest.raises(ParameterError, match="prompt"):
        parse(bad)
    assert try_parse(bad) is None


@pytest.mark.parametrize("bad", [None, 3, b"a red circle", ["a red circle"]])
def test_non_strings_raise(bad: object) -> None:
    with pytest.raises(ParameterError, match="prompt: expected a str"):
        parse(bad)  # type: ignore[arg-type]
    assert try_parse(bad) is None


def test_count_constraints_merge_identical_phrases_and_match_attributes() -> None:
    p = parse("a red circle and a red circle")
    (count, extra) = p.constraints
    assert count.subject == ObjectSpec("circle", "red", None, 2)
    objs = [Obj("circle", "red", "big", 0.2, 0.2), Obj("circle", "red", "small", 0.8, 0.8)]
    assert check(objs, p) == ((True, 2), (True, 0))
    assert check(objs[:1], p) == ((False, 1), (True, 0))
    big = parse("a big red circle")
    assert check(objs, big) == ((True, 1), (False, 1))  # the small one is extra
    anycolour = parse("two circles")
    assert check(objs, anycolour) == ((True, 2), (True, 0))


@pytest.mark.parametrize(
    ("relation", "dx", "dy", "holds"),
    [
        ("to the left of", 0.09, 0.0, True), ("to the left of", 0.07, 0.0, False),
        ("to the left of", -0.2, 0.0, False), ("to the right of", -0.09, 0.3, True),
        ("above", 0.0, 0.09, True), ("above", 0.5, 0.07, False), ("below", 0.0, -0.09, True),
        ("below", 0.0, 0.2, False),
    ],
)
def test_relation_margin(relation: str, dx: float, dy: float, holds: bool) -> None:
    """Object (the second phrase) sits at subject + (dx, dy); the margin is 0.08."""
    p = parse(f"a red circle {relation} a blue square")
    objs = [Obj("circle", "red", "big", 0.4, 0.4), Obj("square", "blue", "big", 0.4 + dx, 0.4 + dy)]
    assert check(objs, p)[2] == (holds, None)


def test_relation_needs_every_pair_and_both_sides() -> None:
    p = parse("two red circles to the left of a blue square")
    sq = Obj("square", "blue", "big", 0.8, 0.5)
    ok = [Obj("circle", "red", "big", 0.1, 0.5), Obj("circle", "red", "big", 0.3, 0.2), sq]
    bad = [Obj("circle", "red", "big", 0.1, 0.5), Obj("circle", "red", "big", 0.9, 0.2), sq]
    assert check(ok, p)[2] == (True, None)
    assert check(bad, p)[2] == (False, None)
    assert check(ok[:2], p)[2] == (False, None)  # no square at all
    same = parse("a red circle to the left of a red circle")
    assert check(ok[:2], same)[1] == (True, None)  # one pair suffices for the same description


def test_split_is_a_fixed_property_of_the_text() -> None:
    prompts = sample_prompts("spatial", 400, seed=0, split="all")
    test_share = np.mean([split_of(parse(p)) == "test" for p in prompts])
    assert 0.13 < test_share < 0.27
    held = sample_prompts("binding", 30, seed=5, split="test")
    assert all(split_of(parse(p)) == "test" for p in held)
    assert not set(held) & set(sample_prompts("binding", 300, seed=9, split="train"))
    assert sample_prompts("counting", 7, seed=3) == sample_prompts("counting", 7, seed=3)


def test_sampler_errors() -> None:
    with pytest.raises(ParameterError, match="category"):
        sample_prompts("colour", 3)
    with pytest.raises(ParameterError, match="split"):
        sample_prompts("single", 3, split="dev")
    with pytest.raises(ParameterError, match="n:"):
        sample_prompts("single", -1)
    with pytest.raises(ParameterError, match="seed"):
        sample_prompts("single", 1, seed=-2)
    with pytest.raises(ParameterError, match="fewer than 100 distinct"):
        sample_prompts("single", 100, split="test", unique=True)


@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_raises_parameter_error(text: str) -> None:
    try:
        p = parse(text)
    except ParameterError as exc:
        assert "prompt" in str(exc)
    else:
        assert parse(p.text) == p


@given(st.lists(st.sampled_from(["a", "an", "two", "red", "big", "circle", "stars", "and", ",", "above",
                                 "to", "the", "left", "of", "blue", "square", "."]), max_size=12))
def test_word_salad_from_the_vocabulary_never_crashes(words: list[str]) -> None:
    text = " ".join(words)
    p = try_parse(text)
    assert p is None or parse(p.text) == p
