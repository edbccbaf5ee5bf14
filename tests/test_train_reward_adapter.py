"""The Flow-GRPO reward adapter: the factory-of-device convention, the multi-reward dict with its
``avg`` entry, per-scorer raw and calibrated scores, image layouts, and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from textnorm import LayoutError, ParameterError
from textnorm.train.flow_grpo_reward import flow_grpo_reward

torch.set_num_threads(1)


def _two_scorer_reward(images: torch.Tensor, prompts: list[str], metadata: list[dict[str, Any]]) -> Any:
    """Like TextNormReward over two scorers: raw score = brightness (s1) and redness (s2)."""
    assert images.ndim == 4 and images.shape[1] == 3 and images.dtype == torch.float32
    bright = images.mean(dim=(1, 2, 3))
    red = images[:, 0].mean(dim=(1, 2))
    conf = {"s1": torch.sigmoid(bright), "s2": torch.sigmoid(red)}
    rewards = (conf["s1"] + conf["s2"]) / 2
    info = {"raw": {"s1": bright, "s2": red}, "confidence": conf,
            "set_size": torch.tensor([len(m.get("contrastive", [])) for m in metadata]),
            "fallback": torch.zeros(len(prompts), dtype=torch.bool), "cache_hit_rate": 0.5}
    return rewards, info


def test_scores_follow_flow_grpos_convention() -> None:
    logged: list[dict[str, float]] = []
    devices: list[Any] = []

    def build(device: Any) -> Any:
        devices.append(device)
        return _two_scorer_reward

    fn = flow_grpo_reward(build=build, weight=2.0, log=logged.append)("cpu")
    assert devices == ["cpu"]
    images = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    meta = [{"contrastive": ["a", "b"]}, {"contrastive": ["c"]}, {}]
    scores, extra = fn(images, ("p0", "p1", "p2"), meta, only_strict=True)
    assert extra == {}
    expect, _ = _two_scorer_reward(images, ["p0", "p1", "p2"], meta)
    assert sorted(scores) == sorted(["textnorm", "avg", "textnorm/raw/s1", "textnorm/raw/s2",
                                     "textnorm/calibrated/s1", "textnorm/calibrated/s2",
                                     "textnorm/set_size", "textnorm/fallback"])
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 and v.shape == (3,) for v in scores.values())
    np.testing.assert_allclose(scores["textnorm"], expect.numpy(), rtol=1e-6)
    np.testing.assert_allclose(scores["avg"], 2.0 * expect.numpy(), rtol=1e-6)
    np.testing.assert_allclose(scores["textnorm/raw/s1"], images.mean(dim=(1, 2, 3)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(scores["textnorm/calibrated/s2"], torch.sigmoid(images[:, 0].mean(dim=(1, 2))).numpy(), rtol=1e-6)
    assert scores["textnorm/set_size"].tolist() == [2.0, 1.0, 0.0]
    assert logged and logged[0]["avg"] == pytest.approx(float(scores["avg"].mean()))


def test_image_layouts_give_the_same_scores() -> None:
    fn = flow_grpo_reward(_two_scorer_reward, name="tn")("cpu")
    u8 = torch.randint(0, 256, (2, 3, 4, 4), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    ref, _ = fn(u8.float() / 255, ["a", "b"])
    from PIL import Image

    nhwc = u8.permute(0, 2, 3, 1).numpy()
    for images in (u8, nhwc, nhwc.astype(np.float32) / 255, [Image.fromarray(x) for x in nhwc]):
        got, _ = fn(images, ["a", "b"], None)
        np.testing.assert_allclose(got["tn"], ref["tn"], rtol=1e-6)


def test_adapter_errors_name_the_argument() -> None:
    with pytest.raises(ParameterError, match="reward"):
        flow_grpo_reward()
    with pytest.raises(ParameterError, match="reward"):
        flow_grpo_reward(_two_scorer_reward, build=lambda d: _two_scorer_reward)
    with pytest.raises(ParameterError, match="name"):
        flow_grpo_reward(_two_scorer_reward, name="avg")
    with pytest.raises(ParameterError, match="weight"):
        flow_grpo_reward(_two_scorer_reward, weight=float("nan"))
    fn = flow_grpo_reward(lambda i, p, m: (torch.zeros(()), {}))("cpu")
    with pytest.raises(LayoutError, match=r"shape \(2,\)"):
        fn(torch.rand(2, 3, 4, 4), ["a", "b"])
    fn = flow_grpo_reward(_two_scorer_reward)("cpu")
    with pytest.raises(LayoutError, match="metadata"):
        fn(torch.rand(2, 3, 4, 4), ["a", "b"], [{}])
    with pytest.raises(LayoutError, match="images"):
        fn(np.zeros((2, 4, 4)), ["a", "b"])


def test_wraps_textnorm_reward_over_a_tiny_scorer() -> None:
    from textnorm.reward import TextNormReward
    from textnorm.scorers._tiny import tiny_open_clip

    sets = {"two dogs": ["one dog", "three dogs"], "a red ball": ["a blue ball"]}
    fn = flow_grpo_reward(build=lambda device: TextNormReward(tiny_open_clip(), sets, scale=3.0))("cpu")
    scores, _ = fn(torch.rand(2, 3, 64, 64), ["two dogs", "a red ball"], [{}, {}])
    raw = [k for k in scores if k.startswith("textnorm/raw/")]
    calibrated = [k for k in scores if k.startswith("textnorm/calibrated/")]
    assert len(raw) == len(calibrated) == 1
    assert np.all((scores["textnorm"] > 0) & (scores["textnorm"] < 1))
    np.testing.assert_allclose(scores["avg"], scores["textnorm"])
    np.testing.assert_allclose(scores[calibrated[0]], scores["textnorm"], rtol=1e-6)  # one scorer
