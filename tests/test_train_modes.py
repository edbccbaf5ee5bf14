"""Each training mode end to end on the tiny pipeline, DDPO's log-probabilities and importance
ratio, DRaFT's gradient path, error paths, and a DDPO run with TextNormReward over a tiny scorer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import (  # noqa: F401  (fixtures)
    brightness_reward,
    nan_after_first_epoch,
    small_config,
    tiny_model,
    tiny_model_dir,
)

from textnorm import LayoutError, NonFiniteError, ParameterError

torch.set_num_threads(1)


def _lora(model: Any) -> None:
    torch.manual_seed(0)
    model.add_lora(rank=4, alpha=4.0, targets=["to_q", "to_k", "to_v", "to_out.0"])


def test_ddpo_log_probs_match_recomputation_and_ratio_is_one(tiny_model: Any) -> None:
    from textnorm.train.sampling import keyed_noise, sample, step_log_prob

    _lora(tiny_model)
    with torch.no_grad():  # a non-zero adapter, so the check covers the adapted model
        for name, p in tiny_model.denoiser.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    cond = tiny_model.encode_prompts(["a cat", "two dogs", "a red ball"])
    noise = keyed_noise([1, 2, 3], (4, *tiny_model.latent_shape))
    with torch.no_grad():
        traj = sample(tiny_model, tiny_model.denoiser, cond, noise=noise, num_steps=3, guidance_scale=2.0, eta=1.0)
    assert traj.latents.shape == (3, 4, *tiny_model.latent_shape) and traj.log_probs.shape == (3, 3)
    # Recompute every step's log-probability with gradient, samples at mixed timesteps in one batch.
    perm = torch.tensor([[0, 1, 2], [2, 0, 1], [1, 2, 0]])  # perm[sample, position] = step index
    for pos in range(3):
        ti = perm[:, pos]
        rows = torch.arange(3)
        lp, _, _ = step_log_prob(tiny_model, tiny_model.denoiser, traj.latents[rows, ti],
                                 traj.latents[rows, ti + 1], traj.timesteps[ti], ti, traj.timesteps, cond,
                                 guidance_scale=2.0, eta=1.0)
        torch.testing.assert_close(lp.detach(), traj.log_probs[rows, ti], rtol=1e-5, atol=1e-5)
        ratio = torch.exp(lp - traj.log_probs[rows, ti])
        assert lp.requires_grad
        # Same network, same inputs row for row: the ratio is 1 up to float rounding only.
        torch.testing.assert_close(ratio.detach(), torch.ones(3), rtol=0, atol=1e-5)
    # Same batch composition as at sampling time: exactly 1.
    for i in range(3):
        ti = torch.full((3,), i)
        lp, _, _ = step_log_prob(tiny_model, tiny_model.denoiser, traj.latents[:, i], traj.latents[:, i + 1],
                                 traj.timesteps[ti], ti, traj.timesteps, cond, guidance_scale=2.0, eta=1.0)
        assert torch.equal(torch.exp(lp.detach() - traj.log_probs[:, i]), torch.ones(3))


def test_ddpo_first_update_ratio_exactly_one(tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the trainer, before the first optimizer step every ratio is exactly 1."""
    from textnorm.train import ddpo
    from textnorm.train.runner import train

    seen: list[torch.Tensor] = []
    real = ddpo.ppo_loss

    def spy(lp: torch.Tensor, old: torch.Tensor, adv: torch.Tensor, **kw: Any) -> Any:
        loss, info = real(lp, old, adv, **kw)
        seen.append(info["ratio"].clone())
        return loss, info

    monkeypatch.setattr(ddpo, "ppo_loss", spy)
    cfg = small_config(tmp_path, "ddpo", "unused", run={"steps": 1, "output_dir": str(tmp_path)},
                       prompts={"eval_fraction": 0.0}, ddpo={"timestep_fraction": 1.0})
    train(cfg, reward_fn=brightness_reward, model=tiny_model)
    assert len(seen) == 3  # one minibatch x 3 timesteps, all before the single update
    for ratio in seen:
        assert torch.equal(ratio, torch.ones_like(ratio))


