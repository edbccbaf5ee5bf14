"""Whole runs through the CLI: a config file, error exits, SIGKILL and resume (same weights as an
uninterrupted run), and two accelerate CPU processes (same update as one process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import kill_at_checkpoint, tiny_model_dir  # noqa: F401  (fixture)

torch.set_num_threads(1)

SUPPORT = Path(__file__).with_name("train_helpers.py")
REWARD = f"{SUPPORT}:brightness_reward"


def _toml(path: Path, model_dir: Path, out: Path, *, steps: int, extra: str = "") -> Path:
    path.write_text(f"""
mode = "ddpo"
seed = 7
[model]
path = "{model_dir}"
[reward]
kind = "callable"
target = "{REWARD}"
[prompts]
source = "list"
prompts = ["a cat", "two dogs", "a red ball", "a blue cube"]
eval_fraction = 0.25
[sampling]
num_steps = 3
guidance_scale = 2.0
[optim]
learning_rate = 0.01
[ddpo]
sample_batch_size = 2
num_batches_per_epoch = 1
train_batch_size = 2
stat_min_count = 2
clip_range = 0.2
[run]
output_dir = "{out}"
steps = {steps}
checkpoint_every = 1
eval_every = 100
eval_images_per_prompt = 1
progress_bar = false
tensorboard = false
{extra}
""")
    return path


def _cli(*argv: str) -> int:
    from textnorm.cli import main

    return main(list(argv))


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join([str(SUPPORT.parent), env.get("PYTHONPATH", "")])
    return env


def test_cli_with_config_file_and_overrides(tiny_model_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    cfg = _toml(tmp_path / "c.toml", tiny_model_dir, out, steps=3)
    assert _cli("train", "--config", str(cfg), "--steps", "1", "--ddpo.clip_range", "0.1") == 0
    assert "finished at step 1" in capsys.readouterr().out
    import yaml

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["run"]["steps"] == 1 and saved["ddpo"]["clip_range"] == 0.1 and saved["seed"] == 7
    assert (out / "lora.safetensors").is_file() and (out / "checkpoints" / "step-00000001.safetensors").is_file()


def test_cli_errors_exit_cleanly(tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _toml(tmp_path / "c.toml", tiny_model_dir, tmp_path / "run", steps=1)
    assert _cli("train", "--config", str(cfg), "--ddpo.clip_range", "-3") == 2
    assert "ddpo.clip_range" in capsys.readouterr().err
    assert _cli("train", "--config", str(cfg), "--model", str(tmp_path / "missing")) == 2
    assert "model.path" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert _cli("train", "--config", str(cfg), "--prompts", str(empty)) == 2
    assert "empty file" in capsys.readouterr().err
    assert _cli("train", "--config", str(cfg), "--reward.target", "nope") == 2
    assert "reward.target" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_and_resume_matches_uninterrupted_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    steps = 5
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    cfg_k = _toml(tmp_path / "k.toml", tiny_model_dir, killed, steps=steps)
    kill_at_checkpoint(cfg_k, killed, _env())
    ckpts = killed / "checkpoints"
    done = sorted(p.name for p in ckpts.glob("step-*.safetensors"))
    assert done and done[-1] < f"step-{steps:08d}.safetensors"
    assert _cli("train", "--config", str(cfg_k), "--resume") == 0
    assert _cli("train", "--config", str(_toml(tmp_path / "c.toml", tiny_model_dir, clean, steps=steps))) == 0
    a, b = load_file(str(killed / "lora.safetensors")), load_file(str(clean / "lora.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    assert any(float(v.abs().sum()) > 0 for k, v in a.items() if "lora_B" in k)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddpo", "draft"])
def test_two_accelerate_processes_match_one(mode: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    """2 CPU processes x 1 sample = 1 process x 2 samples: same global batch and seed, same update."""
    # DDPO: Adam's eps = 1e-4 keeps it from turning gradients that are zero up to rounding (summed
    # in another order by the all-reduce) into full-size steps of either sign. DRaFT's gradients are
    # not of that kind: the default eps.
    common = ["--config", None, "--ddpo.per_prompt_stat_tracking", "false", "--prompts.eval_fraction", "0",
              "--steps", "2", "--optim.eps", "1e-4" if mode == "ddpo" else "1e-8", "--mode", mode]
    two, one = tmp_path / "two", tmp_path / "one"
    cfg2 = _toml(tmp_path / "two.toml", tiny_model_dir, two, steps=2)
    # accelerate's own launcher starts a single process for CPU-only multi-process runs on one
    # machine (it wants mpirun); torchrun is the launcher it uses for GPUs, and Accelerator(cpu=True)
    # inside the run picks up the process group as MULTI_CPU (gloo).
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "textnorm", "train", *[str(cfg2) if c is None else c for c in common],
           "--ddpo.sample_batch_size", "1", "--ddpo.train_batch_size", "1", "--draft.batch_size", "1"]
    res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("finished at step 2") == 2  # both ranks ran
    cfg1 = _toml(tmp_path / "one.toml", tiny_model_dir, one, steps=2)
    assert _cli("train", *[str(cfg1) if c is None else c for c in common],
                "--ddpo.sample_batch_size", "2", "--ddpo.train_batch_size", "2", "--draft.batch_size", "2") == 0
    a, b = load_file(str(two / "lora.safetensors")), load_file(str(one / "lora.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
    moved = [float(b[k].abs().max()) for k in b if "lora_B" in k]  # B starts at exactly 0
    assert min(moved) > 1e-3


def test_cli_best_of_n_with_textnorm_reward_from_a_prompt_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    import json

    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"two dogs": ["one dog", "three dogs", "two cats"],
                                   "a red ball": ["a blue ball", "a red cube"]}))
    out = tmp_path / "bon"
    opts = json.dumps({"scorers": ["textnorm.scorers._tiny:tiny_open_clip"], "scale": 3.0})
    assert _cli("train", "--mode", "best-of-n", "--model", str(tiny_model_dir), "--prompts", str(prompts),
                "--prompts.eval_fraction", "0", "--reward.kind", "textnorm", "--reward.options", opts,
                "--best_of_n.n", "2", "--sampling.num_steps", "2", "--out", str(out),
                "--run.progress_bar", "false", "--run.tensorboard", "false") == 0
    lines = [json.loads(x) for x in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and all(0.0 < r["reward"] < 1.0 for r in lines)  # confidences
    assert {r["prompt"] for r in lines} == {"two dogs", "a red ball"}
    assert lines[0]["metadata"]["contrastive"]
