"""`textnorm demo` and the experiment behind it (`textnorm.demo.experiment`, `demo_report`)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from textnorm import ParameterError
from textnorm.demo.experiment import QUICK, DemoConfig, run_demo
from textnorm.demo.report import interval
from textnorm.generator.diffusion import SceneDiffusionModel
from textnorm.generator.model import GeneratorConfig
from textnorm.scorers.base import Scorer
from textnorm.scorers.images import ImagePreprocess
from textnorm.world import vocab

TINY = GeneratorConfig(width=16, heads=2, layers=1, text_layers=1, max_tokens=16)


class ColourBagScorer(Scorer):
    """Stand-in proxy (the scorer protocol): colour areas against colour words, blind to the rest."""

    def __init__(self) -> None:
        super().__init__(id="standin:colour-bag", device=torch.device("cpu"), dtype=torch.float32,
                         preprocess=ImagePreprocess(size=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))
        cols = [vocab.PALETTE[c] for c in vocab.COLOURS] + [vocab.BACKGROUND]
        self.centres = torch.tensor(cols, dtype=torch.float32) / 255

    def _encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        out = torch.full((len(texts), len(vocab.COLOURS)), 0.05)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z]+", t.lower()):
                if w in vocab.COLOURS:
                    out[i, vocab.COLOURS.index(w)] += 1.0
        return torch.nn.functional.normalize(out, dim=-1)

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        p = pixels.float().flatten(2).transpose(1, 2)
        d2 = ((p[:, :, None, :] - self.centres[None, None]) ** 2).sum(-1)
        return torch.nn.functional.normalize(torch.softmax(-d2 / 0.01, dim=-1)[..., :-1].mean(1) + 1e-4, dim=-1)

    def _similarity(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return 10.0 * image_features @ text_features.T

    def _paired(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return 10.0 * (image_features * text_features).sum(-1)


def _tiny_generator() -> SceneDiffusionModel:
    torch.manual_seed(0)
    return SceneDiffusionModel(TINY)


SMALL = replace(QUICK, steps=2, eval_every=1, train_prompts=2, eval_prompts=1, num_steps=3, batch_size=4,
                categories=("single", "counting"), best_of_n=2)


def test_interval_against_hand_values() -> None:
    mean, half = interval([0.0, 1.0])
    assert mean == 0.5 and half == pytest.approx(12.706204736174707 * 0.5)  # t(0.975, 1) * s / sqrt(2)
    mean, half = interval([0.2, 0.4, 0.6])
    assert mean == pytest.approx(0.4) and half == pytest.approx(4.302652729911275 * 0.2 / math.sqrt(3))
    assert interval([0.3]) == (0.3, None)
    assert math.isnan(interval([])[0])


@pytest.mark.parametrize("kw, word", [
    ({"mode": "ppo"}, "mode"), ({"seeds": ()}, "seeds"), ({"seeds": (-1,)}, "seeds"), ({"steps": 0}, "steps"),
    ({"categories": ("colours",)}, "categories"), ({"scale": 0.0}, "scale"), ({"lora_rank": -1}, "lora_rank"),
    ({"learning_rate": float("nan")}, "learning_rate"),
])
def test_config_errors_name_the_option(kw: dict, word: str) -> None:
    with pytest.raises(ParameterError, match=word):
        replace(DemoConfig(), **kw).validate()


def test_unknown_proxy_name(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="proxy"):
        run_demo(replace(SMALL, proxy="nope"), tmp_path, generator=_tiny_generator, proxies=[ColourBagScorer()])


def test_demo_writes_a_consistent_report(tmp_path: Path) -> None:
    cfg = replace(SMALL, seeds=(0, 1))
    summary = run_demo(cfg, tmp_path, generator=_tiny_generator, proxies=[ColourBagScorer()], log=lambda m: None)
    for key in ("curves", "grids", "before", "after_raw", "after_textnorm", "summary_md", "summary_json"):
        assert Path(summary["files"][key]).is_file(), key
    saved = json.loads((tmp_path / "summary.json").read_text())
    n_prompts = len(cfg.categories) * cfg.eval_prompts
    wtl = saved["win_tie_loss"]
    assert sum(wtl["total"].values()) == n_prompts * len(cfg.seeds)
    assert wtl["net_rate"]["ci95"] is not None  # two seeds: an interval
    # Win/tie/loss recomputed from the per-prompt table.
    for s in cfg.seeds:
        rows = [r for r in saved["per_prompt"] if r["seed"] == s]
        per = next(x for x in wtl["per_seed"] if x["seed"] == s)
        assert per["win"] == sum(r["textnorm"] > r["raw"] for r in rows)
        assert per["loss"] == sum(r["textnorm"] < r["raw"] for r in rows)
    assert set(saved["judge_alignment"]) == {*cfg.categories, "all"}
    text = (tmp_path / "summary.md").read_text()
    assert "| single |" in text and "wins" in text
    # Each run evaluated at 0, every step and the end, one row per held-out image.
    metrics = [json.loads(x) for x in (tmp_path / "runs" / "raw-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert sorted({m["step"] for m in metrics if "eval/eval_reward" in m}) == [0, 1, 2]


def test_both_methods_start_from_the_same_samples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from textnorm.demo import experiment as demo_mod

    seen: list[list[dict]] = []

    class Spy(demo_mod.EvalRecorder):
        def split(self, per_eval: int):  # type: ignore[no-untyped-def]
            rows, images = super().split(per_eval)
            seen.append(rows[0])
            return rows, images

    monkeypatch.setattr(demo_mod, "EvalRecorder", Spy)
    run_demo(SMALL, tmp_path, generator=_tiny_generator, proxies=[ColourBagScorer()], log=lambda m: None)
    raw0, tn0 = seen
    assert [(r["prompt"], r["aligned"]) for r in raw0] == [(r["prompt"], r["aligned"]) for r in tn0]
    assert [r["proxy"] for r in raw0] == pytest.approx([r["proxy"] for r in tn0])


@pytest.mark.parametrize("mode", ["sft", "draft", "best-of-n"])
def test_every_mode_runs_on_the_world_generator(tmp_path: Path, mode: str) -> None:
    from textnorm.generator.diffusion import load_generator

    cfg = replace(SMALL, mode=mode, steps=1)
    # The shipped generator: a random one draws empty scenes, whose reward has no gradient.
    summary = run_demo(cfg, tmp_path, generator=load_generator, proxies=[ColourBagScorer()], log=lambda m: None)
    assert Path(summary["files"]["curves"]).is_file()
    assert summary["mode"] == mode
    if mode == "draft":  # the reward's gradient reached the LoRA weights through the soft renderer
        metrics = [json.loads(x) for x in (tmp_path / "runs" / "textnorm-seed0" / "metrics.jsonl").read_text().splitlines()]
        assert any(m.get("grad_norm", 0) > 0 for m in metrics)


def test_ensemble_uses_every_proxy(tmp_path: Path) -> None:
    a, b = ColourBagScorer(), ColourBagScorer()
    b.id = "standin:colour-bag-2"
    summary = run_demo(replace(SMALL, ensemble=True, steps=1), tmp_path, generator=_tiny_generator,
                       proxies=[a, b], log=lambda m: None)
    assert summary["proxies"] == ["standin:colour-bag", "standin:colour-bag-2"]


def test_cli_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from textnorm.cli import main

    assert main(["demo", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["demo", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "steps" in capsys.readouterr().err


def test_cli_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`textnorm demo --quick` with the shipped generator and proxies (the main job must run)."""
    from textnorm.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("curves.png", "grids.png", "summary.md", "summary.json"):
        assert (out / name).is_file()
        assert str(out / name) in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "ddpo" and summary["seeds"] == [0]
    assert summary["proxies"][0].startswith("textnorm-proxy:")