def test_ddpo_end_to_end(tiny_model: Any, tmp_path: Path) -> None:
    from textnorm.train.runner import train

    cfg = small_config(tmp_path, "ddpo", "unused", ddpo={"kl_coef": 0.1, "timestep_fraction": 0.67,
                                                        "num_inner_epochs": 2})
    before = {k: v.clone() for k, v in tiny_model.denoiser.state_dict().items()}
    res = train(cfg, reward_fn=brightness_reward, eval_reward_fn=brightness_reward, model=tiny_model)
    assert res.step == 2
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in recs if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(np.isfinite(r["loss"]) and r["kl"] >= 0 for r in steps)
    assert any(r["kl"] > 0 for r in steps)  # after the first update the policy left the base
    assert any("eval/eval_reward" in r for r in recs)
    assert (tmp_path / "overoptimization.png").stat().st_size > 0
    assert (tmp_path / "config.yaml").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-00000001.safetensors", "step-00000002.safetensors"]
    lora = load_file(str(res.lora_path))
    assert lora and all("lora_" in k for k in lora)
    assert any(v.abs().sum() > 0 for k, v in lora.items() if "lora_B" in k)
    after = tiny_model.denoiser.state_dict()
    frozen = {k.replace(".base_layer", ""): v for k, v in after.items() if "lora_" not in k}
    assert frozen.keys() == before.keys()
    assert all(torch.equal(before[k], frozen[k]) for k in before)  # only adapters trained
    assert list((tmp_path / "images").glob("train-*.png")) and list((tmp_path / "images").glob("eval-*.png"))


def test_sft_end_to_end_and_regulariser(tiny_model: Any, tmp_path: Path) -> None:
    from textnorm.train.runner import train

    # Per prompt, the better of its 2 samples is kept: each has weight 1.
    cfg = small_config(tmp_path, "sft", "unused", sft={"beta": 0.5, "selection": "per_prompt"})
    res = train(cfg, reward_fn=brightness_reward, model=tiny_model)
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in recs if "loss" in r]
    assert steps[0]["reg"] == 0.0  # LoRA starts at the base model: no distance to it
    assert steps[1]["reg"] > 0.0
    for r in steps:
        assert r["loss"] == pytest.approx(r["fit"] + 0.5 * r["reg"], rel=1e-5)
    data = load_file(str(tmp_path / "sft_data.safetensors"))
    n_train = len(small_config(tmp_path, "sft", "unused").prompts.prompts) - 1
    assert data["latents"].shape[0] == n_train
    assert torch.equal(data["weights"], torch.ones(n_train))
    assert sorted(data["prompt_index"].tolist()) == list(range(n_train))
    assert res.lora_path is not None


def test_best_of_n_writes_images_grids_and_metadata(tiny_model: Any, tmp_path: Path) -> None:
    from textnorm.train.runner import train

    cfg = small_config(tmp_path, "best-of-n", "unused", prompts={"eval_fraction": 0.0},
                       best_of_n={"n": 2, "sample_batch_size": 4})
    res = train(cfg, reward_fn=brightness_reward, model=tiny_model)
    lines = [json.loads(x) for x in (tmp_path / "metadata.jsonl").read_text().splitlines()]
    assert len(lines) == 6 * 2 == len(res.samples)
    for p in range(6):
        mine = [r for r in lines if r["prompt_index"] == p]
        best = [r for r in mine if r["best"]]
        assert len(best) == 1 and best[0]["reward"] == max(r["reward"] for r in mine)
        assert best[0]["rank"] == 0
    assert len(list((tmp_path / "best").glob("*.png"))) == 6
    assert len(list((tmp_path / "grids").glob("*.png"))) == 6
    assert len(list((tmp_path / "all").glob("*.png"))) == 12
    assert (tmp_path / "best_grid.png").is_file()


def test_draft_gradient_reaches_lora(tiny_model: Any) -> None:
    from textnorm.train.sampling import keyed_noise, sample

    _lora(tiny_model)
    with torch.no_grad():
        for name, p in tiny_model.denoiser.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # B = 0 would zero A's gradient
    cond = tiny_model.encode_prompts(["a cat", "two dogs"])
    noise = keyed_noise([7, 8], (4, *tiny_model.latent_shape))
    traj = sample(tiny_model, tiny_model.denoiser, cond, noise=noise, num_steps=3, guidance_scale=2.0,
                  eta=0.0, grad_steps=1)
    rewards, _ = brightness_reward(tiny_model.decode(traj.final), ["a cat", "two dogs"], [{}, {}])
    (-rewards.mean()).backward()
    grads = {n: p.grad for n, p in tiny_model.denoiser.named_parameters() if p.requires_grad}
    assert grads and all(n.count("lora_") == 1 for n in grads)
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert sum(float(g.abs().sum()) for n, g in grads.items() if "lora_A" in n) > 0
    assert sum(float(g.abs().sum()) for n, g in grads.items() if "lora_B" in n) > 0
    assert all(p.grad is None for p in tiny_model.vae.parameters())


def test_draft_end_to_end(tiny_model: Any, tmp_path: Path) -> None:
    from textnorm.train.runner import train

    cfg = small_config(tmp_path, "draft", "unused", draft={"k": 2})
    res = train(cfg, reward_fn=brightness_reward, model=tiny_model)
    steps = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in steps if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2] and steps[0]["grad_norm"] > 0
    assert res.lora_path is not None
    lora = load_file(str(res.lora_path))
    assert any(float(v.abs().sum()) > 0 for k, v in lora.items() if "lora_B" in k)  # B started at 0


