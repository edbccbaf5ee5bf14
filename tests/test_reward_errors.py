"""TextNormReward and RawReward refuse bad input the same way, naming the argument (issue 14,
items 4, 13 and 14): parametrized families of bad options, prompts, images and contrast answers,
and hypothesis fuzzing of option values and image arrays."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from reward_data import PROMPTS, SETS, FakeSets  # noqa: E402

import textnorm  # noqa: E402
from textnorm import LayoutError, NonFiniteError, ParameterError, RawReward, TextNormReward  # noqa: E402
from textnorm.scorers import _tiny  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(4, 3, 40, 40, generator=torch.Generator().manual_seed(0))


CONSTRUCTOR_ERRORS = [
    (lambda s: TextNormReward([], SETS), r"scorers: expected at least one scorer, got none"),
    (lambda s: TextNormReward(None, SETS), r"scorers: expected a textnorm Scorer or a list of them, got NoneType"),
    (lambda s: TextNormReward("clip", SETS), r"scorers: expected a textnorm Scorer or a list of them, got str"),
    (lambda s: TextNormReward([s, "clip"], SETS), r"scorers\[1\]: expected a textnorm Scorer, got str"),
    (lambda s: TextNormReward(s, SETS, scale=0.0), r"scale: expected a finite number > 0, got 0.0"),
    (lambda s: TextNormReward(s, SETS, scale=float("nan")), r"scale: expected a finite number > 0, got nan"),
    (lambda s: TextNormReward(s, SETS, scale=10**400), r"scale: expected a finite number > 0, got an int too large"),
    (lambda s: TextNormReward(s, SETS, scale=True), r"scale: expected a finite number > 0, got True"),
    (lambda s: TextNormReward(s, SETS, scale="3"), r"scale: expected a finite number > 0, got '3'"),
    (lambda s: TextNormReward(s, SETS, mode="softmax"), r"mode: expected one of \('minmax', 'temperature'\), got 'softmax'"),
    (lambda s: TextNormReward(s, SETS, mode=None), r"mode: expected one of \('minmax', 'temperature'\), got None"),
    (lambda s: TextNormReward(s, SETS, method="max"), r"method: expected one of \('mean', 'ur', 'ur_std'\), got 'max'"),
    (lambda s: TextNormReward(s, SETS, on_empty="skip"), r"on_empty: expected one of \('raise', 'raw'\), got 'skip'"),
    (lambda s: TextNormReward(s, SETS, lam=-1.0), r"lam: expected a finite number >= 0, got -1.0"),
    (lambda s: TextNormReward(s, SETS, lam=np.inf), r"lam: expected a finite number >= 0, got inf"),
    (lambda s: TextNormReward(s, 42), r"contrast: expected a ContrastiveSets, a dict .* got int"),
    (lambda s: TextNormReward(s, {"a": "b"}), r"contrast\['a'\]: expected a list of strings, got str"),
    (lambda s: TextNormReward(s, {"a": [1]}), r"contrast\['a'\]: expected strings, got int"),
    (lambda s: TextNormReward(s, {3: ["a"]}), r"contrast: expected str keys \(target prompts\), got int"),
    (lambda s: TextNormReward(s, FakeSets({})._with([[]])), r"contrast: expected \[target, \*contrastive\] lists, got \[\] at 0"),
    (lambda s: RawReward("clip"), r"scorer: expected a textnorm Scorer, got str"),
]


@pytest.mark.parametrize(("build", "message"), CONSTRUCTOR_ERRORS)
def test_constructor_refuses_bad_options_naming_them(build: Any, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        build(_tiny.tiny_open_clip())


def test_numpy_scalars_are_accepted_as_scale_and_lam(images: torch.Tensor) -> None:
    scorers = [_tiny.tiny_open_clip(), _tiny.tiny_blip2()]
    plain = TextNormReward(scorers, SETS, scale=3.0, method="ur", lam=0.5)
    numpy = TextNormReward(scorers, SETS, scale=np.float32(3), method="ur", lam=np.float64(0.5))
    assert (numpy.scale, numpy.lam) == (3.0, 0.5) and type(numpy.scale) is float
    torch.testing.assert_close(numpy(images, PROMPTS)[0], plain(images, PROMPTS)[0], rtol=0, atol=0)
    assert TextNormReward(scorers, SETS, scale=np.int64(2)).scale == 2.0


CALL_ERRORS = [
    (lambda r, im: r(im, PROMPTS[:2]), LayoutError, r"prompts: expected one prompt per image \(4\), got 2"),
    (lambda r, im: r(im, "a cat"), ParameterError, r"prompts: expected a list of strings, got str"),
    (lambda r, im: r(im[:1], [3]), ParameterError, r"prompts\[0\]: expected a string, got int"),
    (lambda r, im: r(im[:1], ["a dog"]), ParameterError,
     r"prompts: no contrastive set for 'a dog' in contrast \(it holds 3 prompts\)"),
    (lambda r, im: r(3, ["a dog"]), ParameterError, r"images: expected a batch array, tensor or list of PIL images, got int"),
    (lambda r, im: r(im[0].permute(1, 2, 0), ["a blue horse"]), LayoutError,
     r"images: expected a batch of shape \(B,H,W,3\) or \(B,3,H,W\), got shape \(40, 40, 3\) \(one image\? add a batch axis"),
    (lambda r, im: r(np.zeros((40, 40, 3), np.uint8), ["a blue horse"]), LayoutError, r"images: .* got shape \(40, 40, 3\) \(one image\?"),
    (lambda r, im: r(torch.where(torch.arange(4)[:, None, None, None] == 2, torch.nan, im), PROMPTS),
     NonFiniteError, r"images: expected finite pixel values, got NaN or Inf in image 2"),
    (lambda r, im: r(np.empty((1, 0, 40, 3), np.uint8), ["a blue horse"]), LayoutError,
     r"images: expected images of at least 1x1 pixels, got shape \(1, 0, 40, 3\)"),
    (lambda r, im: r(np.empty((1, 40, 40, 3), object), ["a blue horse"]), ParameterError,
     r"images: expected uint8 or floating-point images, got dtype object"),
]


@pytest.mark.parametrize("kind", ["textnorm", "raw"])
@pytest.mark.parametrize(("call", "error", "message"), CALL_ERRORS)
def test_both_rewards_refuse_bad_prompts_and_images_naming_them(
    kind: str, call: Any, error: type, message: str, images: torch.Tensor
) -> None:
    """One rule for TextNormReward and RawReward (a NaN pixel included), and the message names
    the argument the caller got wrong, never an internal one such as "logits"."""
    scorer = _tiny.tiny_open_clip()
    reward = TextNormReward(scorer, SETS) if kind == "textnorm" else RawReward(scorer)
    if kind == "raw" and "no contrastive set" in message:
        pytest.skip("RawReward needs no contrastive sets")
    with pytest.raises(error, match=message):
        call(reward, images)


def test_big_endian_float_images_score_like_native_ones(images: torch.Tensor) -> None:
    reward = TextNormReward(_tiny.tiny_open_clip(), SETS)
    native = images.permute(0, 2, 3, 1).numpy().astype(np.float32)
    expected, _ = reward(native, PROMPTS)
    got, _ = reward(native.astype(">f4"), PROMPTS)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_a_contrast_callable_must_answer_for_the_prompt_it_was_asked(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_open_clip()
    bad = TextNormReward(scorer, lambda prompt: 7)
    with pytest.raises(ParameterError, match=r"contrast: the callable returned int for 'a dog'"):
        bad(images[:1], ["a dog"])
    other = TextNormReward(scorer, lambda prompt: FakeSets({"a blue horse": SETS["a blue horse"]}))
    with pytest.raises(
        ParameterError,
        match=r"contrast: the callable returned a ContrastiveSets for \['a blue horse'\] when asked for "
        r"'a cat and a bird'; expected one that holds 'a cat and a bird' as a target",
    ):
        other(images[1:2], ["a cat and a bird"])
    real = TextNormReward(scorer, lambda prompt: textnorm.contrast(["two cats", "a dog"]))
    with pytest.raises(ParameterError, match=r"for \['two cats', 'a dog'\] when asked for 'a cat'"):
        real(images[:1], ["a cat"])
    # a set that holds the prompt among others is fine: its own row is used
    several = TextNormReward(scorer, lambda prompt: FakeSets(SETS))
    torch.testing.assert_close(several(images, PROMPTS)[0], TextNormReward(scorer, SETS)(images, PROMPTS)[0])


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4), st.lists(st.integers(0, 3), max_size=2), st.complex_numbers(max_magnitude=5),
    st.sampled_from([np.float32(2), np.int64(-1), np.float64("nan"), np.bool_(True), "minmax", "ur", "raw"]),
)


@functools.cache
def shared_scorer() -> Any:
    """One tiny scorer for the fuzz tests (building its wrapper per example costs ~0.2 s)."""
    return _tiny.tiny_open_clip()


@settings(max_examples=150)
@given(option=st.sampled_from(["scale", "lam", "mode", "method", "on_empty"]), value=JUNK)
def test_any_option_value_is_accepted_or_refused_naming_the_option(option: str, value: Any) -> None:
    """Fuzz: every value of every option either builds a reward or raises ParameterError whose
    message starts with the option's name (never TypeError, OverflowError or ValueError)."""
    try:
        reward = TextNormReward(shared_scorer(), SETS, **{option: value})
    except ParameterError as exc:
        assert str(exc).startswith(f"{option}: expected"), str(exc)
    else:
        assert getattr(reward, option) == (float(value) if option in ("scale", "lam") else value)


@settings(max_examples=40)
@given(
    dtype=st.sampled_from(["uint8", "float32", "float64", "float16", ">f4", "int64", "bool", "complex64", "object"]),
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=5),
    fill=st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0, np.nan, np.inf]),
)
def test_any_image_array_gives_rewards_or_a_textnorm_error_naming_images_or_prompts(
    dtype: str, shape: list[int], fill: float
) -> None:
    """Fuzz: arrays of any dtype, shape and value give rewards in (0, 1) or a TextnormError whose
    message names images or prompts, for both rewards alike."""
    with np.errstate(invalid="ignore"):
        array = np.full(shape, fill).astype(dtype)
    n = shape[0] if shape else 1
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
    outcomes = []
    for reward in (TextNormReward(shared_scorer(), SETS), RawReward(shared_scorer())):
        try:
            rewards, _ = reward(array, prompts)
        except textnorm.TextnormError as exc:
            assert str(exc).startswith(("images", "prompts")), str(exc)
            outcomes.append(type(exc))
        else:
            assert rewards.shape == (n,) and torch.isfinite(rewards).all()
            outcomes.append(None)
    assert outcomes[0] == outcomes[1]  # one rule for both rewards
