"""TIA2 loader and JSONL loader: against the authors' files (full when ../shared/tia2 is present,
else the committed excerpt), and their error paths."""

from __future__ import annotations

import doctest
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import EXCERPT_TIA2, full_tia2

from textnorm import LayoutError, ParameterError
from textnorm.eval import benchmark as benchmark_module
from textnorm.eval import tia2 as tia2_module
from textnorm.eval.benchmark import label_mean, majority_vote
from textnorm.eval.jsonl import load_jsonl
from textnorm.eval.tia2 import CATEGORIES, load_tia2, load_tia2_prompt_sets, load_tia2_scores

# The authors' release: annotated images and scored prompts per category.
FULL_COUNTS = {"counting": (7500, 146), "composition": (15000, 295), "comprehensive": (5000, 84)}


@pytest.mark.parametrize("category", CATEGORIES)
def test_loader_reproduces_the_authors_human_field_and_scored_prompts(tia2_root: Path, category: str) -> None:
    bench = load_tia2(tia2_root, category)
    scores = load_tia2_scores(tia2_root, category)
    raw = json.loads((tia2_root / f"human_annotations/human_labels_{category}.json").read_text())
    assert bench.n_images == len(raw)
    assert set(bench.scored_prompts) == set(scores)
    for p in bench.prompts:
        assert bench.labels(p).shape == (50, 3)
        assert bench.images(p)[0].name.startswith("image_")
    for p in scores:
        # majority vote recomputed here from the raw rows: at least 2 of 3 labels are 1
        rows = [v["human_labels"] for v in raw.values() if v["caption"] == p]
        expected = np.mean([sum(x == 1 for x in r) >= 2 for r in rows])
        assert bench.human(p) == pytest.approx(scores[p]["human"], abs=1e-12)
        assert bench.human(p) == pytest.approx(expected, abs=1e-12)
    if full_tia2() is not None and tia2_root == full_tia2():
        assert (bench.n_images, len(bench.scored_prompts)) == FULL_COUNTS[category]
    else:
        assert (bench.n_images, len(bench.scored_prompts)) == (500, 9)


@pytest.mark.parametrize("category", CATEGORIES)
def test_contrast_comes_from_the_prompt_file_and_unscored_prompts_are_one_class(tia2_root: Path, category: str) -> None:
    bench = load_tia2(tia2_root, category)
    sets = load_tia2_prompt_sets(tia2_root, category)
    for p in bench.prompts:
        assert bench.contrast(p) == sets[p]
        assert bench.prompt_list(p)[0] == p and p not in bench.prompt_list(p)[1:]
        assert len(set(bench.prompt_list(p))) == len(bench.prompt_list(p))
    unscored = set(bench.prompts) - set(bench.scored_prompts)
    assert unscored, "the excerpt keeps at least one left-out prompt per category"
    for p in unscored:
        assert len(set(bench.majority(p).tolist())) == 1