def test_draft_rejects_a_reward_without_gradient(tiny_model: Any, tmp_path: Path) -> None:
    from textnorm.train.runner import train

    def detached(images: torch.Tensor, prompts: list[str], meta: list[dict[str, Any]]) -> Any:
        return brightness_reward(images.detach(), prompts, meta)

    cfg = small_config(tmp_path, "draft", "unused", prompts={"eval_fraction": 0.0})
    with pytest.raises(ParameterError, match="differentiable"):
        train(cfg, reward_fn=detached, model=tiny_model)


def test_nan_reward_raises_after_saving_a_checkpoint(tiny_model: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from textnorm.train.runner import train

    monkeypatch.setenv("_TN_CALLS", "0")
    monkeypatch.setenv("_TN_NAN_AFTER", "1")  # first epoch's batch fine, then NaN
    cfg = small_config(tmp_path, "ddpo", "unused", prompts={"eval_fraction": 0.0},
                       run={"steps": 3, "checkpoint_every": 10}, ddpo={"async_reward": False})
    with pytest.raises(NonFiniteError, match="reward"):
        train(cfg, reward_fn=nan_after_first_epoch, model=tiny_model)
    names = [p.name for p in (tmp_path / "checkpoints").iterdir()]
    assert names == ["step-00000001.safetensors"]


def test_bad_reward_shape_and_missing_model(tiny_model: Any, tmp_path: Path) -> None:
    from textnorm.train.model import StableDiffusionModel
    from textnorm.train.runner import train

    def scalar(images: torch.Tensor, prompts: list[str], meta: list[dict[str, Any]]) -> Any:
        return images.mean(), {}

    cfg = small_config(tmp_path, "best-of-n", "unused", prompts={"eval_fraction": 0.0})
    with pytest.raises(LayoutError, match=r"shape \(4,\)"):
        train(cfg, reward_fn=scalar, model=tiny_model)
    with pytest.raises(ParameterError, match="model.path"):
        StableDiffusionModel.from_pretrained(str(tmp_path / "no-such-pipeline"))
    with pytest.raises(ParameterError, match="model.path"):
        StableDiffusionModel.from_pretrained("no-such-org/no-such-model-xyz")


def test_ddpo_with_textnorm_reward_over_tiny_scorer(tiny_model: Any, tmp_path: Path) -> None:
    """The CLI's wiring: TextNormReward (tiny random open_clip) with contrastive sets from metadata."""
    from textnorm.cli.train import build_reward
    from textnorm.train.config import RewardSpec
    from textnorm.train.prompts import load_prompts
    from textnorm.train.runner import train

    sets = {"two dogs": ["one dog", "three dogs"], "a red ball": ["a blue ball", "a green ball"],
            "a cat": ["a dog", "a bird"]}
    cfg = small_config(tmp_path, "ddpo", "unused", prompts={"source": "callable", "eval_fraction": 0.0},
                       run={"steps": 1})
    prompts = load_prompts(cfg.prompts, seed=0, source=lambda: list(sets.items()) and
                           [(p, {"contrastive": c}) for p, c in sets.items()])
    spec = RewardSpec(kind="textnorm", options={"scorers": ["textnorm.scorers._tiny:tiny_open_clip"],
                                                "scale": 3.0})
    reward = build_reward(spec, prompts, option="reward")
    res = train(cfg, reward_fn=reward, model=tiny_model,
                prompt_source=lambda: [(p, {"contrastive": c}) for p, c in sets.items()])
    rec = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if "loss" in x][0]
    assert 0.0 < rec["reward_mean"] < 1.0  # a confidence among 3 prompts
    assert any(k.startswith("reward_info/raw/") for k in rec)  # raw scores logged beside it
    assert rec["reward_info/set_size"] == 2.0
    assert res.step == 1


def test_sigterm_checkpoints_at_the_step_boundary_and_resumes(tiny_model: Any, tiny_model_dir: Path,
                                                               tmp_path: Path) -> None:
    import signal

    from textnorm.train.checkpoint import StopRequested
    from textnorm.train.model import StableDiffusionModel
    from textnorm.train.runner import train

    calls = []

    def terminating(images: torch.Tensor, prompts: list[str], meta: list[dict[str, Any]]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would, mid-step
        return brightness_reward(images, prompts, meta)

    cfg = small_config(tmp_path, "ddpo", "unused", prompts={"eval_fraction": 0.0},
                       run={"steps": 3, "checkpoint_every": 10}, ddpo={"async_reward": False})
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StopRequested, match="step 1"):
        train(cfg, reward_fn=terminating, model=tiny_model)
    assert signal.getsignal(signal.SIGTERM) == previous  # handler restored
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000001.safetensors"]
    cfg.resume = True
    res = train(cfg, reward_fn=brightness_reward, model=StableDiffusionModel.from_pretrained(str(tiny_model_dir)))
    assert res.step == 3 and len(calls) == 1


