"""The Rust generator against the pure-Python reference (``tests/reference_contrast.py``) on
random prompts, invariants on arbitrary text, and the same output for any thread count."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

import reference_contrast as ref
from reference_contrast_lexicon import compile_lexicon
from reference_contrast_lexicon import dedup_key as ref_dedup_key

import textnorm
from textnorm.contrast import DEFAULT_RULES, RULES, dedup_key

_LEX = compile_lexicon(ref.default_layers())
_FORMS = sorted(_LEX.forms)
_ATTRS = sorted(_LEX.attrs)
_RELATIONS = sorted(_LEX.relations)
_DETS = ["a", "an", "one", "two", "three", "four", "twelve", "twenty", "7", "the", "some", "", "A", "Two"]
_UNKNOWN = ["very", "cute", "realistic", "old", "photo", "of", "with", "sitting"]


def _cap(s: str, how: int) -> str:
    return s.upper() if how == 1 else s[:1].upper() + s[1:] if how == 2 else s


@st.composite
def noun_phrase(draw: st.DrawFn) -> str:
    det = draw(st.sampled_from(_DETS))
    mods = draw(st.lists(st.sampled_from(_ATTRS + _UNKNOWN), max_size=3))
    noun = draw(st.sampled_from(_FORMS))
    return " ".join(w for w in [det, *mods, noun] if w)


@st.composite
def prompt(draw: st.DrawFn) -> str:
    nps = draw(st.lists(noun_phrase(), min_size=1, max_size=4))
    joins = draw(st.lists(st.sampled_from([" and ", ", ", " with ", "  ", " -"] + [f" {r} " for r in _RELATIONS]),
                          min_size=len(nps), max_size=len(nps)))
    body = "".join(n + j for n, j in zip(nps, joins))[: -len(joins[-1])]
    prefix = draw(st.sampled_from(["", "a realistic photo of ", "An image showing ", "\t"]))
    suffix = draw(st.sampled_from(["", ".", "!", " in the snow", " 🐱", "\n"]))
    return _cap(prefix + body + suffix, draw(st.integers(0, 4)))


def _rust(prompts: list[str], **kw: object) -> list[list[tuple[str, str]]]:
    sets = textnorm.contrast(prompts, **kw)  # type: ignore[arg-type]
    return [list(zip(sets[i], sets.rules(i))) for i in range(len(sets))]


@given(st.lists(prompt(), min_size=1, max_size=6), st.sampled_from([None, 1, 3, 10]), st.integers(0, 2**64 - 1))
def test_rust_equals_reference_on_grammar_prompts(prompts: list[str], k: int | None, seed: int) -> None:
    assert _rust(prompts, k=k, seed=seed) == ref.contrast(prompts, k=k, seed=seed)


@given(prompt(), st.lists(st.sampled_from(ref.RULES), min_size=1, max_size=4))
def test_rust_equals_reference_per_rule_subset(p: str, rules: list[str]) -> None:
    assert _rust([p], rules=rules) == ref.contrast([p], rules=rules)


@given(st.lists(st.text(max_size=60), min_size=1, max_size=5))
def test_arbitrary_text_never_fails_and_never_repeats(prompts: list[str]) -> None:
    got = _rust(prompts)
    assert got == ref.contrast(prompts)
    for p, s in zip(prompts, got):
        keys = [dedup_key(x) for x, _ in s]
        assert dedup_key(p) not in keys and len(set(keys)) == len(keys)


@given(st.text(alphabet=st.sampled_from("aAbZé \t\n\r\x0b\x0c\xa0"), max_size=30))
def test_the_shipped_dedup_key_equals_the_reference(text: str) -> None:
    assert dedup_key(text) == ref_dedup_key(text)


def test_the_rule_table_matches_the_reference() -> None:
    assert RULES == ref.RULES and DEFAULT_RULES == ref.DEFAULT_RULES


_SCRIPT = """
import hashlib, json, sys, textnorm
from textnorm import _core
prompts = [f"{i % 9 + 1} red cats to the left of a big wooden chair {i}" for i in range(3000)]
prompts += ["a blue square and a yellow star", "", "three red circles"] * 100
sets = textnorm.contrast(prompts, k=6, seed=11)
print(_core.num_threads(), hashlib.sha256(json.dumps(sets.prompt_lists()).encode()).hexdigest())
"""


def test_same_output_for_any_thread_count() -> None:
    digests = set()
    threads = set()
    for n in ("1", "2", "3"):
        env = {**os.environ, "TEXTNORM_NUM_THREADS": n}
        out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
        used, digest = out.stdout.split()
        threads.add(used)
        digests.add(digest)
    assert threads == {"1", "2", "3"}
    assert len(digests) == 1
    # and the same as the reference, computed here on a slice of the same prompts
    prompts = [f"{i % 9 + 1} red cats to the left of a big wooden chair {i}" for i in range(300)]
    assert _rust(prompts, k=6, seed=11) == ref.contrast(prompts, k=6, seed=11)


_EXTRA = {
    "nouns": {"animal": ["axolotl", ["octopus", "octopi"]], "gadget": ["drone", "robot vacuum"]},
    "synonyms": [["drone", "quadcopter"]],
    "colors": [["mauve", "lilac"], ["red"]],
    "textures": [["glittery"]],
    "relations": [["atop", "beneath"], ["near", "far from"]],
    "symmetric_relations": ["atop"],
}


@given(st.lists(st.sampled_from([
    "two octopi atop a mauve drone", "A lilac axolotl near three robot vacuums", "a glittery red cat atop a dog",
    "an axolotl and a drone", "one robot vacuum beneath two red axolotls", "a quadcopter",
]), min_size=1, max_size=4), st.sampled_from([None, 2]))
def test_rust_equals_reference_with_an_extended_lexicon(prompts: list[str], k: int | None) -> None:
    lexicon = textnorm.Lexicon.from_dict(_EXTRA)
    got = textnorm.contrast(prompts, k=k, seed=4, lexicon=lexicon)
    want = ref.contrast(prompts, k=k, seed=4, layers=[*ref.default_layers(), _EXTRA])
    assert [list(zip(got[i], got.rules(i))) for i in range(len(got))] == want
    assert all(p not in got[i] for i, p in enumerate(prompts))
