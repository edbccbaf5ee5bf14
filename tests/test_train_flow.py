"""The flow-matching adapter and Flow-GRPO's SDE sampler, on a tiny random-weight SD3 pipeline
saved to disk and loaded back by path.

References are independent of the code under test: the pipeline's own ODE sampling (diffusers),
the SDE step's Gaussian density written from the score form of the drift in float64, and the
closed-form velocity of Gaussian data, whose exact marginals the SDE must keep.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from flow_helpers import T5_MAX_LENGTH, save_tiny_sd3, tiny_sd3_dir  # noqa: F401

from textnorm import TextnormError
from textnorm.train import flow_sde
from textnorm.train.flow_model import FlowMatchingModel, is_flow_pipeline
from textnorm.train.model import T2IModel

torch.set_num_threads(1)

PROMPTS = ["a cat", "two red dogs"]


@pytest.fixture(scope="module")
def model(tiny_sd3_dir: Path) -> FlowMatchingModel:
    return FlowMatchingModel.from_pretrained(str(tiny_sd3_dir))


# ---- the adapter ---------------------------------------------------------------------------------

def test_loads_by_path_as_a_t2i_model(model: FlowMatchingModel, tiny_sd3_dir: Path) -> None:
    assert isinstance(model, T2IModel)
    assert is_flow_pipeline(str(tiny_sd3_dir))
    assert model.sampler is flow_sde.FLOW_SDE
    assert model.latent_shape == (4, 16, 16)
    assert len(model.text_encoders) == 3
    assert model.max_sequence_length == T5_MAX_LENGTH
    # The saved tokenizers came back working (transformers 5 can load broken ones silently).
    assert model.pipeline.tokenizer("a cat").input_ids == [49406, 320, 2368, 49407]
    assert model.pipeline.tokenizer_3("a cat").input_ids[-1] == model.pipeline.tokenizer_3.eos_token_id


def test_conditioning_packs_the_pipelines_own_encoding(model: FlowMatchingModel) -> None:
    cond = model.encode_prompts(PROMPTS)
    tokens, _, pooled, _ = model.pipeline.encode_prompt(
        prompt=PROMPTS, prompt_2=None, prompt_3=None, device=model.device,
        do_classifier_free_guidance=False, max_sequence_length=model.max_sequence_length)
    assert cond.shape == (2, 77 + T5_MAX_LENGTH + 2, 32)  # pooled 64 = two extra 32-wide tokens
    got_tokens, got_pooled = model.split_conditioning(cond)
    torch.testing.assert_close(got_tokens, tokens, rtol=0, atol=0)
    torch.testing.assert_close(got_pooled, pooled, rtol=0, atol=0)
    # Different prompts give different conditioning (the tokenizers are not degenerate).
    assert not torch.equal(cond[0], cond[1])
    null = model.null_embedding(3)
    assert null.shape == (3, *cond.shape[1:])
    torch.testing.assert_close(null[0], model.encode_prompts([""])[0], rtol=0, atol=0)


def test_velocity_is_the_transformer_output(model: FlowMatchingModel) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, *model.latent_shape, generator=gen)
    t = torch.tensor([900.0, 300.0])
    cond = model.encode_prompts(PROMPTS)
    tokens, pooled = model.split_conditioning(cond)
    with torch.no_grad():
        want = model.denoiser(hidden_states=x, timestep=t, encoder_hidden_states=tokens,
                              pooled_projections=pooled).sample
        got = model.predict_noise(model.denoiser, x, t, cond)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_decode_matches_the_pipeline(model: FlowMatchingModel) -> None:
    gen = torch.Generator().manual_seed(2)
    latents = torch.randn(1, *model.latent_shape, generator=gen)
    with torch.no_grad():
        got = model.decode(latents)
        pipe = model.pipeline(PROMPTS[:1], num_inference_steps=2, latents=latents, output_type="pt",
                              max_sequence_length=model.max_sequence_length)
    assert got.shape == (1, 3, 16, 16) and 0 <= got.min() and got.max() <= 1
    # Decoding the pipeline's final latents through the adapter gives the pipeline's images.
    final = model.pipeline(PROMPTS[:1], num_inference_steps=2, latents=latents, output_type="latent",
                           max_sequence_length=model.max_sequence_length).images
    torch.testing.assert_close(model.decode(final), pipe.images, rtol=0, atol=1e-6)


def test_lora_starts_at_the_base_model_and_round_trips(tiny_sd3_dir: Path) -> None:
    m = FlowMatchingModel.from_pretrained(str(tiny_sd3_dir))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, *m.latent_shape, generator=gen)
    t = torch.tensor([500.0, 500.0])
    cond = m.encode_prompts(PROMPTS)
    with torch.no_grad():
        base = m.predict_noise(m.denoiser, x, t, cond)
    m.add_lora(rank=2, alpha=2.0, targets=["to_q", "to_k", "to_v", "to_out.0"])
    trainable = [n for n, p in m.denoiser.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    state = m.lora_state_dict()
    with torch.no_grad():
        torch.testing.assert_close(m.predict_noise(m.denoiser, x, t, cond), base)
        for name, p in m.denoiser.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
        moved = m.predict_noise(m.denoiser, x, t, cond)
        with m.adapters_disabled():
            torch.testing.assert_close(m.predict_noise(m.denoiser, x, t, cond), base)
    assert not torch.allclose(moved, base)
    m.load_lora_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(m.predict_noise(m.denoiser, x, t, cond), base)


def test_pipeline_without_t5_loads(tmp_path: Path) -> None:
    path = save_tiny_sd3(tmp_path / "no-t5", with_t5=False)
    m = FlowMatchingModel.from_pretrained(str(path), max_sequence_length=8)
    assert len(m.text_encoders) == 2
    cond = m.encode_prompts(PROMPTS)
    assert cond.shape == (2, 77 + 8 + 2, 32)
    assert torch.count_nonzero(m.split_conditioning(cond)[0][:, 77:]) == 0  # T5 part: zeros


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(TextnormError, match="HF_HUB_OFFLINE"):
        FlowMatchingModel.from_pretrained("nobody-textnorm/not-a-model")
    with pytest.raises(TextnormError, match="not a pipeline folder"):
        FlowMatchingModel.from_pretrained(str(tmp_path))
    assert not is_flow_pipeline(str(tmp_path))
    from textnorm.train.tiny import tiny_pipeline

    with pytest.raises(TextnormError, match="StableDiffusion3Pipeline"):
        FlowMatchingModel(tiny_pipeline())


def test_resolution_must_fit_the_patches(tiny_sd3_dir: Path) -> None:
    with pytest.raises(TextnormError, match="model.resolution"):
        FlowMatchingModel.from_pretrained(str(tiny_sd3_dir), resolution=15)
    assert FlowMatchingModel.from_pretrained(str(tiny_sd3_dir), resolution=8).latent_shape == (4, 8, 8)


def test_runner_loads_flow_pipelines_by_path(tiny_sd3_dir: Path) -> None:
    from textnorm.train.config import ModelConfig
    from textnorm.train.runner import load_model

    assert isinstance(load_model(ModelConfig(path=str(tiny_sd3_dir))), FlowMatchingModel)


# ---- the sampler against the pipeline ----------------------------------------------------------

@pytest.mark.parametrize("steps,guidance", [(4, 2.0), (3, 1.0)])
def test_zero_noise_reproduces_the_pipelines_ode_sampling(model: FlowMatchingModel, steps: int,
                                                          guidance: float) -> None:
    gen = torch.Generator().manual_seed(4)
    noise = torch.randn(2, steps + 1, *model.latent_shape, generator=gen)
    cond = model.encode_prompts(PROMPTS)
    with torch.no_grad():
        traj = flow_sde.sample(model, model.denoiser, cond, noise=noise, num_steps=steps,
                               guidance_scale=guidance, eta=0.0)
        want = model.pipeline(PROMPTS, num_inference_steps=steps, guidance_scale=guidance,
                              latents=noise[:, 0].clone(), output_type="latent",
                              max_sequence_length=model.max_sequence_length).images
    assert traj.latents.shape == (2, steps + 1, *model.latent_shape)
    assert traj.log_probs.shape == (2, steps)
    torch.testing.assert_close(traj.final, want, rtol=0, atol=1e-5)
    assert not flow_sde.stochastic_steps(model, traj.timesteps, 0.0).any()


def test_sde_sampling_is_stochastic_and_its_log_probs_recompute(model: FlowMatchingModel) -> None:
    steps, a = 4, 0.7
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn(2, steps + 1, *model.latent_shape, generator=gen)
    cond = model.encode_prompts(PROMPTS)
    with torch.no_grad():
        ode = flow_sde.sample(model, model.denoiser, cond, noise=noise, num_steps=steps,
                              guidance_scale=2.0, eta=0.0)
        sde = flow_sde.sample(model, model.denoiser, cond, noise=noise, num_steps=steps,
                              guidance_scale=2.0, eta=a)
        assert model.sampler.stochastic_steps(model, sde.timesteps, a).all()
        assert (sde.final - ode.final).abs().mean() > 1e-2
        # PPO's recomputation of each recorded transition gives back its log-probability.
        for i in range(steps):
            lp, _, std = model.sampler.step_log_prob(
                model, model.denoiser, sde.latents[:, i], sde.latents[:, i + 1],
                torch.full((2,), i), sde.timesteps, cond, guidance_scale=2.0, eta=a)
            torch.testing.assert_close(lp, sde.log_probs[:, i], rtol=0, atol=1e-5)
            assert (std > 0).all()


def test_fewer_training_steps_than_evaluation_steps(model: FlowMatchingModel) -> None:
    cond = model.encode_prompts(PROMPTS[:1])
    with torch.no_grad():
        for steps in (2, 6):
            noise = torch.randn(1, steps + 1, *model.latent_shape, generator=torch.Generator().manual_seed(6))
            traj = flow_sde.sample(model, model.denoiser, cond, noise=noise, num_steps=steps,
                                   guidance_scale=1.0, eta=0.5)
            assert traj.log_probs.shape == (1, steps)
            assert traj.timesteps[0] == 1000.0


# ---- the SDE step's maths ------------------------------------------------------------------------

def _reference_step(v: np.ndarray, x: np.ndarray, t: float, s: float, a: float, t_cap: float,
                    ) -> tuple[np.ndarray, float]:
    """Mean and std of one Euler-Maruyama step of dx = [v - sigma^2/2 * score] dt + sigma dw, with
    the score of a rectified flow -E[eps | x_t] / t, in float64."""
    eps_hat = x + (1.0 - t) * v  # x_t = (1 - t) x0 + t eps and v = eps - x0
    score = -eps_hat / t
    tc = min(t, t_cap)
    sigma = a * math.sqrt(tc / (1.0 - tc))
    drift = v - 0.5 * sigma**2 * score
    return x + (s - t) * drift, sigma * math.sqrt(t - s)


@given(seed=st.integers(0, 2**31 - 1), t=st.floats(0.05, 1.0), frac=st.floats(0.05, 0.95),
       a=st.floats(0.05, 1.5))
def test_sde_step_log_prob_is_the_gaussian_density(seed: int, t: float, frac: float, a: float) -> None:
    rng = np.random.default_rng(seed)
    s = t * frac
    t_cap = 0.95
    x = rng.standard_normal((3, 2, 4, 4))
    v = rng.standard_normal((3, 2, 4, 4))
    z = rng.standard_normal((3, 2, 4, 4))
    mean, std = _reference_step(v, x, t, s, a, t_cap)
    nxt = mean + std * z
    logpdf = -0.5 * ((nxt - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    want = logpdf.reshape(3, -1).mean(axis=1)
    got_next, lp, got_mean, got_std = flow_sde.sde_step(
        torch.from_numpy(v), torch.from_numpy(x), t, s, noise_level=a, t_cap=t_cap,
        noise=torch.from_numpy(z))
    np.testing.assert_allclose(got_mean.numpy(), mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_std.flatten().numpy(), std, rtol=1e-10)
    np.testing.assert_allclose(got_next.numpy(), nxt, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(lp.numpy(), want, rtol=1e-10, atol=1e-9)
    # Scoring a given pair (PPO's ratio) gives the same density.
    lp2, _, _ = flow_sde.transition_log_prob(torch.from_numpy(v), torch.from_numpy(x),
                                             torch.from_numpy(nxt), t, s, noise_level=a, t_cap=t_cap)
    np.testing.assert_allclose(lp2.numpy(), want, rtol=1e-10, atol=1e-9)


def test_zero_noise_step_is_the_euler_step_of_diffusers() -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched: Any = FlowMatchEulerDiscreteScheduler(shift=3.0)
    sched.set_timesteps(5)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    times, times_next, cap = flow_sde.flow_times(sched, sched.timesteps)
    for i, ts in enumerate(sched.timesteps):
        v = torch.randn(2, 4, 8, 8, generator=gen)
        want = sched.step(v, ts, x, return_dict=False)[0]
        got, _, _, _ = flow_sde.sde_step(v, x, times[i], times_next[i], noise_level=0.0, t_cap=cap)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        x = want


@pytest.mark.parametrize("a", [0.0, 0.7])
def test_sde_keeps_the_marginals_of_gaussian_data(a: float) -> None:
    """Data x0 ~ N(m, s^2): the exact velocity is known, so sampling from N(0, 1) with the SDE must
    end at N(m, s^2) for any noise level (up to discretisation and Monte Carlo error)."""
    m, s2, n, steps = 1.5, 0.25, 40000, 200
    gen = torch.Generator().manual_seed(8)

    def velocity(x: torch.Tensor, t: float) -> torch.Tensor:
        var = (1 - t) ** 2 * s2 + t**2
        centred = x - (1 - t) * m
        e_eps = t / var * centred
        e_x0 = m + (1 - t) * s2 / var * centred
        return e_eps - e_x0

    times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    x = torch.randn(n, 1, generator=gen, dtype=torch.float64)
    for i in range(steps):
        t, tn = float(times[i]), float(times[i + 1])
        z = torch.randn(n, 1, generator=gen, dtype=torch.float64)
        x, _, _, _ = flow_sde.sde_step(velocity(x, t), x, t, tn, noise_level=a, t_cap=float(times[1]), noise=z)
    assert abs(float(x.mean()) - m) < 0.03
    assert abs(float(x.var()) - s2) < 0.03


def test_noise_std_rejects_a_cap_at_one() -> None:
    with pytest.raises(TextnormError, match="t_cap"):
        flow_sde.noise_std(torch.tensor([0.5]), noise_level=0.7, t_cap=1.0)



def test_step_log_prob_takes_a_step_per_sample(model: FlowMatchingModel) -> None:
    """Samples of one minibatch may sit at different steps (PPO shuffles steps per sample)."""
    gen = torch.Generator().manual_seed(9)
    noise = torch.randn(2, 4, *model.latent_shape, generator=gen)
    cond = model.encode_prompts(PROMPTS)
    with torch.no_grad():
        traj = model.sampler.sample(model, model.denoiser, cond, noise=noise, num_steps=3,
                                    guidance_scale=2.0, eta=0.7)
        idx = torch.tensor([0, 2])
        rows = torch.arange(2)
        lp, _, _ = model.sampler.step_log_prob(model, model.denoiser, traj.latents[rows, idx],
                                               traj.latents[rows, idx + 1], idx, traj.timesteps,
                                               cond, guidance_scale=2.0, eta=0.7)
    torch.testing.assert_close(lp, traj.log_probs[rows, idx], rtol=0, atol=1e-5)