def test_merged_lora_sampling_matches_wrapped(tiny_model: Any) -> None:
    from textnorm.train.sampling import keyed_noise, sample

    _lora(tiny_model)
    with torch.no_grad():
        for name, p in tiny_model.denoiser.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    cond = tiny_model.encode_prompts(["a cat", "two dogs"])
    noise = keyed_noise([3, 4], (4, *tiny_model.latent_shape))
    kw = {"noise": noise, "num_steps": 3, "guidance_scale": 2.0, "eta": 1.0}
    with torch.no_grad():
        wrapped = sample(tiny_model, tiny_model.denoiser, cond, **kw)
        tiny_model.merge_lora()
        merged = sample(tiny_model, tiny_model.denoiser, cond, **kw)
        tiny_model.unmerge_lora()
        again = sample(tiny_model, tiny_model.denoiser, cond, **kw)
        with tiny_model.adapters_disabled():
            base = sample(tiny_model, tiny_model.denoiser, cond, **kw)
    torch.testing.assert_close(merged.latents, wrapped.latents, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(again.latents, wrapped.latents, rtol=1e-5, atol=1e-5)
    assert (base.latents - wrapped.latents).abs().max() > 1e-3  # the adapter does something


def test_full_finetune_sft_uses_a_frozen_reference(tiny_model: Any, tmp_path: Path) -> None:
    from textnorm.train.checkpoint import load_checkpoint
    from textnorm.train.runner import train

    cfg = small_config(tmp_path, "sft", "unused", model={"full_finetune": True},
                       prompts={"eval_fraction": 0.0}, sft={"selection": "per_prompt"},
                       optim={"learning_rate": 1e-3}, run={"steps": 2})
    res = train(cfg, reward_fn=brightness_reward, model=tiny_model)
    steps = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    assert steps[0]["reg"] == 0.0 and steps[1]["reg"] > 0.0
    assert res.lora_path is None
    tensors, _ = load_checkpoint(tmp_path / "checkpoints" / "step-00000002.safetensors")
    n_weights = sum(1 for k in tensors if k.startswith("weights."))
    assert n_weights == len(list(tiny_model.denoiser.parameters()))


def test_sft_trains_on_a_best_of_n_run(tiny_model: Any, tiny_model_dir: Path, tmp_path: Path) -> None:
    from textnorm.train.model import StableDiffusionModel
    from textnorm.train.runner import train

    bon = tmp_path / "bon"
    cfg = small_config(bon, "best-of-n", "unused", prompts={"eval_fraction": 0.0},
                       best_of_n={"n": 2, "sample_batch_size": 6, "save_all_images": False})
    train(cfg, reward_fn=brightness_reward, model=tiny_model)
    sft_dir = tmp_path / "sft"
    cfg = small_config(sft_dir, "sft", "unused", prompts={"eval_fraction": 0.0},
                       sft={"data": str(bon), "top_fraction": 0.25}, run={"steps": 1})
    res = train(cfg, reward_fn=lambda *a: pytest.fail("SFT must not sample or score"),
                model=StableDiffusionModel.from_pretrained(str(tiny_model_dir)))
    assert res.step == 1
    data = load_file(str(sft_dir / "sft_data.safetensors"))
    rewards = [json.loads(x)["reward"] for x in (bon / "metadata.jsonl").read_text().splitlines()]
    top = sorted(rewards, reverse=True)[:3]  # ceil(0.25 * 12)
    np.testing.assert_allclose(sorted(data["rewards"].tolist(), reverse=True), top, rtol=1e-6)


def test_ddpo_scores_a_batch_while_the_next_is_sampled(tiny_model: Any, tmp_path: Path) -> None:
    import threading

    from textnorm.train.runner import train

    second_batch_started = threading.Event()
    encode = tiny_model.encode_prompts
    calls = []

    def counting_encode(prompts: Any) -> torch.Tensor:
        calls.append(len(prompts))
        if len(calls) == 2:
            second_batch_started.set()
        return encode(prompts)

    tiny_model.encode_prompts = counting_encode
    overlapped = []

    def waiting_reward(images: torch.Tensor, prompts: list[str], meta: list[dict[str, Any]]) -> Any:
        if not overlapped:  # the first batch's reward waits for the second batch's sampling
            overlapped.append(second_batch_started.wait(timeout=20))
        return brightness_reward(images, prompts, meta)

    cfg = small_config(tmp_path, "ddpo", "unused", prompts={"eval_fraction": 0.0}, run={"steps": 1},
                       ddpo={"num_batches_per_epoch": 2, "async_reward": True})
    train(cfg, reward_fn=waiting_reward, model=tiny_model)
    assert overlapped == [True]
