"""Resuming from damaged checkpoints: each kind of damage to the newest checkpoint is detected,
the run falls back to the newest intact one with a warning naming the damaged file and ends where
an uninterrupted run ends; with no intact checkpoint it refuses with one clear error; a killed
writer's temporary files are removed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from test_train_interface import SceneLatentModel, redness

from textnorm import TextnormError
from textnorm.train.checkpoint import (
    CheckpointError,
    DamagedCheckpointWarning,
    checksum,
    find_resumable,
    save_checkpoint,
)

torch.set_num_threads(1)


def _rewrite(path: Path, transform: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]], *,
             rehash: bool = False) -> None:
    """Rewrite a checkpoint's tensors, keeping its metadata (and checksum unless ``rehash``)."""
    with safe_open(str(path), framework="pt") as fh:
        header = dict(fh.metadata())
    tensors = transform(load_file(str(path)))
    if rehash:
        header["textnorm.sha256"] = checksum(tensors, header["textnorm"])
    save_file(tensors, str(path), metadata=header)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _random_bytes(path: Path) -> None:
    size = path.stat().st_size
    path.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())


def _wrong_shape(path: Path) -> None:
    def grow(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        name = sorted(k for k in t if k.startswith("weights."))[0]
        t[name] = torch.zeros(t[name].shape[0] + 1, *t[name].shape[1:])
        return t

    _rewrite(path, grow)


def _missing_tensors(path: Path) -> None:
    _rewrite(path, lambda t: {k: v for k, v in t.items() if not k.startswith("optim.")})


def _removed_weights(path: Path) -> None:
    """The weights gone and the checksum recomputed: only the check against the model sees it."""
    _rewrite(path, lambda t: {k: v for k, v in t.items() if not k.startswith("weights.")}, rehash=True)


DAMAGE = {"truncated": _truncate, "empty": _empty, "random bytes": _random_bytes,
          "wrong shape": _wrong_shape, "missing tensors": _missing_tensors,
          "removed weights": _removed_weights}


# ---- the checkpoint files alone ------------------------------------------------------------

def _two_checkpoints(folder: Path) -> torch.nn.Parameter:
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=0.1)
    for step in (1, 2):
        p.grad = torch.ones_like(p) * step
        opt.step()
        save_checkpoint(folder, step=step, weights={"p": p}, optimizer=opt, extra={"k": step}, keep=3)
    return p


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_a_damaged_newest_checkpoint_is_skipped_for_the_previous_one(kind: str, tmp_path: Path) -> None:
    from textnorm.train.checkpoint import check_fits

    p = _two_checkpoints(tmp_path)
    newest = tmp_path / "step-00000002.safetensors"
    DAMAGE[kind](newest)
    params = {"p": p}
    with pytest.warns(DamagedCheckpointWarning, match="step-00000002") as rec:
        found = find_resumable(tmp_path, check=lambda t, m: check_fits(t, m, params))
    assert found is not None and found[0].name == "step-00000001.safetensors"
    assert found[2]["extra"] == {"k": 1}
    assert len(rec) == 1  # only the damaged file is reported


def test_intact_checkpoints_load_without_warnings(tmp_path: Path) -> None:
    import warnings

    _two_checkpoints(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = find_resumable(tmp_path)
    assert found is not None and found[0].name == "step-00000002.safetensors"
    assert find_resumable(tmp_path / "nothing-here") is None


def test_no_intact_checkpoint_is_refused_with_every_reason(tmp_path: Path) -> None:
    _two_checkpoints(tmp_path)
    _empty(tmp_path / "step-00000002.safetensors")
    _truncate(tmp_path / "step-00000001.safetensors")
    with pytest.warns(DamagedCheckpointWarning), pytest.raises(CheckpointError) as err:
        find_resumable(tmp_path)
    msg = str(err.value)
    assert isinstance(err.value, TextnormError)
    assert "step-00000002" in msg and "empty" in msg
    assert "step-00000001" in msg and "not a readable safetensors file" in msg


def test_a_changed_tensor_fails_the_checksum(tmp_path: Path) -> None:
    from textnorm.train.checkpoint import load_checkpoint

    _two_checkpoints(tmp_path)
    path = tmp_path / "step-00000002.safetensors"
    _rewrite(path, lambda t: {**t, "weights.p": t["weights.p"] + 1e-3})
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


def test_a_killed_writers_temporary_files_are_removed(tmp_path: Path) -> None:
    from textnorm.train.checkpoint import remove_temporaries

    (tmp_path / ".tmp-abc.safetensors").write_bytes(b"half a checkpoint")
    assert [p.name for p in remove_temporaries(tmp_path)] == [".tmp-abc.safetensors"]
    (tmp_path / ".tmp-def.safetensors").write_bytes(b"half")
    _two_checkpoints(tmp_path)  # a save also clears them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000001.safetensors",
                                                          "step-00000002.safetensors"]


