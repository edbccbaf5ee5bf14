"""``--mode sft`` on the flow-matching adapter: the noised sample and target follow the rectified
flow (checked against diffusers' own ``scale_noise``), and a run on a tiny random-weight SD3
pipeline loaded by path trains its LoRA towards the kept samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from flow_helpers import brightness_reward, tiny_sd3_dir  # noqa: F401  (fixture)

torch.set_num_threads(1)


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_noised_sample_is_the_schedulers_interpolation(shift: float) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    from textnorm.train.sft import noised_sample

    sched = FlowMatchEulerDiscreteScheduler(shift=shift)
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(6, 4, 8, 8, generator=gen), torch.randn(6, 4, 8, 8, generator=gen)
    index = torch.tensor([0, 1, 250, 500, 998, 999])
    xt, t, target = noised_sample(sched, x0, noise, index)
    # The training schedule's sigmas run from 1 (index N - 1) down to its smallest (index 0).
    position = sched.config.num_train_timesteps - 1 - index
    torch.testing.assert_close(t, sched.timesteps[position], rtol=1e-5, atol=1e-4)
    for i in range(len(index)):
        ref = sched.scale_noise(x0[i:i + 1], sched.timesteps[position[i:i + 1]], noise[i:i + 1])
        torch.testing.assert_close(xt[i:i + 1], ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(target, noise - x0)  # the velocity SD3 predicts


def test_dynamic_shifting_is_refused_by_name() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    from textnorm import ParameterError
    from textnorm.train.sft import noised_sample

    sched = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    x = torch.zeros(1, 4, 8, 8)
    with pytest.raises(ParameterError, match="use_dynamic_shifting"):
        noised_sample(sched, x, x, torch.tensor([3]))


def test_sft_trains_lora_on_sd3_loaded_by_path(tiny_sd3_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from textnorm.train.config import load_config
    from textnorm.train.runner import train

    data: dict[str, Any] = {
        "mode": "sft", "seed": 3, "model": {"path": str(tiny_sd3_dir)},
        "prompts": {"source": "list", "prompts": ["a cat", "two dogs", "a red ball"], "eval_fraction": 0.0},
        "sampling": {"num_steps": 3, "guidance_scale": 1.0, "eta": 0.7},
        "optim": {"learning_rate": 1e-2},
        "sft": {"samples_per_prompt": 4, "sample_batch_size": 4, "top_fraction": 0.5, "train_batch_size": 4,
                "beta": 0.1},
        "run": {"output_dir": str(tmp_path / "run"), "steps": 12, "progress_bar": False, "tensorboard": False},
    }
    res = train(load_config(data=data), reward_fn=brightness_reward)
    assert res.step == 12 and res.lora_path is not None
    lora = load_file(str(res.lora_path))
    assert max(float(v.abs().max()) for k, v in lora.items() if "lora_B" in k) > 1e-4  # B started at 0
    fits = [r["fit"] for r in res.records if "fit" in r]
    assert len(fits) == 12 and all(torch.isfinite(torch.tensor(fits)))

    # The kept samples' velocities at fixed noise and times are fitted better with the trained LoRA
    # than by the base model (the run's own loss is too noisy to compare: random times per step).
    import json

    from safetensors import safe_open

    from textnorm.train.flow_model import FlowMatchingModel
    from textnorm.train.sft import noised_sample

    kept = load_file(str(tmp_path / "run" / "sft_data.safetensors"))
    with safe_open(str(tmp_path / "run" / "sft_data.safetensors"), framework="pt") as f:
        prompts = json.loads(f.metadata()["prompts"])
    model = FlowMatchingModel.from_pretrained(str(tiny_sd3_dir))
    model.add_lora(rank=4, alpha=4.0, targets=["to_q", "to_k", "to_v", "to_out.0"])
    x0 = kept["latents"]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    index = torch.arange(len(x0)) * 997 % 1000
    xt, t, target = noised_sample(model.scheduler, x0, noise, index)
    cond = model.encode_prompts([prompts[int(i)] for i in kept["prompt_index"]])

    def fit() -> float:
        with torch.no_grad():
            return float(((model.predict_noise(model.denoiser, xt, t, cond) - target) ** 2).mean())

    before = fit()
    model.load_lora_state_dict(lora)
    assert fit() < before
