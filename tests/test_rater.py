"""The simulated rater behind the preference-trained proxies (`textnorm.proxies.rater`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from textnorm._core import ParameterError
from textnorm.proxies.rater import Rater, appearance, appearance_features, failure_kind, standing
from textnorm.world import parse, render_scene
from textnorm.world.scene import Scene, WorldObject
from textnorm.world.vocab import PALETTE


CORNERS = ((0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75))


def obj(shape: str, colour: str, x: float, y: float, radius: float = 0.09) -> WorldObject:
    size = "small" if radius < 0.1175 else "big"
    return WorldObject(shape, colour, size, x, y, radius, PALETTE[colour])


def scene(*objs: WorldObject) -> Scene:
    return Scene(tuple(objs))


def image(sc: Scene) -> np.ndarray:
    return render_scene(sc)[None]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_appearance_features_match_a_direct_count():
    sc = scene(obj("square", "red", 0.5, 0.5, 0.15))
    img = image(sc)
    area, sat, off = appearance_features(img)[0]
    fg = (np.abs(img[0].astype(int) - 240).max(-1) > 40)
    assert area == pytest.approx(fg.mean())
    from PIL import Image

    hsv = np.asarray(Image.fromarray(img[0]).convert("HSV"), dtype=np.float64)
    assert sat == pytest.approx(hsv[..., 1][fg].mean() / 255, abs=0.01)  # PIL's HSV saturation
    assert off == pytest.approx(0.0, abs=0.02)  # centred


def test_appearance_prefers_fuller_centred_colourful_scenes():
    one = image(scene(obj("circle", "red", 0.5, 0.5)))
    two = image(scene(obj("circle", "red", 0.35, 0.5), obj("circle", "red", 0.65, 0.5)))
    corner = image(scene(obj("circle", "red", 0.15, 0.15)))
    black = image(scene(obj("circle", "black", 0.5, 0.5)))
    a = appearance(np.concatenate([one, two, corner, black]))
    assert a[1] > a[0] > a[2]
    assert a[0] > a[3]


def test_appearance_is_standardised_on_base_generator_samples():
    from textnorm.generator import load_generator
    from textnorm.generator.model import latent_to_slots
    from textnorm.world import PROMPT_CATEGORIES, render_slots, sample_prompts

    prompts = [p for c in PROMPT_CATEGORIES for p in sample_prompts(c, 10, seed=3)]
    imgs = render_slots(latent_to_slots(load_generator().sample(prompts, seed=5, num_steps=20)))
    f = appearance_features(imgs)
    # the constants in rater.py were measured on other samples of the same generator
    assert f[:, 0].mean() == pytest.approx(0.058, abs=0.012)
    assert f[:, 0].std() == pytest.approx(0.029, rel=0.35)


def test_appearance_rejects_bad_images():
    with pytest.raises(ParameterError, match="images"):
        appearance(np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ParameterError, match="images"):
        appearance(np.zeros((1, 8, 8, 3), np.float32))


@pytest.mark.parametrize(
    ("prompt", "objs", "kinds"),
    [
        ("a red circle", [], ["missing", None]),
        ("a red circle", [obj("circle", "blue", 0.5, 0.5)], ["attribute", "extra"]),
        ("two red circles", [obj("circle", "red", 0.3, 0.5)], ["count", None]),
        ("a red circle", [obj("circle", "red", 0.3, 0.5), obj("star", "red", 0.7, 0.5)], [None, "extra"]),
        ("a red circle to the left of a blue star",
         [obj("circle", "red", 0.8, 0.5), obj("star", "blue", 0.2, 0.5)], [None, None, "relation", None]),
    ],
)
def test_failure_kinds(prompt, objs, kinds):
    p = parse(prompt)
    got = [k for _, k, _ in standing(p, scene(*objs))]
    assert got == kinds
    assert [s for s, _, _ in standing(p, scene(*objs))] == [
        1 if k is None else (-1 if k == "missing" else 0) for k in kinds]


def test_failure_kind_of_a_holding_constraint_is_none():
    p = parse("a red circle")
    sc = scene(obj("circle", "red", 0.5, 0.5))
    assert failure_kind(p.constraints[0], sc, True, 1) is None


def _frequency(rater: Rater, prompt: str, a: Scene, b: Scene, n: int = 4000) -> float:
    p = parse(prompt)
    imgs = np.concatenate([image(a), image(b)])
    pairs = np.tile([[0, 1]], (n, 1))
    return float(rater.choose(p, [a, b], imgs, pairs, np.random.default_rng(0)).mean())


def _tolerance(prob: float, n: int = 4000) -> float:
    return 4 * math.sqrt(prob * (1 - prob) / n) + 1e-3


def test_choice_probability_matches_the_model_for_a_missing_object():
    rater = Rater(w=0.0)
    good = scene(obj("circle", "red", 0.5, 0.5))
    empty = scene()
    # one constraint differs by 2 standings (holds vs missing), noticed with p = missing
    want = rater.missing * sigmoid(rater.beta * 2) + (1 - rater.missing) * 0.5
    got = _frequency(rater, "a red circle", good, empty)
    assert got == pytest.approx(want, abs=_tolerance(want))


def test_large_counts_are_a_blind_spot():
    rater = Rater(w=0.0)
    four = scene(*[obj("star", "red", x, y) for x, y in CORNERS])
    five = scene(*[obj("star", "red", x, y) for x, y in (*CORNERS, (0.5, 0.5))])
    want = rater.count_large * sigmoid(rater.beta) + (1 - rater.count_large) * 0.5
    got = _frequency(rater, "four red stars", four, five)
    assert got == pytest.approx(want, abs=_tolerance(want))
    assert got < 0.6  # barely better than a coin


def test_a_taste_for_looks_turns_a_blind_spot_into_a_preference():
    four = scene(*[obj("star", "red", x, y) for x, y in CORNERS])
    five = scene(*[obj("star", "red", x, y) for x, y in (*CORNERS, (0.5, 0.5))])
    looks = appearance(np.concatenate([image(four), image(five)]))
    assert looks[1] > looks[0]
    rater = Rater(w=1.0)
    d = rater.w * (looks[0] - looks[1])
    want = rater.count_large * sigmoid(rater.beta + d) + (1 - rater.count_large) * sigmoid(d)
    got = _frequency(rater, "four red stars", four, five)
    assert got == pytest.approx(want, abs=_tolerance(want))
    assert got < 0.45  # the wrong, fuller scene wins


def test_rater_validates_its_fields():
    with pytest.raises(ParameterError, match="binding"):
        Rater(binding=1.5)
    with pytest.raises(ParameterError, match="w"):
        Rater(w=-1.0)
