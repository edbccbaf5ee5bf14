"""World-native contrast sets (textnorm.world.contrast): in the world's words, every judge
near-miss kind, contradicting the target, deduplicated, deterministic, balanced under a cap."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from textnorm import ParameterError
from textnorm.world import (
    COLOURS,
    PROMPT_CATEGORIES,
    RELATIONS,
    SHAPES,
    SIZES,
    contrast_candidates,
    contrast_set,
    contrast_sets,
    judge_scenes,
    parse,
    sample_prompts,
    sample_scene,
)
from textnorm.world.contrast import CONTRAST_KINDS, MAX_PHRASE_COUNT, MAX_SCENE_OBJECTS

SAMPLED = [p for cat in PROMPT_CATEGORIES for split in ("train", "test")
           for p in sample_prompts(cat, 12, seed=3, split=split)]


def _drawn_words() -> set[str]:
    from textnorm.world import vocab

    words = set(COLOURS) | set(SIZES) | {"a", "an", "and", ","}
    words |= set(SHAPES) | {vocab.SHAPE_PLURALS[s] for s in SHAPES}
    words |= set(vocab.NUMBER_WORDS[1 : MAX_PHRASE_COUNT + 1])
    for rel in RELATIONS:
        words |= set(rel.split())
    return words


DRAWN = _drawn_words()


def _check_prompt(text: str, target: str) -> None:
    p = parse(text)  # parses
    assert p.text == text  # canonical
    assert text != target
    import re

    assert set(re.findall(r"[a-z0-9]+|,", text)) <= DRAWN, text
    assert all(o.shape in SHAPES and o.colour in (None, *COLOURS) and o.size in (None, *SIZES) for o in p.objects)
    assert all(1 <= o.count <= MAX_PHRASE_COUNT for o in p.objects)
    assert sum(o.count for o in p.objects) <= MAX_SCENE_OBJECTS


@given(st.sampled_from(SAMPLED), st.integers(0, 5), st.one_of(st.none(), st.integers(1, 30)))
def test_every_contrast_prompt_parses_and_names_only_drawn_words(target: str, seed: int, k: int | None) -> None:
    s = contrast_set(target, k=k, seed=seed)
    assert s.target == target
    assert len(s.prompts) == len(set(s.prompts)) == len(s.kinds)
    assert k is None or len(s) == min(k, len(contrast_candidates(target)))
    assert set(s.kinds) <= set(CONTRAST_KINDS)
    for text in s.prompts:
        _check_prompt(text, target)


@given(st.sampled_from(SAMPLED), st.integers(0, 10_000))
def test_no_contrast_prompt_holds_on_a_scene_of_its_target(target: str, seed: int) -> None:
    """Each contrast prompt contradicts the target: scenes drawn for the target fail all of them
    (checked on the scene truth, not the pixels)."""
    cands = [t for _, t in contrast_candidates(target)]
    rng = np.random.default_rng(seed)
    scene = sample_scene(target, rng)
    results = judge_scenes([scene] * len(cands), cands)
    held = [t for t, r in zip(cands, results) if r.aligned]
    assert not held, f"{target!r}: contrast prompts that its scene satisfies: {held}"


def _kinds(target: str) -> set[str]:
    return {k for k, _ in contrast_candidates(target)}


def test_each_kind_appears_where_it_applies() -> None:
    assert _kinds("three red circles") == {"count", "colour", "shape", "extra"}
    assert _kinds("a big red star") == {"count", "colour", "shape", "size", "extra"}
    assert _kinds("a red circle and a blue square") == {"count", "colour", "shape", "binding", "drop", "extra"}
    assert _kinds("a big red circle and a small red square") == {
        "count", "colour", "shape", "size", "binding", "drop", "extra"}
    assert _kinds("a red circle to the left of a blue square") == {
        "count", "colour", "shape", "binding", "relation", "swap", "drop"}
    # same shape, different colours: the colour exchange is the subject/object swap, kept once
    spatial_same = contrast_set("a red circle above a blue circle").by_kind()
    assert "binding" not in spatial_same and spatial_same["swap"] == ["a blue circle above a red circle"]


@pytest.mark.parametrize("category", PROMPT_CATEGORIES)
def test_kinds_on_sampled_prompts(category: str) -> None:
    expected = {
        "single": {"count", "colour", "shape", "extra"},
        "counting": {"count", "colour", "shape", "extra"},
        "composition": {"count", "colour", "shape", "drop", "extra"},
        "binding": {"count", "colour", "shape", "binding", "drop", "extra"},
        "spatial": {"count", "colour", "shape", "relation", "swap", "drop"},
    }[category]
    for p in sample_prompts(category, 20, seed=11, split="test"):
        assert expected <= _kinds(p), p
        if parse(p).objects[0].size is not None:
            assert "size" in _kinds(p)


def test_exact_sets_of_small_prompts() -> None:
    by = contrast_set("two red circles").by_kind()
    assert by["count"] == ["a red circle", "three red circles", "four red circles"]
    assert by["colour"] == [f"two {c} circles" for c in COLOURS if c != "red"]
    assert by["shape"] == [f"two red {s}" for s in ("squares", "triangles", "stars", "crosses", "diamonds", "rings")]
    assert len(by["extra"]) == len(SHAPES) * len(COLOURS) - 1
    assert "two red circles and a blue square" in by["extra"]
    rel = contrast_set("a green triangle to the right of a purple circle").by_kind()
    assert rel["relation"] == ["a green triangle to the left of a purple circle"]
    assert rel["swap"] == ["a purple circle to the right of a green triangle"]
    assert rel["binding"] == ["a purple triangle to the right of a green circle"]
    assert rel["drop"] == ["a purple circle", "a green triangle"]
    # the flip of the swap says what the target says: never a contrast prompt
    assert "a purple circle to the left of a green triangle" not in contrast_set(
        "a green triangle to the right of a purple circle").prompts
    # counts stay within what a scene holds
    counts = contrast_set("four red circles and four blue stars").by_kind()["count"]
    assert all(sum(o.count for o in parse(t).objects) <= MAX_SCENE_OBJECTS for t in counts)
    assert "six red circles and four blue stars" not in counts


def test_cap_keeps_kinds_balanced_and_is_deterministic() -> None:
    target = "a red circle and a blue square"
    full = Counter(k for k, _ in contrast_candidates(target))
    for k in (3, 6, 12, 20):
        s = contrast_set(target, k=k, seed=4)
        assert s == contrast_set(target, k=k, seed=4)
        got = Counter(s.kinds)
        m = max(got.values())
        # round robin: every kind has min(candidates, m - 1) or min(candidates, m) prompts
        assert all(min(n, m - 1) <= got.get(kd, 0) <= min(n, m) for kd, n in full.items()), (k, got)
        assert set(s.prompts) <= {t for _, t in contrast_candidates(target)}
    assert len(set(contrast_set(target, k=6, seed=4).kinds)) == 6
    assert contrast_set(target, k=6, seed=4) != contrast_set(target, k=6, seed=5)
    # a prompt's draw does not depend on its batch
    batch = contrast_sets(["three red circles", target], k=6, seed=4)
    assert batch[1] == contrast_set(target, k=6, seed=4)
    assert contrast_set(target, k=10_000).prompts == tuple(t for _, t in contrast_candidates(target))


def test_errors() -> None:
    with pytest.raises(ParameterError, match="draw"):
        contrast_set("a red hexagon")
    with pytest.raises(ParameterError, match="prompt"):
        contrast_set("a dog")
    with pytest.raises(ParameterError, match="k:"):
        contrast_set("a red circle", k=0)
    with pytest.raises(ParameterError, match="seed"):
        contrast_set("a red circle", seed=-1)
    with pytest.raises(ParameterError, match=r"prompts\[1\]"):
        contrast_sets(["a red circle", "a red hexagon"])
    with pytest.raises(ParameterError, match="list"):
        contrast_sets("a red circle")  # type: ignore[arg-type]


def test_docstring_examples_run() -> None:
    import doctest

    import textnorm.world.contrast as module

    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0


def test_targets_beyond_the_world_limits_keep_their_own() -> None:
    """A user prompt asking for more than a scene holds still gets its colour and shape variants;
    counts never pass ten (the grammar's largest) and every prompt parses."""
    by = contrast_set("nine red circles").by_kind()
    assert by["count"] == ["seven red circles", "eight red circles"]  # no more objects than it asks
    assert "nine blue circles" in by["colour"] and "nine red stars" in by["shape"]
    for t in contrast_set("ten red circles").prompts:
        assert parse(t).text == t and all(o.count <= 10 for o in parse(t).objects)
