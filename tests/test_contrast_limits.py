"""Runaway inputs to the contrast generator: the byte cap on its output, lexicons with many
nouns in one category, and damaged lexicon or TIA2 files (each a TextnormError naming the
argument or the file)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import textnorm
from textnorm import ContrastiveSets, LayoutError, Lexicon, ParameterError, TextnormError
from textnorm.contrast import DEFAULT_MAX_BYTES


def _candidate_bytes(prompts: list[str]) -> int:
    # Without sampling every candidate is kept unless it repeats; these prompts have no repeats.
    sets = textnorm.contrast(prompts)
    return sum(len(s.encode()) for row in sets for s in row)


def test_max_bytes_caps_the_output_and_names_prompts() -> None:
    prompts = ["a red cat above two dogs", "three mice", "a blue square and a yellow star"]
    need = _candidate_bytes(prompts)
    assert textnorm.contrast(prompts, max_bytes=need) == textnorm.contrast(prompts)
    for k in (None, 3):
        with pytest.raises(ParameterError, match=r"^prompts: expected .*max_bytes=") as e:
            textnorm.contrast(prompts, k=k, max_bytes=need - 1)
        assert isinstance(e.value, TextnormError)
    assert DEFAULT_MAX_BYTES == 2**30


def test_a_long_prompt_hits_the_cap_instead_of_filling_memory() -> None:
    # 100,000 characters would write about 160 MB of candidates; a 10 MB cap stops it early.
    long = "a red cat above two dogs " * 4_000
    with pytest.raises(ParameterError, match="prompts: expected .*max_bytes=10000000"):
        textnorm.contrast([long], k=8, max_bytes=10_000_000)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "9", 2**63])
def test_max_bytes_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ParameterError, match="max_bytes: expected an integer"):
        textnorm.contrast(["a cat"], max_bytes=bad)  # type: ignore[arg-type]


def test_a_category_of_100000_nouns_is_handled() -> None:
    # This was quadratic (17 s; 1,000,000 nouns never finished); now linear.
    nouns = [f"critter{i}" for i in range(100_000)]
    lex = Lexicon.from_dict({"nouns": {"animal": nouns}})
    assert lex.num_nouns == Lexicon.default().num_nouns + 100_000
    got = textnorm.contrast(["a cat", "a critter5"], rules=["object"], k=4, seed=1, lexicon=lex)
    assert [len(s) for s in got] == [4, 4]
    assert all(s.startswith("a ") for row in got for s in row)


def _deep_json(depth: int) -> str:
    return '{"nouns": ' + "[" * depth + "]" * depth + "}"


def test_damaged_lexicon_files_name_the_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text(_deep_json(100_000))
    with pytest.raises(ParameterError, match="path: .*deep.json.*nested too deeply"):
        Lexicon.from_file(deep)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b'{"nouns": {"animal": ["caf\xe9"]}}')
    with pytest.raises(ParameterError, match="path: expected UTF-8 text in .*binary.json"):
        Lexicon.from_file(binary)
    if sys.version_info >= (3, 11):
        toml = tmp_path / "deep.toml"
        toml.write_text("nouns = " + "[" * 100_000 + "]" * 100_000 + "\n")
        with pytest.raises(ParameterError, match="path: .*deep.toml"):
            Lexicon.from_file(toml)
        bad_toml = tmp_path / "binary.toml"
        bad_toml.write_bytes(b"colors = [['\xff']]\n")
        with pytest.raises(ParameterError, match="path: expected UTF-8 text in .*binary.toml"):
            Lexicon.from_file(bad_toml)


def test_damaged_lexicon_data_names_the_lexicon() -> None:
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(ParameterError, match="lexicon: .*nested too deeply"):
        Lexicon.from_dict({"nouns": {"animal": nested}})
    with pytest.raises(ParameterError, match="lexicon: .*JSON-like"):
        Lexicon.from_dict({"nouns": {"animal": {"cat"}}})
    # nested below Python's limit but beyond the core's: still a ParameterError
    with pytest.raises(ParameterError, match="lexicon"):
        Lexicon.from_dict(json.loads(_deep_json(500)))


def test_damaged_tia2_set_files_name_the_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"a cat": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(LayoutError, match="path: .*deep.json.*nested too deeply"):
        ContrastiveSets.from_json(deep)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b'{"a cat": ["two cats\xff"]}')
    with pytest.raises(LayoutError, match="path: expected UTF-8 text in .*binary.json"):
        ContrastiveSets.from_json(binary)
