"""textnorm.train maths against independent references: DDIM steps against diffusers' scheduler,
log-probabilities against scipy, PPO loss and stat tracker against hand-computed values, SFT
weights, selection and loss against their formulas; config, prompts and checkpoint files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from textnorm import LayoutError, NonFiniteError, ParameterError  # noqa: F401

torch.set_num_threads(1)


def _scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddim_step_matches_diffusers(eta: float, prediction_type: str) -> None:
    from textnorm.train.sampling import ddim_step, step_alphas

    sched = _scheduler()
    sched.register_to_config(prediction_type=prediction_type)
    sched.set_timesteps(10)
    alpha_t, alpha_p = step_alphas(sched, sched.timesteps)
    gen = torch.Generator().manual_seed(0)
    for i, t in enumerate(sched.timesteps):
        x = torch.randn(3, 4, 5, 5, generator=gen)
        out = torch.randn(3, 4, 5, 5, generator=gen)
        z = torch.randn(3, 4, 5, 5, generator=gen)
        ref = sched.step(out, t, x, eta=eta, variance_noise=z).prev_sample
        mine, _, _, _ = ddim_step(out, x, alpha_t[i], alpha_p[i], eta=eta, prediction_type=prediction_type, noise=z)
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)


def test_ddim_log_prob_matches_scipy() -> None:
    from textnorm.train.sampling import ddim_step

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    out = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    z = torch.randn(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    a_t, a_p = 0.3, 0.5
    prev, lp, mean, std = ddim_step(out, x, torch.tensor(a_t, dtype=torch.float64), torch.tensor(a_p, dtype=torch.float64), eta=1.0, noise=z)
    # Independent float64 reference of the DDIM posterior.
    x0 = (x.numpy() - math.sqrt(1 - a_t) * out.numpy()) / math.sqrt(a_t)
    sigma = math.sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p))
    mu = math.sqrt(a_p) * x0 + math.sqrt(1 - a_p - sigma**2) * out.numpy()
    expected = stats.norm.logpdf(prev.numpy(), loc=mu, scale=sigma).reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(lp.numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(prev.numpy(), mu + sigma * z.numpy(), rtol=1e-10)


def test_ppo_loss_hand_computed() -> None:
    from textnorm.train.ddpo import ppo_loss

    lp = torch.tensor([0.0, 0.5, -0.5, 0.1])
    old = torch.tensor([0.0, 0.0, 0.0, 0.0])
    adv = torch.tensor([1.0, 2.0, -1.0, 10.0])
    loss, info = ppo_loss(lp, old, adv, clip_range=0.2, adv_clip_max=5.0)
    r = np.exp([0.0, 0.5, -0.5, 0.1])
    a = np.array([1.0, 2.0, -1.0, 5.0])  # 10 clipped to 5
    terms = np.maximum(-a * r, -a * np.clip(r, 0.8, 1.2))
    # by hand: -1, max(-2e^.5, -2.4) = -2.4, max(e^-.5, 0.8) = 0.8, max(-5e^.1, -5*1.1052) = -5e^.1
    np.testing.assert_allclose(terms, [-1.0, -2.4, 0.8, -5 * math.exp(0.1)], rtol=1e-12)
    assert loss.item() == pytest.approx(terms.mean(), rel=1e-6)
    assert info["clipfrac"].item() == pytest.approx(0.5)


def test_ppo_ratio_one_gradient_is_advantage_weighted() -> None:
    from textnorm.train.ddpo import ppo_loss

    lp = torch.zeros(3, requires_grad=True)
    adv = torch.tensor([1.0, -2.0, 0.5])
    loss, _ = ppo_loss(lp, torch.zeros(3), adv, clip_range=1e-4, adv_clip_max=5.0)
    loss.backward()
    torch.testing.assert_close(lp.grad, -adv / 3)


def test_stat_tracker_hand_computed() -> None:
    from textnorm.train.stat_tracker import EPS, PerPromptStatTracker

    tr = PerPromptStatTracker(buffer_size=3, min_count=2)
    # First batch: "a" has 2 rewards (own stats), "b" has 1 (batch stats).
    adv = tr.update(["a", "a", "b"], np.array([1.0, 3.0, 5.0]))
    batch_mean, batch_std = 3.0, math.sqrt(8 / 3)
    np.testing.assert_allclose(adv, [(1 - 2) / (1 + EPS), (3 - 2) / (1 + EPS),
                                     (5 - batch_mean) / (batch_std + EPS)])
    # Second batch: "a" buffer keeps the last 3 rewards [3, 7, 9]... after adding 7 and 9: [3, 7, 9].
    adv = tr.update(["a", "a", "b"], np.array([7.0, 9.0, 5.0]))
    m, s = np.mean([3, 7, 9]), np.std([3, 7, 9])
    np.testing.assert_allclose(adv[:2], [(7 - m) / (s + EPS), (9 - m) / (s + EPS)])
    assert adv[2] == pytest.approx(0.0)  # "b" buffer [5, 5]: std 0, mean 5
    clone = PerPromptStatTracker(buffer_size=1, min_count=1)
    clone.load_state_json(tr.state_json())
    assert clone.buffers == tr.buffers and clone.min_count == 2


def test_stat_tracker_std_floor_keeps_saturated_prompts_near_zero() -> None:
    from textnorm.train.ddpo import batch_advantages
    from textnorm.train.stat_tracker import EPS, PerPromptStatTracker

    r = np.array([1.0, 1.0 - 1e-4, 0.2, 0.8])  # prompt "a" saturated, "b" not
    plain = PerPromptStatTracker(buffer_size=4, min_count=2).update(["a", "a", "b", "b"], r)
    assert abs(plain[0]) > 0.9  # a difference of 1e-4 blown up to unit scale
    floored = PerPromptStatTracker(buffer_size=4, min_count=2, std_floor=0.05).update(["a", "a", "b", "b"], r)
    np.testing.assert_allclose(floored[:2], (r[:2] - r[:2].mean()) / (0.05 + EPS), rtol=1e-12)
    np.testing.assert_allclose(floored[2:], [-1 / (1 + EPS / 0.3), 1 / (1 + EPS / 0.3)], rtol=1e-12)
    assert batch_advantages(np.array([2.0, 2.0 + 1e-12]), std_floor=0.1).max() < 1e-10


@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=20), st.integers(1, 4))
def test_sft_weights_and_selection_formula(rewards: list[float], n_groups: int) -> None:
    from textnorm.train.sft import minmax_weights, select_top

    r = np.asarray(rewards)
    g = np.arange(r.size) % n_groups
    w = minmax_weights(r, g)
    for k in np.unique(g):
        m = g == k
        lo, hi = r[m].min(), r[m].max()
        np.testing.assert_allclose(w[m], (r[m] - lo) / (hi - lo) if hi > lo else 1.0)
    keep = select_top(r, g, fraction=0.25, per_group=False)
    assert keep.size == max(1, math.ceil(0.25 * r.size))
    assert r[keep].min() >= np.sort(r)[::-1][keep.size - 1]
    keep_g = select_top(r, g, fraction=0.25, per_group=True)
    assert set(g[keep_g]) == set(g)


def test_sft_loss_formula() -> None:
    from textnorm.train.sft import sft_loss

    gen = torch.Generator().manual_seed(0)
    pred, target, ref = (torch.randn(3, 2, 4, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    w = torch.tensor([1.0, 0.25, 0.0], dtype=torch.float64)
    loss, info = sft_loss(pred, target, ref, w, beta=0.5)
    p, t, r = pred.numpy().reshape(3, -1), target.numpy().reshape(3, -1), ref.numpy().reshape(3, -1)
    fit = np.mean(w.numpy() * ((p - t) ** 2).mean(1))
    reg = ((p - r) ** 2).mean(1).mean()
    assert loss.item() == pytest.approx(fit + 0.5 * reg, rel=1e-6)
    assert info["reg"].item() == pytest.approx(reg, rel=1e-6)


# ---- config ------------------------------------------------------------------------------

def test_config_toml_yaml_and_overrides(tmp_path: Path) -> None:
    from textnorm.train.config import load_config, save_config

    toml = tmp_path / "c.toml"
    toml.write_text('mode = "sft"\nseed = 3\n[sft]\nbeta = 0.25\n[model]\nlora_targets = ["to_q"]\n')
    cfg = load_config(toml, overrides={"sft.beta": "0.75", "run.steps": "7", "model.full_finetune": "true"})
    assert (cfg.mode, cfg.seed, cfg.sft.beta, cfg.run.steps) == ("sft", 3, 0.75, 7)
    assert cfg.model.lora_targets == ["to_q"] and cfg.model.full_finetune is True
    yaml_path = tmp_path / "saved.yaml"
    save_config(cfg, yaml_path)
    assert load_config(yaml_path) == cfg


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"mode": "ppo"}, "mode"),
    ({"ddpo.clip_range": "-1"}, "ddpo.clip_range"),
    ({"ddpo.clip_range": "nan"}, "ddpo.clip_range"),
    ({"run.steps": "2.5"}, "run.steps"),
    ({"ddpo.train_batch_size": "0"}, "ddpo.train_batch_size"),
    ({"sft.top_fraction": "1.5"}, "sft.top_fraction"),
    ({"model.full_finetune": "maybe"}, "model.full_finetune"),
    ({"ddpo.nonsense": "1"}, "ddpo.nonsense"),
    ({"sampling.eta": "0"}, "sampling.eta"),
    ({"draft.k": "99"}, "draft.k"),
])
def test_config_bad_values_name_the_option(overrides: dict[str, str], needle: str) -> None:
    from textnorm.train.config import load_config

    with pytest.raises(ParameterError, match=needle.replace(".", r"\.")):
        load_config(overrides=overrides)


def test_config_file_errors(tmp_path: Path) -> None:
    from textnorm.train.config import load_config

    with pytest.raises(ParameterError, match="config"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("mode = [\n")
    with pytest.raises(ParameterError, match="could not parse"):
        load_config(bad)
    txt = tmp_path / "c.ini"
    txt.write_text("x")
    with pytest.raises(ParameterError, match=".toml"):
        load_config(txt)


# ---- prompts -----------------------------------------------------------------------------

def test_prompt_files_and_held_out_eval(tmp_path: Path) -> None:
    from textnorm.train.config import PromptConfig
    from textnorm.train.prompts import load_prompts

    txt = tmp_path / "p.txt"
    txt.write_text("# comment\na cat\n\ntwo dogs\na red ball\nthree birds\n")
    ps = load_prompts(PromptConfig(source="file", path=str(txt), eval_fraction=0.25), seed=0)
    assert len(ps.eval) == 1 and len(ps.train) == 3
    assert set(ps.train).isdisjoint(ps.eval)
    assert sorted(ps.train + ps.eval) == sorted(["a cat", "two dogs", "a red ball", "three birds"])
    js = tmp_path / "p.json"
    js.write_text(json.dumps({"two dogs": ["one dog", "three dogs"]}))
    ps = load_prompts(PromptConfig(source="file", path=str(js), eval_fraction=0.0), seed=0)
    assert ps.train_meta == [{"contrastive": ["one dog", "three dogs"]}] and ps.eval == []
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"prompt": "a cat", "category": "x"}\n')
    ps = load_prompts(PromptConfig(source="file", path=str(jl), eval_fraction=0.0), seed=0)
    assert ps.train == ["a cat"] and ps.train_meta == [{"category": "x"}]
    ps = load_prompts(PromptConfig(source="callable", eval_fraction=0.0), seed=0,
                      source=lambda: [("a", {"k": 1}), "b"])
    assert ps.train == ["a", "b"] and ps.train_meta[0] == {"k": 1}


def test_prompt_errors(tmp_path: Path) -> None:
    from textnorm.train.config import PromptConfig
    from textnorm.train.prompts import load_prompts

    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n")
    with pytest.raises(ParameterError, match="empty file"):
        load_prompts(PromptConfig(source="file", path=str(empty)), seed=0)
    with pytest.raises(ParameterError, match="prompts.path"):
        load_prompts(PromptConfig(source="file", path=str(tmp_path / "nope.txt")), seed=0)
    with pytest.raises(ParameterError, match="prompts.target"):
        load_prompts(PromptConfig(source="callable", target="no_colon"), seed=0)
    with pytest.raises(ParameterError, match="tia2"):
        load_prompts(PromptConfig(source="tia2", path=str(tmp_path), tia2_sets=["counting"]), seed=0)


def test_tia2_prompts_carry_contrastive_sets(tia2_root: Path) -> None:
    from textnorm.train.config import PromptConfig
    from textnorm.train.prompts import load_prompts

    ps = load_prompts(PromptConfig(source="tia2", path=str(tia2_root), tia2_sets=["counting"],
                                   eval_fraction=0.1, max_eval_prompts=1000), seed=0)
    raw = json.loads((tia2_root / "prompts" / "prompt_set_counting.json").read_text())
    assert len(ps.train) + len(ps.eval) == len(raw)
    for prompt, meta in zip(ps.train, ps.train_meta):
        assert meta["contrastive"] == raw[prompt] and meta["category"] == "counting"


# ---- checkpoints -------------------------------------------------------------------------

def test_checkpoint_round_trip_atomic_and_pruned(tmp_path: Path) -> None:
    import random

    from textnorm.train.checkpoint import latest_checkpoint, load_checkpoint, restore, save_checkpoint

    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=0.1)
    p.grad = torch.ones_like(p)
    opt.step()
    (tmp_path / ".tmp-junk.safetensors").write_bytes(b"partial")  # a killed writer's leftover
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step=step, weights={"p": p}, optimizer=opt, extra={"k": step}, keep=2)
    expect = (torch.rand(2), np.random.rand(), random.random())
    names = sorted(f.name for f in tmp_path.iterdir() if f.name.startswith("step-"))
    assert names == ["step-00000002.safetensors", "step-00000003.safetensors"]
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step-00000003.safetensors"
    tensors, meta = load_checkpoint(latest)
    q = torch.nn.Parameter(torch.zeros(3, 2))
    opt2 = torch.optim.AdamW([q], lr=0.5)
    weights = restore(tensors, meta, optimizer=opt2)
    torch.testing.assert_close(weights["p"], p.detach())
    assert meta["extra"] == {"k": 3} and opt2.param_groups[0]["lr"] == 0.1
    torch.testing.assert_close(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert (torch.rand(2), np.random.rand(), random.random())[1:] == expect[1:]
    assert latest_checkpoint(tmp_path / "none") is None
    assert not any(f.name.startswith(".tmp") and f.stat().st_size > 7 for f in tmp_path.iterdir())
    assert os.path.getsize(latest) > 0
