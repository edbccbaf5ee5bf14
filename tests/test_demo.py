"""`textnorm demo` and the experiment behind it (`textnorm.demo`)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from textnorm import ParameterError
from textnorm.demo.experiment import QUICK, DemoConfig, rl_options, run_demo
from textnorm._atomic import atomic_write
from textnorm.demo.report import COMPLETE, interval


def _finite(obj: object) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_finite(v) for v in obj)
    return True


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("demo")
    messages: list[str] = []
    summary = run_demo(QUICK, out, log=messages.append)
    return out, summary, messages


def test_quick_demo_writes_a_complete_report_of_finite_numbers(quick_run):
    out, summary, messages = quick_run
    for name in ("results.json", "summary.md", "curves.png", COMPLETE):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert _finite(results)
    bon = results["best_of_n"]
    assert bon["ns"] == [1, 2, 4, 8]
    assert set(bon["proxies"]) == {"textnorm-proxy:pref-w0", "textnorm-proxy:pref-w3"}
    for entry in bon["proxies"].values():
        for method in ("raw", "textnorm", "ensemble"):
            gold = entry[method]["gold"]
            assert len(gold) == 4 and all(0.0 <= g <= 1.0 for g in gold)
            assert gold[0] == pytest.approx(bon["base_aligned"])  # n = 1 is the base model
        assert 0.0 <= entry["diagnosis"]["image_share"]["mean"] <= 1.0
    rl = results["rl"]["runs"]
    assert set(rl) == {"raw", "textnorm", "ensemble"}
    for seeds in rl.values():
        run = seeds["0"]
        assert len(run["kl"]) == len(run["gold_train"]) == len(run["steps"])
        assert run["kl"][0] == pytest.approx(0.0, abs=1e-6)  # LoRA starts at zero
    assert "| pref-w3 |" in (out / "summary.md").read_text()
    assert not list(out.glob(".tmp-*"))
    assert any("best-of-n" in m for m in messages)


def test_a_new_run_removes_the_complete_marker_first(tmp_path, monkeypatch):
    (tmp_path / COMPLETE).write_text("")
    import textnorm.demo.experiment as experiment

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(experiment, "best_of_n_part", boom)
    with pytest.raises(RuntimeError):
        run_demo(QUICK, tmp_path, log=lambda m: None)
    assert not (tmp_path / COMPLETE).exists()


def test_report_files_survive_sigkill_during_writes(tmp_path, quick_run):
    """A writer killed mid-loop leaves every report file either absent or whole."""
    out, _, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    results.pop("summary")
    (tmp_path / "in.json").write_text(json.dumps(results))
    code = ("import json, sys; from pathlib import Path; from textnorm.demo.report import write_report\n"
            "r = json.loads(Path(sys.argv[1]).read_text()); o = Path(sys.argv[2])\n"
            "while True: write_report(o, r)\n")
    target = tmp_path / "out"
    target.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "in.json"), str(target)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 60
        while not (target / COMPLETE).exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (target / COMPLETE).exists()
    json.loads((target / "results.json").read_text())
    from PIL import Image

    Image.open(target / "curves.png").load()
    assert (target / "summary.md").read_text().startswith("# textnorm demo")


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write(path, "old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write(path, "new")
    assert path.read_text() == "old"
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("primary", "clip", "proxies"), ("rl_mode", "ppo", "rl_mode"), ("seeds", (), "seeds"),
     ("samples", 0, "samples"), ("categories", ("single",), "categories"), ("scale", float("nan"), "scale")],
)
def test_config_errors_name_the_field(field, value, match):
    with pytest.raises(ParameterError, match=match):
        replace(DemoConfig(), **{field: value}).validate()


@pytest.mark.parametrize("mode", ["grpo", "ddpo", "draft"])
def test_rl_options_are_a_valid_config_at_the_demo_budget(mode, tmp_path):
    from textnorm.train.config import load_config

    cfg = DemoConfig(train_prompts=3, group_size=4, rl_steps=7, learning_rate=1e-3)
    data = rl_options(cfg, mode=mode)
    data["prompts"] = {"source": "list", "prompts": ["a red star"], "eval_fraction": 0.0}
    data["run"]["output_dir"] = str(tmp_path)
    tc = load_config(data=data)
    per_epoch = len(cfg.categories) * 3 * 4  # training prompts x group
    assert (tc.mode, tc.run.steps, tc.optim.learning_rate) == (mode, 7, 1e-3)
    if mode == "draft":
        assert tc.options().batch_size * 2 == per_epoch
    else:
        opts = tc.options()
        assert opts.sample_batch_size * opts.num_batches_per_epoch == per_epoch
        assert opts.step_window == [0.0, 0.8]


def test_interval_over_seeds():
    assert interval([0.5]) == (0.5, None)
    mean, half = interval([0.0, 1.0])
    assert mean == 0.5 and half == pytest.approx(1.96 * np.std([0.0, 1.0], ddof=1) / np.sqrt(2))


def test_cli_demo_reports_bad_options_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "textnorm", "demo", "--quick", "--primary", "nope",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "proxies" in proc.stderr
