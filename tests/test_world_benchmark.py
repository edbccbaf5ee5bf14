"""make_benchmark and the `textnorm world` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from textnorm import ParameterError
from textnorm.cli import main
from textnorm.world import CATEGORIES, judge, make_benchmark, parse, split_of
from textnorm.world.benchmark import CATEGORY_KINDS


@pytest.mark.parametrize("category", CATEGORIES)
def test_benchmark_mixes_renders_and_near_misses_with_exact_labels(category: str) -> None:
    b = make_benchmark(category, 6, 5, 3)
    assert b.images.shape == (6, 5, 64, 64, 3) and b.images.dtype == np.uint8
    assert b.labels.shape == b.truth.shape == b.unknown.shape == b.fractions.shape == (6, 5)
    assert len(set(b.prompts)) == 6 and all(split_of(parse(p)) == "test" for p in b.prompts)
    np.testing.assert_array_equal(b.labels, b.truth)
    assert b.judge_accuracy() == 1.0 and not b.unknown.any()
    for j in range(6):
        kinds = b.kinds[j]
        assert kinds.count("correct") == 2  # round(5 * 0.5)
        assert all(k == "correct" or k in CATEGORY_KINDS[category] for k in kinds)
        assert [k == "correct" for k in kinds] == b.labels[j].tolist()
        assert 0 < b.labels[j].sum() < 5  # both classes in every prompt
        # The labels are the judge's on the stored pixels.
        assert [r.aligned for r in judge(b.images[j], [b.prompts[j]] * 5)] == b.labels[j].tolist()
    np.testing.assert_array_equal(b.fractions[b.labels], 1.0)
    assert (b.fractions[~b.labels] < 1.0).all()


def test_benchmark_is_deterministic_and_seeded() -> None:
    a = make_benchmark("spatial", 3, 4, 0)
    b = make_benchmark("spatial", 3, 4, 0)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.prompts == b.prompts and a.kinds == b.kinds
    c = make_benchmark("spatial", 3, 4, 1)
    assert not np.array_equal(a.images, c.images)


def test_benchmark_edge_cases_and_errors() -> None:
    one = make_benchmark("counting", 2, 1, 0)
    assert one.labels.shape == (2, 1)
    allpos = make_benchmark("binding", 2, 3, 0, positive_share=1.0)
    assert allpos.labels.sum() == 4  # at least one near-miss per prompt with >= 2 images
    assert make_benchmark("single", 3, 2, 0, split="train").images.shape == (3, 2, 64, 64, 3)
    assert make_benchmark("composition", 0, 2, 0).images.shape == (0, 2, 64, 64, 3)
    with pytest.raises(ParameterError, match="category"):
        make_benchmark("colour", 2, 2, 0)
    with pytest.raises(ParameterError, match="n_images"):
        make_benchmark("counting", 2, -1, 0)
    with pytest.raises(ParameterError, match="seed"):
        make_benchmark("counting", 2, 2, -5)
    with pytest.raises(ParameterError, match="positive_share"):
        make_benchmark("counting", 2, 2, 0, positive_share=1.5)
    with pytest.raises(ParameterError, match="split"):
        make_benchmark("counting", 2, 2, 0, split="dev")
    with pytest.raises(ParameterError, match="distinct prompts"):
        make_benchmark("single", 50, 2, 0)


def test_cli_sample_render_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["world", "sample", "--category", "spatial", "--n", "3", "--split", "test"]) == 0
    prompts = capsys.readouterr().out.split("\n")[:3]
    assert all(split_of(parse(p)) == "test" for p in prompts)
    out = tmp_path / "renders"
    assert main(["world", "render", *prompts, "--out", str(out), "--n", "2", "--seed", "4"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["prompt"] for m in manifest] == [p for p in prompts for _ in range(2)]
    assert np.asarray(Image.open(out / manifest[0]["file"])).shape == (64, 64, 3)
    capsys.readouterr()
    assert main(["world", "judge", "--manifest", str(out / "manifest.json")]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert len(lines) == 6 and all("\taligned\t" in ln for ln in lines)
    near = tmp_path / "near"
    assert main(["world", "render", prompts[0], "--out", str(near), "--near-miss", "relation"]) == 0
    capsys.readouterr()
    assert main(["world", "judge", str(near / "00000.png"), "--prompt", prompts[0], "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["aligned"] is False and record["verdicts"][2]["holds"] is False
    assert {"shape", "colour", "size", "x", "y"} <= set(record["objects"][0])


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["world", "sample", "--category", "nope"]) == 2
    assert main(["world", "render", "a red dog", "--out", str(tmp_path)]) == 2
    assert main(["world", "render", "--out", str(tmp_path)]) == 2
    assert main(["world", "render", "a red circle", "--out", str(tmp_path), "--near-miss", "relation"]) == 2
    assert main(["world", "judge"]) == 2
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "black.png")
    assert main(["world", "judge", str(tmp_path / "black.png")]) == 2  # --prompt missing
    assert main(["world", "judge", str(tmp_path / "missing.png"), "--prompt", "a red circle"]) == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["world", "judge", "--manifest", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "category" in err and "unknown shape" in err and "--manifest" in err
    capsys.readouterr()
    assert main(["world", "judge", str(tmp_path / "black.png"), "--prompt", "a red circle"]) == 0
    assert "\tunknown\t" in capsys.readouterr().out


@pytest.mark.parametrize(
    "module", ["grammar", "geometry", "render", "sampler", "judging", "benchmark"],
)
def test_docstring_examples_run(module: str) -> None:
    import doctest
    import importlib

    mod = importlib.import_module(f"textnorm.world.{module}")
    result = doctest.testmod(mod, extraglobs={"np": np})
    assert result.failed == 0 and result.attempted > 0
