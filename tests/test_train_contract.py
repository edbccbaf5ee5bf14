"""The trainer contract: modes come from one registry, a new algorithm is one registration whose
options become a config section, the config and the CLI parser stay torch-free; and the gradient
signal diagnostic of the policy-gradient modes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from train_helpers import ToyDiffusionModel, mean_brightness

from textnorm import ParameterError

torch.set_num_threads(1)

BUILTIN = ("best-of-n", "sft", "ddpo", "grpo", "draft")


def test_modes_sections_and_cli_choices_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from textnorm.cli import main
    from textnorm.train.config import TrainConfig, leaf_options
    from textnorm.train.registry import algorithms, mode_names

    import dataclasses

    from textnorm.train import registry

    assert mode_names() == BUILTIN
    assert registry._CORE_SECTIONS == {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig()
    assert sorted(cfg.algorithms) == sorted(a.section for a in algorithms().values())
    assert cfg.best_of_n is cfg.algorithms["best_of_n"] and cfg.options("grpo") is cfg.grpo
    names = {name for name, _, _ in leaf_options()}
    assert {"grpo.group_size", "ddpo.step_window", "draft.k", "best_of_n.n", "run.steps"} <= names
    assert "algorithms" not in names
    with pytest.raises(SystemExit):
        main(["train", "--mode", "nope"])
    err = capsys.readouterr().err
    assert all(m in err for m in BUILTIN)


def test_config_round_trip_keeps_the_algorithm_sections(tmp_path: Path) -> None:
    from textnorm.train.config import load_config, save_config

    cfg = load_config(overrides={"mode": "grpo", "grpo.group_size": "2", "grpo.std": "global",
                                 "ddpo.step_window": "0,0.8"})
    data = cfg.to_dict()
    assert "algorithms" not in data and data["grpo"]["std"] == "global"
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg and again.ddpo.step_window == [0.0, 0.8]
    with pytest.raises(ParameterError, match="unknown option"):
        load_config(data={"grpo": {"group_sise": 2}})


def test_config_and_cli_parser_need_no_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from textnorm.train.registry import mode_names\n"
        "from textnorm.train.config import load_config\n"
        "from textnorm.cli import build_parser\n"
        "cfg = load_config(overrides={'mode': 'grpo', 'grpo.group_size': '2'})\n"
        "build_parser().parse_args(['train', '--mode', 'grpo', '--grpo.std', 'none'])\n"
        "print(','.join(mode_names()), cfg.grpo.group_size)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == [",".join(BUILTIN), "2"]


# ---- a new algorithm in one registration ---------------------------------------------------

@dataclass
class _PushOptions:
    scale: float = 1.0

    def validate(self, cfg: Any) -> None:
        if self.scale <= 0:
            raise ParameterError(f"push.scale: expected a positive number, received {self.scale}")


class _PushTrainer:
    """Pushes every trainable weight up: loss = -scale * sum(weights). Counts its calls."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.calls = 0

    def step(self, step: int) -> dict[str, float]:
        loss = -self.ctx.cfg.push.scale * sum(p.sum() for p in self.ctx.trainable())
        self.ctx.accelerator.backward(loss)
        self.calls += 1
        return {"loss": float(loss.detach()), "grad_norm": self.ctx.optimizer_step(), "calls": float(self.calls)}

    def state(self) -> dict[str, Any]:
        return {"calls": self.calls}

    def load_state(self, state: Any) -> None:
        self.calls = int(state.get("calls", 0))

    def close(self) -> None:
        pass

    def outputs(self) -> dict[str, Any]:
        return {"calls": self.calls}


@pytest.fixture()
def push_mode() -> Iterator[Any]:
    from textnorm.train import registry

    algo = registry.register(registry.Algorithm(name="push", options=_PushOptions, trainer=_PushTrainer,
                                                summary="a test algorithm"))
    try:
        yield algo
    finally:
        registry._REGISTRY.pop("push", None)


def test_a_new_algorithm_is_one_registration(push_mode: Any, tmp_path: Path) -> None:
    from textnorm.train.config import load_config
    from textnorm.train.registry import Trainer, mode_names
    from textnorm.train.runner import train

    assert mode_names()[-1] == "push" and isinstance(_PushTrainer(None), Trainer)
    data = {"mode": "push", "model": {"lora_targets": ["fc1", "fc2"]},
            "prompts": {"source": "list", "prompts": ["a cube", "a ball"], "eval_fraction": 0.0},
            "run": {"output_dir": str(tmp_path), "steps": 2, "progress_bar": False, "tensorboard": False}}
    cfg = load_config(data=data, overrides={"push.scale": "0.5"})
    assert cfg.push.scale == 0.5
    with pytest.raises(ParameterError, match="push.scale"):
        load_config(data=data, overrides={"push.scale": "-1"})
    res = train(cfg, reward_fn=mean_brightness, model=ToyDiffusionModel())
    assert res.step == 2 and res.outputs == {"calls": 2}
    cfg.run.steps, cfg.resume = 3, True  # the trainer's state comes back with the checkpoint
    res = train(cfg, reward_fn=mean_brightness, model=ToyDiffusionModel())
    assert res.outputs == {"calls": 3}
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["calls"]) for r in recs] == [(1, 1.0), (2, 2.0), (3, 3.0)]


