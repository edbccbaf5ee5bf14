"""Rule-based contrastive sets: the TIA2 quality bars, the rules on the synthetic world's
prompts, inflection, and the ContrastiveSets API (CSR view, TIA2 JSON)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import full_tia2

import textnorm
from textnorm import ContrastiveSets, LayoutError, Lexicon, ParameterError


def _and_free(s: str) -> str:
    # The authors' template left out "and" between two counted objects in some lines.
    return re.sub(r" and ", " ", s)


def test_counting_quality_bar(tia2_root: Path) -> None:
    data = json.loads((tia2_root / "prompts" / "prompt_set_counting.json").read_text())
    if full_tia2() is not None:
        assert len(data) == 150
    sets = textnorm.contrast(list(data), rules=["count"])
    for i, (target, want) in enumerate(data.items()):
        assert set(sets[i]) == set(want), target
        assert len(sets[i]) == len(want)


def test_composition_quality_bar(tia2_root: Path) -> None:
    data = json.loads((tia2_root / "prompts" / "prompt_set_composition.json").read_text())
    if full_tia2() is not None:
        assert len(data) == 300
    assert len(data) > 0
    sets = textnorm.contrast(list(data), rules=["drop", "joint_count", "hybrid"])
    single = textnorm.contrast(list(data), rules=["drop", "count", "hybrid"])
    for i, (target, want) in enumerate(data.items()):
        # `count` keeps the authors' prompts that change one count (subject first), no others
        assert single[i] == [want[0], want[1], want[2], want[5], want[3], want[6], want[10], want[11]], target
        assert {_and_free(s) for s in sets[i]} == {_and_free(s) for s in want[:12]}, target
        assert len(sets[i]) == 12
        # "and" is written everywhere between the two objects.
        assert all(" and " in s for s in sets[i][2:10]), target


def _one(prompt: str, rules: list[str]) -> list[str]:
    return textnorm.contrast([prompt], rules=rules)[0]


def test_count_agreement_and_irregular_plurals() -> None:
    assert _one("an apple", ["count"]) == ["two apples", "three apples"]
    assert _one("two mice", ["count"])[0] == "a mouse"
    pairs = {
        "mouse": "mice", "person": "people", "child": "children", "fish": "fish", "sheep": "sheep",
        "wolf": "wolves", "knife": "knives", "leaf": "leaves", "goose": "geese", "tooth": "teeth",
        "foot": "feet", "man": "men", "woman": "women", "cactus": "cacti", "bus": "buses",
        "box": "boxes", "baby": "babies", "deer": "deer",
    }  # fmt: skip
    for s, p in pairs.items():
        got = _one(f"a photo of one {s}", ["count"])
        assert got == [f"a photo of two {p}", f"a photo of three {p}"], s
        assert _one(f"three {p}", ["count"])[0].endswith(f" {s}"), p
    # one count at a time, the subject's first; digits stay digits
    assert _one("an umbrella and 1 cat", ["count"]) == [
        "two umbrellas and 1 cat", "three umbrellas and 1 cat", "an umbrella and 2 cats", "an umbrella and 3 cats"
    ]
    # joint order: (2, 1) then (1, 2) over the window indices
    assert _one("an umbrella and 1 cat", ["joint_count"])[:3] == [
        "two umbrellas and 1 cat", "an umbrella and 2 cats", "two umbrellas and 2 cats"
    ]
    # digits stay digits, counts never drop below one, twenty-plus in digits
    assert _one("2 dogs", ["count"]) == ["1 dog", "3 dogs", "4 dogs"]
    assert _one("twenty cats", ["count"])[-1] == "22 cats"


def test_count_changes_one_count_never_two() -> None:
    assert _one("two mice on a table", ["count"]) == [
        "a mouse on a table", "three mice on a table", "four mice on a table",
        "two mice on two tables", "two mice on three tables",
    ]
    words = ["a", "two", "three", "four", "five", "six"]
    got = _one("two cats and four dogs", ["count"])
    want = [f"{words[a - 1]} cat{'s' * (a > 1)} and four dogs" for a in (1, 3, 4)]
    want += [f"two cats and {words[b - 1]} dogs" for b in (2, 3, 5, 6)]
    assert got == want


def test_joint_counts_cover_the_windows() -> None:
    got = _one("two cats and four dogs", ["joint_count"])
    combos = {(a, b) for a in range(1, 5) for b in range(2, 7)} - {(2, 4)}
    assert len(got) == len(combos)
    words = ["a", "two", "three", "four", "five", "six"]
    want = set()
    for a, b in combos:
        cat = f"{words[a - 1]} cat" + ("s" if a > 1 else "")
        dog = f"{words[b - 1]} dog" + ("s" if b > 1 else "")
        want.add(f"{cat} and {dog}")
    assert set(got) == want


WORLD = [
    "three red circles",
    "a blue square and a yellow star",
    "a green triangle to the left of a purple circle",
    "a big red star above a small blue hexagon",
]


def test_every_rule_works_on_world_prompts() -> None:
    sets = textnorm.contrast(WORLD)
    rules = [set(sets.rules(i)) for i in range(len(WORLD))]
    assert rules[0] == {"count", "object", "color"}
    assert rules[1] == {"drop", "count", "hybrid", "object", "color", "binding"}
    assert rules[2] == {"drop", "count", "hybrid", "object", "color", "binding", "relation", "swap"}
    assert rules[3] >= {"drop", "count", "object", "color", "attribute", "binding", "relation", "swap"}
    assert "a blue circle to the left of a purple circle" not in sets[2]  # colour replaced, not target
    assert _one(WORLD[3], ["relation", "swap"]) == [
        "a big red star below a small blue hexagon",
        "a small blue hexagon above a big red star",
    ]
    assert _one(WORLD[1], ["binding"]) == ["a yellow square and a blue star"]
    assert _one(WORLD[0], ["attribute"]) == []
    assert _one("a tiny cyan cross", ["attribute"]) == ["a big cyan cross"]
    shapes = {"circle", "square", "triangle", "star", "cross", "hexagon", "diamond", "heart", "ring", "pentagon"}
    objs = _one("a red heart", ["object"])
    assert {s.split()[-1] for s in objs} == shapes - {"heart"}
    assert _one("a red cube and a blue ball", ["binding"]) == ["a blue cube and a red ball"]
    assert _one("a cat on a dog", ["swap"]) == ["a dog on a cat"]
    for a, b in [("left of", "right of"), ("above", "below"), ("on top of", "under"),
                 ("in front of", "behind"), ("inside", "outside"), ("under", "on top of")]:
        assert _one(f"a cat {a} a box", ["relation"]) == [f"a cat {b} a box"]
    assert _one("a cat next to a dog", ["swap"]) == []  # symmetric: swapping says the same


def test_case_punctuation_and_articles_kept() -> None:
    assert _one("An apple and a Dog.", ["drop"]) == ["An apple.", "A Dog."]
    assert _one("A cat on a dog!", ["swap"]) == ["A dog on a cat!"]
    assert _one("  An orange cat,  please ", ["color"])[0] == "  A red cat,  please "
    assert all(s.startswith(("a ", "an ")) for s in _one("an apple", ["object"]))
    assert "an orange" in _one("a pear", ["object"])
    assert _one("A photo of TWO CATS", ["count"])[0] == "A photo of A CAT"


def test_never_target_never_duplicates_and_empty_sets() -> None:
    prompts = ["a cat and a cat", "A CAT", "hello world", "", "   ", "a gray cat", "a grey cat"]
    sets = textnorm.contrast(prompts)
    for t, s in zip(prompts, sets):
        keys = [" ".join(x.lower().split()) for x in s]
        assert " ".join(t.lower().split()) not in keys
        assert len(keys) == len(set(keys))
    assert sets.empty() == [2, 3, 4]
    assert not any("grey" in s for s in sets[5])


def test_empty_unicode_nul_and_10k_char_prompts_give_sets_without_error() -> None:
    long = ("a red circle above two blue squares, " * 300)[:10_000]
    prompts = ["", " \t\n ", "猫と犬 🐱", "ein Hund und eine Katze", long, "a" * 10_000, "3" * 10_000,
               "a 999999 cats", "a\x00cat", "\u00a0two\u00a0cats"]
    sets = textnorm.contrast(prompts, k=8)
    assert len(sets) == len(prompts)
    assert len(sets[4]) == 8
    assert sets[0] == [] and sets[1] == []


def test_k_sample_is_seeded_ordered_subset() -> None:
    full = _one(WORLD[3], None)  # type: ignore[arg-type]
    assert len(full) > 40
    a = textnorm.contrast([WORLD[3]] * 3, k=8, seed=5)
    assert a[0] == a[1] == a[2] and len(a[0]) == 8
    pos = [full.index(s) for s in a[0]]
    assert pos == sorted(pos)
    b = textnorm.contrast([WORLD[3]], k=8, seed=6)
    assert b[0] != a[0]
    assert textnorm.contrast([WORLD[3]], k=1000)[0] == full


def test_csr_view_feeds_confidence() -> None:
    sets = textnorm.contrast(WORLD + ["nothing here"], k=5, seed=1)
    flat, off = sets.flat, sets.offsets
    assert off.dtype == np.int64 and off[0] == 0 and off[-1] == len(flat) and len(off) == len(sets) + 1
    assert sets.prompt_lists() == [[t, *s] for t, s in zip(sets.targets, sets)]
    assert [flat[o] for o in off[:-1]] == WORLD + ["nothing here"]
    rng = np.random.default_rng(0)
    values = rng.normal(size=len(flat))
    got = textnorm.confidence(values, offsets=off, scale=1.0, mode="minmax")
    for b in range(len(sets)):
        row = values[off[b] : off[b + 1]]
        z = (row - row.min()) / (row.max() - row.min()) if row.max() > row.min() else np.zeros_like(row)
        want = np.exp(z)[0] / np.exp(z).sum()
        assert got[b] == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError):
        sets.offsets[0] = 1


def test_sets_api_and_json_roundtrip(tmp_path: Path) -> None:
    sets = textnorm.contrast(["two cats", "a dog on a box", "zzz"], rules=["count", "swap"])
    assert len(sets) == 3 and sets[-1] == [] and sets.rules(1)[-1] == "swap"
    assert set(sets.rules(0)) == {"count"}
    with pytest.raises(IndexError):
        sets[3]
    with pytest.raises(TypeError):
        sets["0"]  # type: ignore[index]
    path = tmp_path / "sets.json"
    sets.to_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["two cats"] == sets[0]
    back = ContrastiveSets.from_json(path)
    assert back == sets and back.rules(0) == ["json"] * len(sets[0])
    made = ContrastiveSets(["x"], [["y", "z"]], rules=[["r1", "r2"]])
    assert made[0] == ["y", "z"] and made.rules(0) == ["r1", "r2"]
    assert "ContrastiveSets(prompts=1" in repr(made)
    with pytest.raises(LayoutError, match="sets"):
        ContrastiveSets(["x"], [])
    with pytest.raises(LayoutError, match="rules"):
        ContrastiveSets(["x"], [["y"]], rules=[["a", "b"]])
    with pytest.raises(LayoutError, match="repeated targets"):
        ContrastiveSets(["x", "x"], [["y"], ["z"]]).to_json(tmp_path / "d.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(LayoutError, match="JSON object"):
        ContrastiveSets.from_json(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text("{")
    with pytest.raises(LayoutError, match="invalid JSON"):
        ContrastiveSets.from_json(tmp_path / "bad2.json")


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ParameterError, match="rules: expected names among"):
        textnorm.contrast(["a cat"], rules=["count", "colour"])
    with pytest.raises(ParameterError, match="rules"):
        textnorm.contrast(["a cat"], rules=[])
    for k in (0, -1, True, 2.5):
        with pytest.raises(ParameterError, match="k: expected"):
            textnorm.contrast(["a cat"], k=k)  # type: ignore[arg-type]
    for seed in (-1, 2**64, "1"):
        with pytest.raises(ParameterError, match="seed: expected"):
            textnorm.contrast(["a cat"], seed=seed)  # type: ignore[arg-type]
    with pytest.raises(LayoutError, match="prompts: expected a sequence of str, got str"):
        textnorm.contrast("a cat")
    with pytest.raises(LayoutError, match="index 1"):
        textnorm.contrast(["a cat", 3])  # type: ignore[list-item]
    with pytest.raises(ParameterError, match="lexicon"):
        textnorm.contrast(["a cat"], lexicon={"nouns": {}})  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="prompts: expected valid Unicode"):
        textnorm.contrast(["a \ud800 cat"])
    assert textnorm.contrast(["a cat"], rules="count")[0] == ["two cats", "three cats"]


def test_lexicon_files_extend_or_replace(tmp_path: Path) -> None:
    assert Lexicon.default().num_nouns >= 150
    j = tmp_path / "lex.json"
    j.write_text(json.dumps({"nouns": {"animal": ["axolotl", ["octopus", "octopuses"]]}, "colors": [["mauve"]]}))
    lex = Lexicon.from_file(j)
    assert lex.num_nouns == Lexicon.default().num_nouns + 2
    got = textnorm.contrast(["two octopuses"], rules=["count"], lexicon=lex)[0]
    assert got == ["an octopus", "three octopuses", "four octopuses"]
    assert "a mauve cat" in textnorm.contrast(["a red cat"], rules=["color"], lexicon=lex)[0]
    only = Lexicon.from_file(j, extend=False)
    assert only.num_nouns == 2
    assert textnorm.contrast(["a cat"], lexicon=only)[0] == []
    assert textnorm.contrast(["an axolotl"], rules=["object"], lexicon=only)[0] == ["an octopus"]
    t = tmp_path / "lex.toml"
    t.write_text('relations = [["atop", "beneath"]]\n\n[nouns]\nshape = ["octagon"]\n')
    if sys.version_info >= (3, 11):
        lt = Lexicon.from_file(t)
        assert textnorm.contrast(["a red octagon atop a blue star"], rules=["relation"], lexicon=lt)[0] == [
            "a red octagon beneath a blue star"
        ]
    with pytest.raises(ParameterError, match="path"):
        Lexicon.from_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"nounz": {}}')
    with pytest.raises(ParameterError, match="lexicon: expected keys"):
        Lexicon.from_file(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text('{"nouns": {"x": [["a", "b", "c"]]}}')
    with pytest.raises(ParameterError, match="lexicon"):
        Lexicon.from_file(tmp_path / "bad2.json")
    (tmp_path / "bad3.json").write_text("{")
    with pytest.raises(ParameterError, match="valid JSON"):
        Lexicon.from_file(tmp_path / "bad3.json")
    with pytest.raises(ParameterError, match="mapping"):
        Lexicon.from_dict([])  # type: ignore[arg-type]
