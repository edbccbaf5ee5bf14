"""The world's geometry, scenes, near-misses and renderer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from textnorm import LayoutError, NonFiniteError, ParameterError
from textnorm.world import (
    AREA_FACTOR,
    BACKGROUND,
    NEAR_MISS_KINDS,
    PALETTE,
    PROMPT_CATEGORIES,
    SHAPES,
    SIZE_RANGES,
    SLOT_DIM,
    Scene,
    WorldObject,
    near_miss_kinds,
    parse,
    render,
    render_near_misses,
    render_scene,
    render_slots,
    sample_near_miss,
    sample_prompts,
    sample_scene,
    scenes_to_slots,
    signed_distance,
    slots_to_scenes,
)
from textnorm.world.scene import BORDER, GAP, RELATION_RENDER

# Areas of the unit shapes derived by hand (radius 1).
HAND_AREAS = {
    "circle": math.pi,
    "ring": math.pi * (1 - 0.25),
    "square": 2.0,  # diagonal 2: side sqrt(2)
    "diamond": 2 * 0.75,  # rhombus: product of the diagonals / 2
    "triangle": 3 * math.sqrt(3) / 4,
    "star": 5 * 1.0 * 0.45 * math.sin(math.radians(36)),  # ten triangles of sides 1 and 0.45
    "cross": 2 * (2 * math.sqrt(0.91) * 0.6) - 0.6**2,
}


def test_area_factors_match_hand_derivations() -> None:
    assert set(AREA_FACTOR) == set(SHAPES)
    for shape, area in HAND_AREAS.items():
        assert AREA_FACTOR[shape] == pytest.approx(area, rel=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_rendered_area_matches_geometry(shape: str) -> None:
    """Coverage summed over a large rendering equals area * r^2 (anti-aliasing conserves area)."""
    r = 0.4
    obj = WorldObject(shape, "black", "big", 0.5, 0.5, r, (0, 0, 0))
    img = render_scene(Scene((obj,)), size=400).astype(np.float64)
    coverage = (np.array(BACKGROUND) - img).mean(axis=-1) / np.mean(BACKGROUND)
    assert coverage.sum() == pytest.approx(AREA_FACTOR[shape] * (r * 400) ** 2, rel=0.01)
    # Nothing outside the circumcircle: every shape lies within its radius.
    yy, xx = np.mgrid[0:400, 0:400]
    outside = np.hypot(xx + 0.5 - 200, yy + 0.5 - 200) > r * 400 + 1
    assert (img[outside] == BACKGROUND).all()


@given(st.floats(-3, 3), st.floats(-3, 3))
def test_signed_distance_of_circle_and_square_is_exact(u: float, v: float) -> None:
    assert float(signed_distance("circle", np.array(u), np.array(v))) == pytest.approx(math.hypot(u, v) - 1, abs=2e-6)
    h = 1 / math.sqrt(2)
    qx, qy = abs(u) - h, abs(v) - h  # exact box distance
    exact = math.hypot(max(qx, 0), max(qy, 0)) + min(max(qx, qy), 0)
    assert float(signed_distance("square", np.array(u), np.array(v))) == pytest.approx(exact, abs=2e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_signed_distance_is_one_lipschitz_and_signs_the_inside(shape: str) -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(-1.5, 1.5, size=(2000, 2))
    q = p + rng.normal(0, 0.05, size=p.shape)
    d_p = signed_distance(shape, p[:, 0], p[:, 1])
    d_q = signed_distance(shape, q[:, 0], q[:, 1])
    assert (np.abs(d_p - d_q) <= np.linalg.norm(p - q, axis=1) + 1e-6).all()
    assert signed_distance(shape, np.array(0.0), np.array(0.0)) < 0 or shape == "ring"
    assert signed_distance(shape, np.array(0.0), np.array(-1.2)) > 0
    assert signed_distance(shape, np.array(2.0), np.array(2.0)) > 0
    # Area by Monte Carlo on the sign agrees with the polygon/disc area.
    pts = rng.uniform(-1, 1, size=(200_000, 2))
    inside = (signed_distance(shape, pts[:, 0], pts[:, 1]) < 0).mean() * 4
    assert inside == pytest.approx(AREA_FACTOR[shape], rel=0.02)


def test_signed_distance_runs_on_torch_with_gradients() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    u, v = rng.uniform(-1.5, 1.5, size=(2, 500))
    for shape in SHAPES:
        tu = torch.tensor(u, requires_grad=True)
        tv = torch.tensor(v, requires_grad=True)
        d = signed_distance(shape, tu, tv, xp=torch)
        np.testing.assert_allclose(d.detach().numpy(), signed_distance(shape, u, v), atol=1e-12)
        d.sum().backward()
        assert torch.isfinite(tu.grad).all() and torch.isfinite(tv.grad).all()
        # A Euclidean distance has unit gradient away from its zero set (and the ring's medial circle).
        grad_norm = torch.sqrt(tu.grad**2 + tv.grad**2).numpy()
        away = np.abs(signed_distance(shape, u, v)) > 1e-3
        if shape == "ring":
            away &= np.abs(np.hypot(u, v) - 0.75) > 1e-3
        np.testing.assert_allclose(grad_norm[away], 1.0, atol=1e-4)


def test_render_is_deterministic_per_prompt_and_seed() -> None:
    prompts = ["three red circles", "a blue square and a yellow star", "a green triangle to the left of a purple circle"]
    a = render(prompts, seed=3)
    b = render(prompts, seed=3)
    assert a.dtype == np.uint8 and a.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[2], render([prompts[2]], seed=5)[0])  # image i uses seed + i
    np.testing.assert_array_equal(a, render(prompts, seed=[3, 4, 5]))
    assert not np.array_equal(a, render(prompts, seed=4))
    twice = render([prompts[0]] * 2, seed=0)
    assert not np.array_equal(twice[0], twice[1])
    assert render(prompts[:1], seed=0, size=32).shape == (1, 32, 32, 3)
    assert render([], seed=0).shape == (0, 64, 64, 3)


@pytest.mark.parametrize("category", PROMPT_CATEGORIES)
def test_scenes_satisfy_their_prompt_and_the_layout_rules(category: str) -> None:
    prompts = sample_prompts(category, 60, seed=2, split="all")
    _, scenes = render(prompts, seed=0, return_scenes=True)
    for text, sc in zip(prompts, scenes):
        p = parse(text)
        assert sc.holds(p)
        assert len(sc.objects) == sum(o.count for o in p.objects)
        for i, a in enumerate(sc.objects):
            lo, hi = SIZE_RANGES[a.size]
            assert lo <= a.radius <= hi
            assert BORDER + a.radius <= a.x <= 1 - BORDER - a.radius
            assert BORDER + a.radius <= a.y <= 1 - BORDER - a.radius
            assert max(abs(c - r) for c, r in zip(a.rgb, PALETTE[a.colour])) <= 10
            for b in sc.objects[i + 1 :]:
                assert math.hypot(a.x - b.x, a.y - b.y) >= a.radius + b.radius + GAP - 1e-12
        if p.relation is not None:
            subj = [o for o in sc.objects if p.objects[0].matches(o.shape, o.colour, o.size)]
            obj = [o for o in sc.objects if p.objects[1].matches(o.shape, o.colour, o.size)]
            axis = "x" if "left" in p.relation or "right" in p.relation else "y"
            for s in subj:
                for o in obj:
                    if s is not o:
                        assert abs(getattr(s, axis) - getattr(o, axis)) >= RELATION_RENDER - 1e-12


@pytest.mark.parametrize("kind", NEAR_MISS_KINDS)
def test_every_near_miss_kind_breaks_its_prompt(kind: str) -> None:
    prompts = [p for c in PROMPT_CATEGORIES for p in sample_prompts(c, 40, seed=8, split="all")]
    made = 0
    for i, text in enumerate(prompts):
        p = parse(text)
        if kind not in near_miss_kinds(p):
            with pytest.raises(ParameterError, match="kind"):
                sample_near_miss(p, np.random.default_rng(i), kind=kind)
            continue
        scene, got = sample_near_miss(p, np.random.default_rng(i), kind=kind)
        assert got == kind and not scene.holds(p)
        made += 1
    assert made >= 20


def test_render_near_misses() -> None:
    prompts = sample_prompts("binding", 20, seed=1)
    imgs, scenes, kinds = render_near_misses(prompts, seed=0)
    assert imgs.shape == (20, 64, 64, 3) and len(kinds) == 20
    assert all(not sc.holds(parse(p)) for p, sc in zip(prompts, scenes))
    again, _, kinds2 = render_near_misses(prompts, seed=0)
    np.testing.assert_array_equal(imgs, again)
    assert kinds == kinds2
    rel, _, k = render_near_misses(["a red star above a blue ring"], kind="relation", seed=0)
    assert k == ["relation"]
    with pytest.raises(ParameterError, match="kind"):
        render_near_misses(prompts, kind=["count"], seed=0)


def test_slots_round_trip_and_decode_to_the_same_pixels() -> None:
    rng = np.random.default_rng(0)
    prompts = [p for c in PROMPT_CATEGORIES for p in sample_prompts(c, 6, seed=0)]
    scenes = [sample_scene(p, rng, jitter=False) for p in prompts]
    slots = scenes_to_slots(scenes, n_slots=8)
    assert slots.shape == (len(scenes), 8, SLOT_DIM) and slots.dtype == np.float32
    decoded = slots_to_scenes(slots)
    for a, b in zip(scenes, decoded):
        assert [(o.shape, o.colour, o.size) for o in a.objects] == [(o.shape, o.colour, o.size) for o in b.objects]
        np.testing.assert_allclose([o.radius for o in a.objects], [o.radius for o in b.objects], atol=1e-6)
    imgs = render_slots(slots)
    for img, sc in zip(imgs, scenes):
        assert np.abs(img.astype(int) - render_scene(sc).astype(int)).max() <= 1  # float32 slots
    noisy = slots + rng.normal(0, 0.1, slots.shape).astype(np.float32) * (slots[..., :1] > 0.5)
    assert render_slots(noisy).shape == imgs.shape  # soft scores decode by argmax


def test_slot_errors() -> None:
    with pytest.raises(LayoutError, match="slots"):
        slots_to_scenes(np.zeros((2, 3)))
    with pytest.raises(LayoutError, match="slots"):
        slots_to_scenes(np.zeros((2, 3, SLOT_DIM + 1)))
    bad = np.zeros((1, 2, SLOT_DIM))
    bad[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="slots"):
        render_slots(bad)
    many = sample_scene("four red circles", np.random.default_rng(0))
    with pytest.raises(ParameterError, match="n_slots"):
        scenes_to_slots([many], n_slots=3)
    # Objects off the image or with no radius still render (a generator may emit them).
    odd = np.zeros((1, 2, SLOT_DIM), dtype=np.float32)
    odd[0, :, 0] = 1
    odd[0, 0, -3:] = (0.3, 1.2, -0.5)
    odd[0, 1, -3:] = (0.0, 0.5, 0.5)
    assert (render_slots(odd) == BACKGROUND).all()


@pytest.mark.parametrize(
    ("prompt", "match"),
    [("a red hexagon", "not drawable"), ("a pink circle", "not drawable"),
     ("nine red circles", "at most 8 objects"), ("a dog", "unknown shape")],
)
def test_render_errors(prompt: str, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        render([prompt])


def test_render_argument_errors() -> None:
    with pytest.raises(ParameterError, match="seed"):
        render(["a red circle"], seed=-1)
    with pytest.raises(ParameterError, match="seed"):
        render(["a red circle"], seed=[1, 2])
    with pytest.raises(ParameterError, match="size"):
        render(["a red circle"], size=8)
    with pytest.raises(ParameterError, match="size"):
        render(["a red circle"], size=64.0)  # type: ignore[call-overload]
    with pytest.raises(NonFiniteError, match="scene"):
        render_scene(Scene((WorldObject("circle", "red", "big", math.nan, 0.5, 0.1, (0, 0, 0)),)))


def test_near_miss_kinds_that_cannot_apply_are_not_offered() -> None:
    every_shape = parse("a circle, a square, a triangle, a star, a cross, a diamond and a ring")
    assert "extra" not in near_miss_kinds(every_shape)
    with pytest.raises(ParameterError, match="kind"):
        sample_near_miss(every_shape, np.random.default_rng(0), kind="extra")
    scene, kind = sample_near_miss(every_shape, np.random.default_rng(0), kind="drop")
    assert kind == "drop" and len(scene.objects) == 6
    with pytest.raises(ParameterError, match="would not fit"):
        sample_near_miss(parse("ten red circles"), np.random.default_rng(0), kind="count")