@pytest.mark.parametrize("category", CATEGORIES)
def test_kendall_target_tie_structure_matches_the_authors(tia2_root: Path, category: str) -> None:
    """Evidence for the Kendall/Spearman target: with model scores free of ties, tau-b * sqrt(n0 *
    (n0 - n2)) = C - D is an integer, and n2 (pairs tied in the target) depends only on the
    target's ties. Counting a missing label as 0.5 makes this hold for every scored prompt of
    BLIP-2 and ImageReward (CLIP's released scores contain ties, PickScore one prompt); the binary
    majority label as target does not."""
    bench = load_tia2(tia2_root, category)
    scores = load_tia2_scores(tia2_root, category)

    def integral(target: np.ndarray, tau: float) -> bool:
        n0 = target.size * (target.size - 1) // 2
        _, counts = np.unique(target, return_counts=True)
        n2 = int(np.sum(counts * (counts - 1) // 2))
        v = tau * math.sqrt(n0 * (n0 - n2))
        return abs(v - round(v)) < 1e-6

    for model in ("blip2", "imagereward"):
        assert all(integral(bench.targets(p), scores[p][model]["kendall"]) for p in scores)
    binary_ok = sum(integral(bench.majority(p).astype(float), scores[p]["blip2"]["kendall"]) for p in scores)
    assert binary_ok < len(scores) / 2
    if category == "composition":  # many missing labels: dropping them breaks the tie structure
        drop = label_mean
        ok = sum(integral(drop(bench.labels(p), missing="drop"), scores[p]["blip2"]["kendall"]) for p in scores)
        assert ok < len(scores)


@pytest.mark.parametrize("category", CATEGORIES)
def test_authors_auroc_values_fit_the_majority_label_counts(tia2_root: Path, category: str) -> None:
    """AUROC * n_pos * n_neg must be a multiple of 1/2 (pairs count 1 or 1/2) for every model."""
    bench = load_tia2(tia2_root, category)
    for p, row in load_tia2_scores(tia2_root, category).items():
        y = bench.majority(p)
        pairs = y.sum() * (~y).sum()
        for model, vals in row.items():
            if isinstance(vals, dict):
                v = 2 * vals["auroc"] * pairs
                assert abs(v - round(v)) < 1e-6, (p, model)


def _attainable_ap(k: int, *, per_positive: bool) -> set[float]:
    """Every AP@K value a tie-free ranking can produce, normalised by the positives in the top K
    (``per_positive``) or by K."""
    out = set()
    for m in range(k + 1):
        for ranks in itertools.combinations(range(1, k + 1), m):
            total = sum((i + 1) / r for i, r in enumerate(ranks))
            out.add(round(total / (m if per_positive else k), 9) if m else 0.0)
    return out


@pytest.mark.parametrize("k", [5, 10])
def test_authors_ap_at_k_is_normalised_by_positives_in_the_top_k(tia2_root: Path, k: int) -> None:
    """Every released AP@5 / AP@10 of every model but CLIP (whose released scores contain ties)
    is a value AP@K can take when divided by the positives among the top K; dividing by K
    explains far fewer."""
    ours, by_k = _attainable_ap(k, per_positive=True), _attainable_ap(k, per_positive=False)
    values = [v[f"ap{k}"] for cat in CATEGORIES for row in load_tia2_scores(tia2_root, cat).values()
              for model, v in row.items() if isinstance(v, dict) and model != "clip"]
    assert all(round(v, 9) in ours for v in values)
    assert sum(round(v, 9) in by_k for v in values) < 0.8 * len(values)


def test_label_rules_by_hand() -> None:
    lab = np.array([[1, 1, 0], [-1, 1, 1], [-1, 1, 0], [0, 0, -1], [-1, -1, -1]])
    assert majority_vote(lab).tolist() == [True, True, False, False, False]
    assert label_mean(lab).tolist() == pytest.approx([2 / 3, 2.5 / 3, 1.5 / 3, 0.5 / 3, 0.5])
    assert label_mean(lab, missing="drop").tolist() == pytest.approx([2 / 3, 1.0, 0.5, 0.0, 0.5])
    with pytest.raises(ParameterError, match="missing"):
        label_mean(lab, missing="zero")


def test_missing_images_give_one_error_with_count_and_folder(tia2_root: Path, tmp_path: Path) -> None:
    bench = load_tia2(tia2_root, "counting")
    (tmp_path / "counting").mkdir()
    some = bench.images(bench.prompts[0])[:3]
    for p in some:
        (tmp_path / "counting" / p.name).write_bytes(b"x")
    with pytest.raises(ParameterError, match=rf"{bench.n_images - 3} of {bench.n_images} images .* under {tmp_path}"):
        load_tia2(tia2_root, "counting", tmp_path)
    lazy = load_tia2(tia2_root, "counting", tmp_path, require_images=False)
    assert lazy.images(bench.prompts[0])[0] == tmp_path / "counting" / some[0].name
    with pytest.raises(ParameterError, match="needs its images"):
        bench.check_images()


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        ({"category": "colour"}, ParameterError, "category"),
        ({"category": "counting", "root": "/nonexistent"}, ParameterError, "prompt set file"),
        ({"category": "counting", "images_dir": "/nonexistent"}, ParameterError, "images_dir"),
    ],
)
def test_loader_errors(tia2_root: Path, kwargs: dict, error: type, needle: str) -> None:
    kwargs = {"root": tia2_root, **kwargs}
    with pytest.raises(error, match=needle):
        load_tia2(**kwargs)


def test_loader_rejects_a_caption_outside_the_prompt_set(tmp_path: Path) -> None:
    for sub in ("prompts", "human_annotations"):
        (tmp_path / sub).mkdir()
    (tmp_path / "prompts/prompt_set_counting.json").write_text(json.dumps({"a cat": ["two cats"]}))
    bad = {"image_0_0_0.jpg": {"image": "image_0_0_0.jpg", "caption": "a dog", "human_labels": [1, 1, 1]}}
    (tmp_path / "human_annotations/human_labels_counting.json").write_text(json.dumps(bad))
    with pytest.raises(LayoutError, match="absent from the counting prompt set"):
        load_tia2(tmp_path, "counting")
    (tmp_path / "human_annotations/human_labels_counting.json").write_text("{not json")
    with pytest.raises(LayoutError, match="not valid JSON"):
        load_tia2(tmp_path, "counting")


