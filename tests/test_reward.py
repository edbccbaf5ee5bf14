"""TextNormReward and RawReward on tiny random scorers: equal to textnorm.confidence /
ensemble applied to the scorers' own score output and to a float64 reference, cache on/off
identical, gradients to the images, contrast inputs (the README's form included), fallbacks, and
each scorer's work done once (errors: test_reward_errors.py)."""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from reward_data import PROMPTS, SETS, FakeSets  # noqa: E402

import textnorm  # noqa: E402
from textnorm import ParameterError, RawReward, TextNormReward  # noqa: E402
from textnorm.reward import as_plain  # noqa: E402
from textnorm.scorers import AestheticScorer, _tiny  # noqa: E402
from textnorm.scorers.aesthetic import aesthetic_head  # noqa: E402

torch.set_num_threads(1)



@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(4, 3, 40, 40, generator=torch.Generator().manual_seed(0))


def reference_confidence(row: np.ndarray, scale: float, mode: str) -> float:
    """softmax(z)[0] in float64 with z per DESIGN.md section 2."""
    row = np.asarray(row, dtype=np.float64)
    if mode == "minmax":
        spread = row.max() - row.min()
        z = scale * (row - row.min()) / spread if spread > 0 else np.zeros_like(row)
    else:
        z = scale * row
    p = np.exp(z - z.max())
    return float(p[0] / p.sum())


