"""End to end: `textnorm eval` on images made here, with tiny random-weight CLIP scorers, through
the score cache (the second run must not build or call any model)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from textnorm import ParameterError
from textnorm.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


class Counted:
    """Wraps a scorer and counts score_sets calls (the cache must spare the second run)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.id = inner.id  # type: ignore[attr-defined]

    def score_sets(self, images, prompt_lists):  # type: ignore[no-untyped-def]
        FACTORY.calls += 1  # type: ignore[attr-defined]
        return self.inner.score_sets(images, prompt_lists)  # type: ignore[attr-defined]


def _make(arg: str = "0") -> Counted:
    from textnorm.scorers import CLIPScorer

    FACTORY.builds += 1  # type: ignore[attr-defined]
    return Counted(CLIPScorer.from_open_clip_config(TINY_CLIP, seed=int(arg)))


FACTORY = types.ModuleType("tiny_eval_scorers")
FACTORY.make = _make  # type: ignore[attr-defined]


@pytest.fixture()
def factory(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    FACTORY.builds = 0  # type: ignore[attr-defined]
    FACTORY.calls = 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tiny_eval_scorers", FACTORY)
    return FACTORY


def _jsonl_dataset(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = []
    for p in range(6):
        prompt = f"a photo of {p + 2} red cubes"
        contrast = [f"a photo of {p + 1} red cubes", f"a photo of {p + 3} red cubes"]
        for i in range(6):
            name = f"img_{p}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / name)
            labels = [int(i % 2 == 0), int(i % 3 == 0), int(i < 3)]
            lines.append({"prompt": prompt, "image": name, "labels": labels, "contrast": contrast,
                          "category": "counting" if p < 4 else "other"})
    path = root / "labels.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_eval_jsonl_end_to_end_through_the_cache(tmp_path: Path, factory: types.ModuleType) -> None:
    data = _jsonl_dataset(tmp_path)
    out = tmp_path / "report"
    argv = ["eval", "--benchmark", "jsonl", "--root", str(data), "--categories", "counting",
            "--scorers", "a@tiny_eval_scorers:make=0,b@tiny_eval_scorers:make=1", "--out", str(out),
            "--folds", "2", "--bootstrap", "50", "--no-progress"]
    assert main(argv) == 0
    assert factory.builds == 2 and factory.calls > 0
    report = json.loads((out / "report.json").read_text())
    systems = report["categories"]["counting"]["systems"]
    assert list(systems) == ["a", "b", "a+textnorm", "b+textnorm", "textnorm-ensemble"]
    assert 0.0 <= systems["a"]["metrics"]["auroc"]["mean"] <= 1.0
    assert systems["textnorm-ensemble"]["usual_setting"]["method"] in ("mean", "ur")
    assert "reliability" in systems["a+textnorm"] and "reliability" not in systems["a"]
    md = (out / "report.md").read_text()
    assert "| a+textnorm |" in md and "cross-validation" in md
    assert (out / "counting_auroc.png").stat().st_size > 1000
    assert (out / "counting_reliability.png").is_file()
    assert set(json.loads((out / "per_prompt.json").read_text())["counting"]["a"]) == {
        f"a photo of {p + 2} red cubes" for p in range(4)}

    calls, builds = factory.calls, factory.builds
    for img in tmp_path.glob("img_*.png"):  # cached scores need neither images nor models
        img.unlink()
    assert main([*argv, "--scales", "1,10", "--out", str(tmp_path / "again"), "--cache", str(out / "cache")]) == 0
    assert (factory.calls, factory.builds) == (calls, builds)
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert again["categories"]["counting"]["systems"]["a"]["metrics"] == systems["a"]["metrics"]

    with pytest.raises(ParameterError, match=r"--images: 24 of 24 images of jsonl/counting are missing"):
        main([*argv, "--refresh-cache", "--out", str(tmp_path / "third"), "--debug"])


def test_eval_tia2_counting_with_made_up_images(tia2_root: Path, tmp_path: Path, factory: types.ModuleType) -> None:
    from PIL import Image

    from textnorm.eval.tia2 import load_tia2

    bench = load_tia2(tia2_root, "counting")
    prompts = bench.scored_prompts[:4]
    (tmp_path / "img" / "counting").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for p in prompts:
        for path in bench.images(p):
            pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "img" / "counting" / path.name)
    argv = ["eval", "--root", str(tia2_root), "--images", str(tmp_path / "img"), "--categories", "counting",
            "--scorers", "tiny_eval_scorers:make", "--out", str(tmp_path / "out"), "--folds", "2",
            "--bootstrap", "20", "--no-plots", "--no-progress"]
    absent = 50 * (len(bench.scored_prompts) - 4)
    with pytest.raises(ParameterError, match=rf"--images: {absent} of .* images of tia2/counting are missing under"):
        main([*argv, "--debug"])
    for p in bench.scored_prompts[4:]:
        for path in bench.images(p):
            pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "img" / "counting" / path.name)
    assert main(argv) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    cat = report["categories"]["counting"]
    assert cat["n_prompts"] == len(bench.scored_prompts) and cat["n_images"] == 50 * cat["n_prompts"]
    assert cat["reference"]["models"]["pickscore"]["auroc"] > 0.5  # the authors' released numbers
    assert "Released per-prompt metrics of the authors" in (tmp_path / "out" / "report.md").read_text()