def test_bench_unknown_prompt_raises(tia2_root: Path) -> None:
    with pytest.raises(ParameterError, match="prompt"):
        load_tia2(tia2_root, "counting").labels("a photo of nothing")


def test_jsonl_round_trip(tmp_path: Path) -> None:
    lines = [
        {"prompt": "two cubes", "image": "a.png", "labels": [1, 1, 0], "category": "counting",
         "contrast": ["one cube", "three cubes", "two cubes"]},
        {"prompt": "two cubes", "image": "b.png", "labels": [0, 0]},  # category default differs
        {"prompt": "two cubes", "image": "c.png", "labels": [1], "category": "counting"},
        {"prompt": "a red ball", "image": "/abs/d.png", "labels": [0, -1, 1], "category": "counting"},
    ]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    out = load_jsonl(path)
    assert list(out) == ["counting", "default"]
    b = out["counting"]
    assert b.prompts == ["two cubes", "a red ball"]
    assert b.prompt_list("two cubes") == ["two cubes", "one cube", "three cubes"]
    assert b.labels("two cubes").tolist() == [[1, 1, 0], [1, -1, -1]]
    assert b.majority("two cubes").tolist() == [True, True]
    assert b.images("two cubes") == [tmp_path / "a.png", tmp_path / "c.png"]
    assert b.images("a red ball") == [Path("/abs/d.png")]
    assert out["default"].contrast("two cubes") == []
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(ParameterError, match="1 of 3 images of jsonl/counting"):
        load_jsonl(path, require_images=True)
    other = load_jsonl(path, images_dir=tmp_path / "img", name="x")["default"]
    assert other.name == "x" and other.images("two cubes") == [tmp_path / "img" / "b.png"]


@pytest.mark.parametrize(
    ("line", "error", "needle"),
    [
        ('{"prompt": "x", "image": "a.png"}', LayoutError, "labels"),
        ('{"prompt": "x", "image": "a.png", "labels": [2]}', ParameterError, "labels"),
        ('{"prompt": "x", "image": "a.png", "labels": [true]}', ParameterError, "labels"),
        ('{"prompt": "x", "image": "a.png", "labels": [1], "contrast": "y"}', LayoutError, "contrast"),
        ("[1, 2]", LayoutError, "JSON object"),
        ("{oops", LayoutError, "not valid JSON"),
        ("", LayoutError, "no records"),
    ],
)
def test_jsonl_errors(tmp_path: Path, line: str, error: type, needle: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(error, match=needle):
        load_jsonl(path)


def test_jsonl_conflicting_contrast_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    rows = [{"prompt": "x", "image": "a", "labels": [1], "contrast": ["y"]},
            {"prompt": "x", "image": "b", "labels": [0], "contrast": ["z"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(LayoutError, match="differs"):
        load_jsonl(path)
    with pytest.raises(ParameterError, match="not a file"):
        load_jsonl(tmp_path / "none.jsonl")


def test_excerpt_is_a_consistent_subset_of_the_full_files() -> None:
    full = full_tia2()
    if full is None:
        pytest.skip("the full TIA2 files are not beside the clone")
    for cat in CATEGORIES:
        for sub, stem in (("prompts", "prompt_set"), ("human_annotations", "human_labels"),
                          ("alignment_scores", "alignment_scores")):
            part = json.loads((EXCERPT_TIA2 / sub / f"{stem}_{cat}.json").read_text())
            whole = json.loads((full / sub / f"{stem}_{cat}.json").read_text())
            assert all(whole[k] == v for k, v in part.items())
    assert len(load_tia2_prompt_sets(EXCERPT_TIA2, "counting")) == 150
    assert len(load_tia2_prompt_sets(EXCERPT_TIA2, "composition")) >= 40
    assert sum(f.stat().st_size for f in EXCERPT_TIA2.rglob("*") if f.is_file()) < 400_000


@pytest.mark.parametrize("module", [benchmark_module, tia2_module])
def test_docstring_examples_run(module, tia2_root: Path) -> None:  # type: ignore[no-untyped-def]
    result = doctest.testmod(module, extraglobs={"np": np, "tia2_root": tia2_root})
    assert result.attempted > 0 and result.failed == 0