def own_scores(scorer: Any, images: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the scorer's own `score` against [prompt, *set], concatenated (CSR)."""
    rows = [scorer.score(images[i : i + 1], [p, *SETS[p]])[0] for i, p in enumerate(prompts)]
    offsets = torch.tensor([0, *np.cumsum([len(r) for r in rows])])
    return torch.cat(rows), offsets


@pytest.mark.parametrize("mode", ["minmax", "temperature"])
@pytest.mark.parametrize("kind", ["open_clip", "transformers", "blip2", "blip2_itm", "imagereward"])
def test_single_scorer_equals_confidence_of_own_scores(kind: str, mode: str, images: torch.Tensor) -> None:
    builders = {"open_clip": _tiny.tiny_open_clip, "transformers": _tiny.tiny_transformers_clip,
                "blip2": _tiny.tiny_blip2, "imagereward": _tiny.tiny_image_reward,
                "blip2_itm": lambda: _tiny.tiny_blip2(head="itm")}  # fmt: skip
    scorer = builders[kind]()
    reward = TextNormReward(scorer, SETS, scale=3.0, mode=mode)
    rewards, info = reward(images, PROMPTS)
    assert rewards.shape == (4,) and rewards.dtype == torch.float32 and rewards.device == images.device
    values, offsets = own_scores(scorer, images, PROMPTS)
    expected = textnorm.confidence(values, offsets=offsets, scale=3.0, mode=mode)
    torch.testing.assert_close(rewards, expected, rtol=1e-5, atol=1e-6)
    for i in range(4):
        row = values[offsets[i] : offsets[i + 1]].numpy()
        assert rewards[i].item() == pytest.approx(reference_confidence(row, 3.0, mode), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(info["raw"][scorer.id], values[offsets[:-1]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(info["confidence"][scorer.id], rewards)
    assert info["set_size"].tolist() == [3, 3, 3, 5]
    assert info["fallback"].tolist() == [False] * 4


@pytest.mark.parametrize(("method", "lam"), [("mean", 0.0), ("ur", 0.5), ("ur_std", 1.0)])
def test_ensemble_equals_textnorm_ensemble(method: str, lam: float, images: torch.Tensor) -> None:
    scorers = [_tiny.tiny_open_clip(), _tiny.tiny_transformers_clip(), _tiny.tiny_blip2()]
    reward = TextNormReward(scorers, SETS, scale=5.0, method=method, lam=lam)
    rewards, info = reward(images, PROMPTS)
    own = [own_scores(s, images, PROMPTS) for s in scorers]
    offsets = own[0][1]
    stack = torch.stack([v for v, _ in own])
    expected = textnorm.ensemble(stack, offsets=offsets, scale=5.0, method=method, lam=lam)
    torch.testing.assert_close(rewards, expected, rtol=1e-5, atol=1e-6)
    per_model = np.array([
        [reference_confidence(v[offsets[i] : offsets[i + 1]].numpy(), 5.0, "minmax") for i in range(4)]
        for v, _ in own
    ])  # fmt: skip
    penalty = {"mean": 0.0, "ur": per_model.var(0), "ur_std": per_model.std(0)}[method]
    np.testing.assert_allclose(rewards.numpy(), per_model.mean(0) - lam * penalty, rtol=1e-5, atol=1e-6)
    for s, conf in zip(scorers, per_model, strict=True):
        np.testing.assert_allclose(info["confidence"][s.id].numpy(), conf, rtol=1e-5, atol=1e-6)


def test_cache_on_and_off_identical(images: torch.Tensor) -> None:
    on = TextNormReward([_tiny.tiny_open_clip(), _tiny.tiny_blip2()], SETS)
    off = TextNormReward([_tiny.tiny_open_clip(cache_size=0), _tiny.tiny_blip2(cache_size=0)], SETS)
    first, info1 = on(images, PROMPTS)
    second, info2 = on(images, PROMPTS)
    cold, info3 = off(images, PROMPTS)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, cold, rtol=1e-6, atol=1e-6)
    assert info1["cache_hit_rate"] == 0.0 and info2["cache_hit_rate"] == 1.0 and info3["cache_hit_rate"] == 0.0


def test_gradients_reach_images() -> None:
    images = torch.rand(4, 3, 40, 40, requires_grad=True)
    reward = TextNormReward([_tiny.tiny_open_clip(), _tiny.tiny_image_reward()], SETS, method="ur", lam=0.1)
    rewards, info = reward(images, PROMPTS)
    assert rewards.requires_grad and not info["raw"][reward.scorers[0].id].requires_grad
    rewards.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all() and images.grad.abs().sum() > 0
    # the gradient matches a finite difference of the reward along a random direction
    direction = torch.randn_like(images) * 1e-3
    with torch.no_grad():
        up, _ = reward((images + direction).clamp(0, 1), PROMPTS)
        down, _ = reward((images - direction).clamp(0, 1), PROMPTS)
    numeric = (up.sum() - down.sum()).item() / 2
    analytic = (images.grad * direction).sum().item()
    assert numeric == pytest.approx(analytic, rel=0.05, abs=1e-6)




def test_contrast_inputs_agree(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_open_clip()
    calls: list[str] = []

    def make(prompt: str) -> list[str]:
        calls.append(prompt)
        return SETS[prompt]

    def make_sets(prompt: str) -> FakeSets:
        return FakeSets({prompt: SETS[prompt]})

    expected, _ = TextNormReward(scorer, SETS)(images, PROMPTS)
    for contrast in (FakeSets(SETS), make, make_sets):
        got, _ = TextNormReward(scorer, contrast)(images, PROMPTS)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert calls == ["three dogs on a red mat", "a cat and a bird", "a blue horse"]  # memoised
    reward = TextNormReward(scorer, make)
    reward(images, PROMPTS)
    reward(images, PROMPTS)
    assert calls[3:] == calls[:3]


def test_real_contrastive_sets(images: torch.Tensor) -> None:
    if not hasattr(textnorm, "contrast") and "contrast" not in getattr(textnorm, "_LAZY", {}):
        pytest.skip("textnorm.contrast is not available yet")
    prompts = ["three dogs on a red mat", "a cat and a bird"]
    sets = textnorm.contrast(prompts)
    reward = TextNormReward(_tiny.tiny_open_clip(), sets)
    rewards, info = reward(images[:2], prompts)
    lists = sets.prompt_lists()
    assert info["set_size"].tolist() == [len(lst) - 1 for lst in lists]
    values, offsets = _tiny.tiny_open_clip().score_sets(images[:2], lists)
    torch.testing.assert_close(rewards, textnorm.confidence(values, offsets=offsets))


def test_target_copies_and_duplicates_are_dropped(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_open_clip()
    noisy = {"a blue horse": ["a red horse", "a blue horse", "a red horse", "a blue dog"]}
    clean = {"a blue horse": ["a red horse", "a blue dog"]}
    a, info = TextNormReward(scorer, noisy)(images[:1], ["a blue horse"])
    b, _ = TextNormReward(scorer, clean)(images[:1], ["a blue horse"])
    torch.testing.assert_close(a, b)
    assert info["set_size"].tolist() == [2]
    assert TextNormReward(scorer, noisy).contrastive("a blue horse") == ("a red horse", "a blue dog")


def test_empty_set_raises_or_falls_back(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_open_clip()
    sets = {**SETS, "a cat and a bird": ["a cat and a bird"]}  # only a copy of the target
    with pytest.raises(ParameterError, match=r"prompts\[1\]: the contrastive set of 'a cat and a bird' is empty.*on_empty='raw'"):
        TextNormReward(scorer, sets)(images, PROMPTS)
    rewards, info = TextNormReward(scorer, sets, on_empty="raw")(images, PROMPTS)
    full, _ = TextNormReward(scorer, SETS)(images, PROMPTS)
    assert info["fallback"].tolist() == [False, True, False, False]
    raw = scorer.score_pairs(images, PROMPTS)
    assert rewards[1].item() == pytest.approx(raw[1].item(), rel=1e-5)
    torch.testing.assert_close(rewards[[0, 2, 3]], full[[0, 2, 3]])
    assert info["set_size"].tolist() == [3, 0, 3, 5]


def test_raw_reward_and_plain_adapter(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_blip2()
    raw = RawReward(scorer)
    rewards, info = raw(images, PROMPTS, {"step": 1})
    torch.testing.assert_close(rewards, scorer.score(images, PROMPTS).diagonal(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(info["raw"][scorer.id], rewards)
    torch.testing.assert_close(raw.as_plain()(images, PROMPTS), rewards)
    calibrated = TextNormReward(scorer, SETS)
    torch.testing.assert_close(as_plain(calibrated)(images, PROMPTS), calibrated(images, PROMPTS)[0])
    assert raw.id == f"raw[{scorer.id}]" and scorer.id in calibrated.id


def test_aesthetic_is_raw_only(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    aesthetic = AestheticScorer(_tiny.tiny_open_clip(), aesthetic_head(32))
    assert aesthetic.prompt_free
    with pytest.raises(ParameterError, match=r"scorers\[1\]: AestheticScorer is prompt-free.*use textnorm.RawReward"):
        TextNormReward([_tiny.tiny_open_clip(), aesthetic], SETS)
    with pytest.raises(ParameterError, match=r"prompt_lists: AestheticScorer is prompt-free"):
        aesthetic.score_sets(images, [["a"]] * 4)
    with pytest.raises(ParameterError, match=r"texts: AestheticScorer is prompt-free"):
        aesthetic.encode_text(["a"])
    rewards, _ = RawReward(aesthetic)(images, PROMPTS)
    torch.testing.assert_close(aesthetic.score(images, ["x", "y"]), rewards[:, None].expand(-1, 2))


def test_lazy_exports() -> None:
    assert textnorm.TextNormReward is TextNormReward and textnorm.RawReward is RawReward
    from textnorm import scorers

    for name in ("CLIPScorer", "PickScoreScorer", "HPSv2Scorer", "BLIP2Scorer", "ImageRewardScorer", "AestheticScorer"):
        assert getattr(textnorm, name) is getattr(scorers, name)


def test_one_image_encoding_per_call_with_dual_encoder(images: torch.Tensor) -> None:
    """TextNorm's cost claim: K+1 prompts per image, yet one image pass per scorer and call."""
    scorer = _tiny.tiny_open_clip()
    passes: list[int] = []
    handle = scorer.model.visual.register_forward_hook(lambda m, a, o: passes.append(a[0].shape[0]))
    try:
        TextNormReward(scorer, SETS)(images, PROMPTS)
    finally:
        handle.remove()
    assert passes == [4]


@settings(max_examples=15)
@given(data=st.data())
def test_reward_ignores_order_and_repeats_of_contrastive_prompts(data: st.DataObject) -> None:
    scorer = _tiny.tiny_open_clip()
    batch = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    prompt = "a blue horse"
    base = SETS[prompt]
    shuffled = data.draw(st.permutations(base))
    repeats = data.draw(st.lists(st.sampled_from([prompt, *base]), max_size=6))
    noisy = {prompt: list(shuffled) + repeats}
    expected, _ = TextNormReward(scorer, {prompt: base}, scale=3.0)(batch, [prompt])
    got, info = TextNormReward(scorer, noisy, scale=3.0)(batch, [prompt])
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    assert info["set_size"].tolist() == [len(base)]


def _readme_block(marker: str) -> str:
    from conftest import REPO

    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one README python block with {marker!r}, found {len(found)}"
    return found[0]


def test_readme_reward_example_runs_with_tiny_scorers(monkeypatch: pytest.MonkeyPatch, images: torch.Tensor) -> None:
    """The README's reward block, run as written; only the weights are tiny random ones."""
    from textnorm.scorers import CLIPScorer, PickScoreScorer

    monkeypatch.setattr(CLIPScorer, "from_pretrained", classmethod(lambda cls, *a, **k: _tiny.tiny_open_clip()))
    monkeypatch.setattr(
        PickScoreScorer, "from_pretrained", classmethod(lambda cls, *a, **k: _tiny.tiny_transformers_clip())
    )
    prompts = ["three dogs on a red mat", "a cat and a bird", "a blue horse", "three dogs on a red mat"]
    namespace: dict[str, Any] = {"images": images, "prompts": prompts}
    exec(compile(_readme_block("textnorm.TextNormReward("), "README.md", "exec"), namespace)  # noqa: S102
    rewards, info = namespace["rewards"], namespace["info"]
    # the same reward by hand: rule-based sets, each scorer's scores, textnorm.ensemble
    sets = textnorm.contrast(prompts)
    scorers = [_tiny.tiny_open_clip(), _tiny.tiny_transformers_clip()]
    scored = [s.score_sets(images, sets.prompt_lists())[0] for s in scorers]
    expected = textnorm.ensemble(torch.stack(scored), offsets=sets.offsets, scale=3.0, method="ur", lam=0.5)
    torch.testing.assert_close(rewards, expected, rtol=1e-5, atol=1e-6)
    assert info["set_size"].tolist() == (np.diff(sets.offsets) - 1).tolist()


def test_textnorm_contrast_and_its_partials_are_called_with_lists(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_open_clip()
    prompts = ["two red cubes", "a cat", "two red cubes", "three blue dogs"]
    for make in (textnorm.contrast, functools.partial(textnorm.contrast, rules=["count"], k=3, seed=1)):
        reward = TextNormReward(scorer, make, scale=3.0)
        got, info = reward(images, prompts)
        sets = make(list(dict.fromkeys(prompts)))
        by_prompt = {lst[0]: lst[1:] for lst in sets.prompt_lists()}
        expected, _ = TextNormReward(scorer, by_prompt, scale=3.0)(images, prompts)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        assert reward.contrastive("a cat") == tuple(by_prompt["a cat"])
        assert info["set_size"].tolist() == [len(by_prompt[p]) for p in prompts]


def test_an_ensemble_normalises_each_scorer_once_on_one_host_layout(
    monkeypatch: pytest.MonkeyPatch, images: torch.Tensor
) -> None:
    """Issue 15: each scorer's confidence is computed once (info and reward share it), every
    scorer is given the same offsets, built once on the host, and prompts are checked once."""
    import textnorm.reward as reward_module
    import textnorm.scorers.base as base

    seen: list[Any] = []
    real_confidence, real_check = reward_module.confidence, base._check_texts
    checks: list[str] = []

    def counting_confidence(values: torch.Tensor, **kw: Any) -> torch.Tensor:
        seen.append(kw["offsets"])
        return real_confidence(values, **kw)

    def counting_check(texts: Any, name: str) -> list[str]:
        checks.append(name)
        return real_check(texts, name)

    monkeypatch.setattr(reward_module, "confidence", counting_confidence)
    monkeypatch.setattr(base, "_check_texts", counting_check)
    scorers = [_tiny.tiny_open_clip(), _tiny.tiny_transformers_clip(), _tiny.tiny_blip2()]
    rewards, info = TextNormReward(scorers, SETS, scale=5.0, method="ur", lam=0.5)(images, PROMPTS)
    assert len(seen) == 3 and all(o is seen[0] for o in seen) and seen[0].device.type == "cpu"
    assert checks == []
    stacked = torch.stack([info["confidence"][s.id] for s in scorers]).double()
    expected = stacked.mean(0) - 0.5 * stacked.var(0, unbiased=False)
    torch.testing.assert_close(rewards, expected.float(), rtol=1e-6, atol=1e-7)


def test_ur_std_gradient_is_finite_where_scorers_agree() -> None:
    """Two copies of one scorer agree exactly: the std is 0 and its gradient must not be NaN."""
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    scorer = _tiny.tiny_open_clip()
    reward = TextNormReward([scorer, _tiny.tiny_open_clip(cache_size=0)], SETS, method="ur_std", lam=1.0)
    rewards, info = reward(images, PROMPTS[:2])
    torch.testing.assert_close(rewards, info["confidence"][scorer.id])
    rewards.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()


def test_docstring_examples_run(images: torch.Tensor) -> None:
    import doctest

    import textnorm.reward as reward_module

    globs = {"scorer": _tiny.tiny_open_clip(), "images": images[:2]}
    result = doctest.testmod(reward_module, extraglobs=globs)
    assert result.attempted >= 3 and result.failed == 0