def test_registration_errors(push_mode: Any) -> None:
    from textnorm.train.registry import Algorithm, register

    with pytest.raises(ParameterError, match="registered already"):
        register(Algorithm(name="push", options=_PushOptions, trainer=_PushTrainer))
    with pytest.raises(ParameterError, match="section"):
        register(Algorithm(name="pull", options=_PushOptions, trainer=_PushTrainer, section="push"))
    with pytest.raises(ParameterError, match="section"):
        register(Algorithm(name="run", options=_PushOptions, trainer=_PushTrainer))

    @dataclass
    class NoDefault:
        x: int

    with pytest.raises(ParameterError, match="defaults"):
        Algorithm(name="x", options=NoDefault, trainer=_PushTrainer)


# ---- the gradient signal diagnostic ----------------------------------------------------------

def _signal_config(out: Path, *, mode: str = "grpo", samples: int = 64, window: list[float] | None = None) -> Any:
    from textnorm.train.config import load_config

    sec: dict[str, Any] = {"sample_batch_size": samples, "num_batches_per_epoch": 1, "train_batch_size": 16,
                           "step_window": window or [0.0, 0.5], "async_reward": False, "clip_range": 0.2}
    sec.update({"group_size": 4} if mode == "grpo" else {"stat_min_count": 4})
    return load_config(data={
        "mode": mode, "seed": 2, "model": {"lora_targets": ["fc1", "fc2"]},
        "prompts": {"source": "list", "prompts": ["a red ball", "two blue cubes", "a ball left", "a cube"],
                    "eval_fraction": 0.0},
        "sampling": {"num_steps": 4, "guidance_scale": 1.0}, mode: sec,
        "run": {"output_dir": str(out), "progress_bar": False, "tensorboard": False},
    })


@pytest.mark.parametrize("mode", ["ddpo", "grpo"])
def test_step_gradients_sum_to_the_trainers_own_update_gradient(mode: str, tmp_path: Path) -> None:
    """The diagnostic's estimate equals the gradient the trainer applies in its first update of
    the same epoch (its own minibatches, shuffles and accumulation)."""
    from textnorm.train.diagnostics import step_gradients
    from textnorm.train.registry import get_algorithm
    from textnorm.train.runner import prepare

    cfg = _signal_config(tmp_path, mode=mode, samples=16, window=[0.0, 1.0])
    cfg.options().gradient_accumulation_steps = 4  # ddpo: one update over the 16 samples
    ctx, _, _ = prepare(cfg, reward_fn=mean_brightness, model=ToyDiffusionModel())
    trainer = get_algorithm(mode).trainer(ctx)
    before = [p.detach().clone() for p in ctx.trainable()]
    steps, grads = step_gradients(trainer, 5)
    assert steps.tolist() == [0, 1, 2] and grads.shape[0] == 3
    assert all(torch.equal(a, b) for a, b in zip(before, ctx.trainable()))  # nothing applied
    seen: list[np.ndarray] = []
    real_step = ctx.optimizer_step

    def capture() -> float:
        seen.append(torch.cat([p.grad.reshape(-1) for p in ctx.trainable()]).double().numpy())
        return real_step()

    ctx.optimizer_step = capture  # type: ignore[method-assign]
    trainer.step(5)
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], grads.sum(0), rtol=1e-4, atol=1e-7)
    ctx.logger.close()


def test_signal_is_clear_on_a_learnable_reward_and_absent_on_noise(tmp_path: Path) -> None:
    from textnorm.train.diagnostics import measure_gradient_signal

    learnable = measure_gradient_signal(_signal_config(tmp_path / "a"), reward_fn=mean_brightness,
                                        model=ToyDiffusionModel(), pairs=3)
    gen = torch.Generator().manual_seed(0)

    def noise(images: torch.Tensor, prompts: list[str], meta: Any) -> Any:
        return torch.rand(images.shape[0], generator=gen), {}

    random = measure_gradient_signal(_signal_config(tmp_path / "b"), reward_fn=noise,
                                     model=ToyDiffusionModel(), pairs=3)
    assert learnable.samples == random.samples == 64 and learnable.steps == [0, 1]
    # Measured over seeds 0-3 (3 pairs of 64 samples): learnable 0.36-0.65, noise -0.15-0.21.
    assert learnable.cosine > 0.3, learnable
    assert abs(random.cosine) < 0.3, random
    assert learnable.cosine > random.cosine + 0.3
    assert len(learnable.step_cosine) == len(learnable.step_norm) == 2 and len(learnable.cosines) == 3


def test_signal_needs_a_policy_gradient_mode(tmp_path: Path) -> None:
    from textnorm.train.diagnostics import measure_gradient_signal

    cfg = _signal_config(tmp_path)
    cfg.mode = "sft"
    with pytest.raises(ParameterError, match="mode"):
        measure_gradient_signal(cfg, reward_fn=mean_brightness, model=ToyDiffusionModel())