def test_eval_world_benchmark_through_its_adapter(tmp_path: Path, factory: types.ModuleType,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter's contract with textnorm.world.make_benchmark, with a stand-in world."""
    from textnorm import world

    made = []

    def fake(category: str, n_prompts: int, n_images: int, seed: int) -> dict:
        rng = np.random.default_rng(seed)
        made.append((category, n_prompts, n_images, seed))
        labels = rng.random((n_prompts, n_images)) < 0.5
        labels[:, 0], labels[:, 1] = True, False
        return {"prompts": [f"{category} prompt {i}" for i in range(n_prompts)],
                "images": rng.integers(0, 255, (n_prompts, n_images, 16, 16, 3), dtype=np.uint8),
                "labels": labels, "contrast": [[f"near miss {i}.{j}" for j in range(3)] for i in range(n_prompts)]}

    monkeypatch.setitem(world.__dict__, "make_benchmark", fake)
    argv = ["eval", "--benchmark", "world", "--categories", "counting", "--world-prompts", "4",
            "--world-images", "6", "--scorers", "tiny_eval_scorers:make", "--out", str(tmp_path),
            "--folds", "2", "--bootstrap", "20", "--no-plots", "--no-progress", "--seed", "3"]
    assert main(argv) == 0
    assert made == [("counting", 4, 6, 3)]
    cat = json.loads((tmp_path / "report.json").read_text())["categories"]["counting"]
    assert cat["benchmark"] == "world" and cat["n_images"] == 24
    calls = factory.calls
    assert main(argv) == 0 and factory.calls == calls  # same world seed: served from the cache


def test_eval_on_the_real_world(tmp_path: Path, factory: types.ModuleType) -> None:
    """`--benchmark world` with textnorm.world.make_benchmark and textnorm.contrast."""
    from textnorm.eval.world import load_world

    benches, loaders = load_world(["counting"], n_prompts=3, n_images=4, seed=0, contrast_k=5)
    bench = benches["counting"]
    assert len(bench.prompts) == 3 and bench.labels(bench.prompts[0]).shape == (4, 1)
    assert all(1 <= len(bench.contrast(p)) <= 5 for p in bench.prompts)
    assert loaders["counting"](bench, bench.prompts[0]).shape[0] == 4
    argv = ["eval", "--benchmark", "world", "--categories", "counting", "--world-prompts", "6",
            "--world-images", "4", "--contrast-k", "4", "--scorers", "tiny_eval_scorers:make",
            "--out", str(tmp_path), "--folds", "2", "--bootstrap", "20", "--no-plots", "--no-progress"]
    assert main(argv) == 0
    cat = json.loads((tmp_path / "report.json").read_text())["categories"]["counting"]
    assert cat["n_images"] == 4 * cat["n_prompts"] and cat["n_prompts"] >= 2