# ---- whole runs ------------------------------------------------------------------------------

def _config(out: Path, steps: int, **model: Any) -> Any:
    from textnorm.train.config import load_config

    return load_config(data={
        "mode": "ddpo", "seed": 3,
        "model": {"lora_targets": ["fc1", "fc2"], "lora_rank": 2, **model},
        "prompts": {"source": "list", "prompts": ["a red ball", "two blue cubes"], "eval_fraction": 0.0},
        "sampling": {"num_steps": 4, "guidance_scale": 1.0},
        "optim": {"learning_rate": 1e-2},
        "ddpo": {"sample_batch_size": 4, "num_batches_per_epoch": 1, "train_batch_size": 2,
                 "stat_min_count": 2, "clip_range": 0.2, "async_reward": False},
        "run": {"output_dir": str(out), "steps": steps, "checkpoint_every": 1, "keep_checkpoints": 3,
                "progress_bar": False, "tensorboard": False, "image_every": 1000},
    })


def _lora(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "lora.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    from textnorm.train.runner import train

    out = tmp_path_factory.mktemp("clean")
    train(_config(out, 3), reward_fn=redness, model=SceneLatentModel())
    return _lora(out)


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_resume_from_a_damaged_checkpoint_falls_back_and_matches_an_uninterrupted_run(
        kind: str, tmp_path: Path, uninterrupted: dict[str, torch.Tensor]) -> None:
    from textnorm.train.runner import train

    train(_config(tmp_path, 2), reward_fn=redness, model=SceneLatentModel())
    DAMAGE[kind](tmp_path / "checkpoints" / "step-00000002.safetensors")
    (tmp_path / "checkpoints" / ".tmp-killed.safetensors").write_bytes(b"partial")
    cfg = _config(tmp_path, 3)
    cfg.resume = True
    with pytest.warns(DamagedCheckpointWarning, match="step-00000002"):
        res = train(cfg, reward_fn=redness, model=SceneLatentModel())
    assert res.step == 3
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 2, 3]  # step 2 ran again from checkpoint 1
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    got = _lora(tmp_path)
    assert got.keys() == uninterrupted.keys()
    for key in got:
        torch.testing.assert_close(got[key], uninterrupted[key], rtol=0, atol=1e-6)


def test_resume_refuses_when_no_checkpoint_fits_the_model(tmp_path: Path) -> None:
    """Checkpoints of LoRA rank 2, a resume at rank 4: intact files, but none fits the model."""
    from textnorm.train.runner import train

    train(_config(tmp_path, 2), reward_fn=redness, model=SceneLatentModel())
    before = _lora(tmp_path)
    cfg = _config(tmp_path, 3, lora_rank=4)
    cfg.resume = True
    with pytest.warns(DamagedCheckpointWarning), pytest.raises(CheckpointError) as err:
        train(cfg, reward_fn=redness, model=SceneLatentModel())
    assert "shape" in str(err.value) and "step-00000001" in str(err.value)
    after = _lora(tmp_path)
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing trained or written


def test_cli_reports_damage_and_mistakes_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from textnorm.cli import main

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    base = ["train", "--mode", "ddpo", "--model.path", "train_helpers:ToyDiffusionModel",
            "--model.lora_targets", "fc1,fc2", "--reward.target", "train_helpers:mean_brightness",
            "--prompts.source", "list", "--prompts.prompts", "a cube,a ball", "--prompts.eval_fraction", "0",
            "--sampling.num_steps", "3", "--ddpo.sample_batch_size", "2", "--ddpo.train_batch_size", "2",
            "--ddpo.stat_min_count", "2", "--run.progress_bar", "false", "--run.tensorboard", "false"]
    out = tmp_path / "run"
    assert main([*base, "--out", str(out), "--steps", "2"]) == 0
    capsys.readouterr()
    _truncate(out / "checkpoints" / "step-00000002.safetensors")
    assert main([*base, "--out", str(out), "--steps", "3", "--resume"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and "step-00000002" in err[0]
    kept = sorted((out / "checkpoints").glob("step-*.safetensors"))
    assert [p.name for p in kept] == ["step-00000002.safetensors", "step-00000003.safetensors"]
    for path in kept:
        _empty(path)
    assert main([*base, "--out", str(out), "--steps", "4", "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("textnorm train: error: resume: no intact checkpoint")
    assert all(line.startswith("textnorm train: ") for line in err)  # warnings and error, one line each
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert main([*base, "--out", str(blocked / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run.output_dir" in err[0] and "a-file" in err[0]
    assert main([*base, "--out", str(out), "--seed", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed" in err[0]
