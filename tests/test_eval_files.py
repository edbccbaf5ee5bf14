"""Hostile label files (issue 14, items 5 and 13): the TIA2 loader and the JSONL reader check
types instead of coercing them, and every failure (junk values, deep nesting, invalid UTF-8,
malformed score files) is one TextnormError naming the argument and the file, line or key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from textnorm import TextnormError
from textnorm.eval.jsonl import load_jsonl
from textnorm.eval.tia2 import authors_reference, load_tia2, load_tia2_prompt_sets, load_tia2_scores

DEEP = "[" * 100_000 + "]" * 100_000
BAD_UTF8 = b'{"image_0.jpg": {"caption": "a \xff cat"}}'
METRIC_NAMES = ("auroc", "auprc", "ap5", "ap10", "ap25", "spearman", "kendall")
GOOD_ENTRY = {"image": "image_0.jpg", "caption": "a cat", "human_labels": [1, 0, 1]}


def _tia2(root: Path, *, sets: Any = None, labels: Any = None, scores: Any = None, raw: dict[str, bytes] | None = None) -> Path:
    """A one-category TIA2 folder; `raw` overrides a file's bytes."""
    files = {
        "prompts/prompt_set_counting.json": {"a cat": ["two cats", "a dog"]} if sets is None else sets,
        "human_annotations/human_labels_counting.json": {"image_0.jpg": GOOD_ENTRY} if labels is None else labels,
        "alignment_scores/alignment_scores_counting.json": (
            {"a cat": {"human": 0.5, "clip": dict.fromkeys(METRIC_NAMES, 0.5)}}
            if scores is None else scores
        ),
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = (raw or {}).get(rel)
        path.write_bytes(data if data is not None else json.dumps(content).encode())
    return root


LABELS_FILE = "human_annotations/human_labels_counting.json"
SETS_FILE = "prompts/prompt_set_counting.json"
SCORES_FILE = "alignment_scores/alignment_scores_counting.json"

TIA2_CASES = [
    # (what is wrong, files, which file the message names, what else it must say)
    ("labels as a string", {"labels": {"image_0.jpg": {**GOOD_ENTRY, "human_labels": "101"}}}, LABELS_FILE,
     r"\['image_0.jpg'\]\.human_labels: expected a list of labels -1/0/1, got str '101'"),
    ("fractional labels", {"labels": {"image_0.jpg": {**GOOD_ENTRY, "human_labels": [0.9, 0.9, 1.7]}}}, LABELS_FILE,
     r"human_labels\[0\]: expected a label -1, 0 or 1, got 0.9"),
    ("boolean label", {"labels": {"image_0.jpg": {**GOOD_ENTRY, "human_labels": [True, 0, 1]}}}, LABELS_FILE,
     r"human_labels\[0\]: expected a label -1, 0 or 1, got True"),
    ("label 2", {"labels": {"image_0.jpg": {**GOOD_ENTRY, "human_labels": [2, 0, 1]}}}, LABELS_FILE,
     r"human_labels\[0\]: expected a label -1, 0 or 1, got 2"),
    ("null image", {"labels": {"image_0.jpg": {**GOOD_ENTRY, "image": None}}}, LABELS_FILE,
     r"\['image_0.jpg'\]\.image: expected a string, got NoneType None"),
    ("null caption", {"labels": {"image_0.jpg": {**GOOD_ENTRY, "caption": None}}}, LABELS_FILE,
     r"\.caption: expected a string, got NoneType"),
    ("missing labels", {"labels": {"image_0.jpg": {"caption": "a cat"}}}, LABELS_FILE,
     r"lacks the required field 'human_labels'"),
    ("entry is a list", {"labels": {"image_0.jpg": [1, 0, 1]}}, LABELS_FILE,
     r"expected an object with caption and human_labels, got list"),
    ("annotations are a list", {"labels": [GOOD_ENTRY]}, LABELS_FILE, r"expected a JSON object, got list"),
    ("contrast value a string", {"sets": {"a cat": "two airplanes"}}, SETS_FILE,
     r"\['a cat'\]: expected a list of strings, got str 'two airplanes'"),
    ("contrast item a number", {"sets": {"a cat": ["two cats", 3]}}, SETS_FILE,
     r"\['a cat'\]\[1\]: expected a string, got int 3"),
    ("deep JSON in labels", {"raw": {LABELS_FILE: DEEP.encode()}}, LABELS_FILE, r"nests JSON arrays or objects too deeply"),
    ("deep JSON in sets", {"raw": {SETS_FILE: DEEP.encode()}}, SETS_FILE, r"too deeply"),
    ("invalid UTF-8", {"raw": {LABELS_FILE: BAD_UTF8}}, LABELS_FILE,
     rf"is not valid UTF-8 \(byte {BAD_UTF8.index(0xFF)}: invalid start byte\)"),
    ("invalid JSON", {"raw": {SETS_FILE: b"{oops"}}, SETS_FILE, r"is not valid JSON \(Expecting property name"),
]


@pytest.mark.parametrize(("case", "files", "named", "needle"), TIA2_CASES, ids=[c[0] for c in TIA2_CASES])
def test_tia2_loader_refuses_junk_naming_file_and_key(
    tmp_path: Path, case: str, files: dict[str, Any], named: str, needle: str
) -> None:
    root = _tia2(tmp_path, **files)
    with pytest.raises(TextnormError) as info:
        load_tia2(root, "counting")
    message = str(info.value)
    assert message.startswith("root: ") and str(root / named) in message, message
    assert re.search(needle, message), message


SCORE_CASES = [
    ("a list", [1, 2], r"expected a JSON object, got list"),
    ("empty", {}, r"expected per-prompt scores, got an empty object"),
    ("row not an object", {"a cat": 3}, r"\['a cat'\]: expected an object \{model: \{metric: value\}\}, got int"),
    ("metric missing", {"a cat": {"clip": {"auroc": 0.5}}}, r"\['a cat'\]\['clip'\]\['auprc'\]: expected a number, got 'absent'"),
    ("metric a string", {"a cat": {"clip": dict.fromkeys(METRIC_NAMES, "x")}},
     r"\['clip'\]\['auroc'\]: expected a number, got 'x'"),
    ("models differ", {"a": {"clip": dict.fromkeys(METRIC_NAMES, 1)}, "b": {"blip": dict.fromkeys(METRIC_NAMES, 1)}}, r"\['b'\]: expected the models \['clip'\] of the first prompt"),
]


@pytest.mark.parametrize(("case", "scores", "needle"), SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_malformed_score_files_are_refused_naming_the_file(tmp_path: Path, case: str, scores: Any, needle: str) -> None:
    root = _tia2(tmp_path, scores=scores)
    for call in (lambda: load_tia2_scores(root, "counting"), lambda: authors_reference(root, "counting")):
        with pytest.raises(TextnormError) as info:
            call()
        assert str(root / SCORES_FILE) in str(info.value) and re.search(needle, str(info.value)), str(info.value)


def test_well_formed_files_still_load(tmp_path: Path) -> None:
    root = _tia2(tmp_path)
    bench = load_tia2(root, "counting")
    assert bench.labels("a cat").tolist() == [[1, 0, 1]] and bench.contrast("a cat") == ["two cats", "a dog"]
    assert load_tia2_prompt_sets(root, "counting") == {"a cat": ["two cats", "a dog"]}
    assert authors_reference(root, "counting")["models"]["clip"]["auroc"] == 0.5  # type: ignore[index]


JSONL_CASES = [
    ('{"prompt": "x", "image": "a.png", "labels": "101"}', r":1: labels: expected a list of labels -1/0/1, got str '101'"),
    ('{"prompt": "x", "image": "a.png", "labels": [0.9, 0.9, 1.7]}', r":1: labels\[0\]: expected a label -1, 0 or 1, got 0.9"),
    ('{"prompt": "x", "image": "a.png", "labels": [1.0]}', r":1: labels\[0\]: expected a label -1, 0 or 1, got 1.0"),
    ('{"prompt": "x", "image": null, "labels": [1]}', r":1: image: expected a string, got NoneType None"),
    ('{"prompt": null, "image": "a.png", "labels": [1]}', r":1: prompt: expected a string, got NoneType None"),
    ('{"prompt": 7, "image": "a.png", "labels": [1]}', r":1: prompt: expected a string, got int 7"),
    ('{"prompt": "x", "image": "a.png", "labels": [1], "contrast": "two airplanes"}',
     r":1: contrast: expected a list of strings, got str 'two airplanes'"),
    ('{"prompt": "x", "image": "a.png", "labels": [1], "contrast": ["y", null]}', r":1: contrast\[1\]: expected a string"),
    ('{"prompt": "x", "image": "a.png", "labels": [1], "category": null}', r":1: category: expected a string"),
    ('{"prompt": "x", "image": "a.png"}', r":1 lacks the required field 'labels'"),
    ("[1, 2]", r":1: expected a JSON object, got list"),
    ("{oops", r":1 is not valid JSON"),
    (DEEP, r":1 nests JSON arrays or objects too deeply"),
]


@pytest.mark.parametrize(("line", "needle"), JSONL_CASES, ids=[c[0][:40] for c in JSONL_CASES])
def test_jsonl_reader_refuses_junk_naming_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    path = tmp_path / "labels.jsonl"
    good = '{"prompt": "a", "image": "b.png", "labels": [1, 0]}'
    path.write_text(line + "\n")
    with pytest.raises(TextnormError) as info:
        load_jsonl(path)
    assert str(info.value).startswith(f"path: {path}") and re.search(needle, str(info.value)), str(info.value)
    path.write_text(good + "\n\n" + line + "\n")  # the line number is the file's, blank lines counted
    with pytest.raises(TextnormError, match=re.escape(f"{path}:3")):
        load_jsonl(path)


def test_jsonl_invalid_utf8_names_the_file_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    data = b'{"prompt": "a \xc3\x28", "image": "b.png", "labels": [1]}\n'
    path.write_bytes(data)
    where = rf"path: {re.escape(str(path))} is not valid UTF-8 \(byte {data.index(0xC3)}: invalid continuation byte\)"
    with pytest.raises(TextnormError, match=where):
        load_jsonl(path)


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8))
def test_any_json_value_in_any_jsonl_field_loads_or_raises_a_textnorm_error(value: Any) -> None:
    """Fuzz: whatever JSON value stands in each field, the reader returns or raises TextnormError."""
    import tempfile

    base = {"prompt": "x", "image": "a.png", "labels": [1, 0], "contrast": ["y"], "category": "c"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.jsonl"
        for key in base:
            path.write_text(json.dumps({**base, key: value}) + "\n")
            try:
                bench = load_jsonl(path)
            except TextnormError as exc:
                assert str(exc).startswith("path: "), str(exc)
            else:
                (only,) = bench.values()
                assert all(isinstance(p, str) for p in only.prompts)
