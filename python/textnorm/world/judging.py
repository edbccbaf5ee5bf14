"""The judge: reads pixels, finds the objects, and checks every constraint of each prompt.

`judge(images, prompts)` never sees a scene. It estimates the background from the image border
(and removes a global colour offset measured there), unmixes each pixel against the background
into a palette colour and a coverage, keeps pixels at least half covered, finds 8-connected
components per colour, drops specks smaller than `MIN_AREA` (at 64 px; scaled by image area),
classifies each component's shape by nearest references in a scale-free feature space
(`textnorm.world._classify`), reads its size from its area (the radius whose shape would have
that area, ``sqrt(area / AREA_FACTOR[shape])``, against `SIZE_THRESHOLD`) and its position from
its centroid, then checks the prompt's constraints (`textnorm.world.grammar`).

It abstains (`unknown=True`, `aligned=None`) on images it cannot read, instead of guessing:
non-finite pixels, a border that is not one plain colour near the world's background, more than
`MAX_FOREIGN` of the pixels explained by no palette colour (noise, tints, other colours), edges
blurred beyond `MAX_HALO` (partly covered pixels per object edge pixel: about 0.3 on renders,
1.5 at a Gaussian blur of sigma 1.5 px), more specks than `MAX_SPECKS` (specks touching an
object are stray edge pixels and ignored), more than `MAX_OBJECTS` objects, or a component unlike
every reference shape (distance over `MAX_DISTANCE`: merged or torn objects, ragged noisy edges).
Non-finite pixels are always unknown; with ``abstain=False`` it otherwise always gives its best
reading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textnorm._core import LayoutError, ParameterError
from textnorm.world import vocab
from textnorm.world.geometry import AREA_FACTOR
from textnorm.world.grammar import Constraint, Prompt, check, parse
from textnorm.world.scene import Scene, size_of

MIN_AREA = 12.0
MAX_SPECKS = 4
MAX_FOREIGN = 0.02
MAX_OBJECTS = 12
MAX_DISTANCE = 1.05
MAX_HALO = 1.5
BACKGROUND_TOLERANCE = 80.0
MIN_SIDE = 16
FLOAT_SLACK = 0.1  # float pixels may overshoot [0, 1] by this much (clipped)
_NEIGHBOURS = np.zeros((3, 3, 3), dtype=bool)
_NEIGHBOURS[1] = True  # 8-neighbours within an image, never across images
MAX_SIDE = 1024


@dataclass(frozen=True, eq=False)
class Detected:
    """An object the judge found: what it read, where, and how familiar its shape looked."""

    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float
    area: float
    distance: float


@dataclass(frozen=True)
class Verdict:
    """One constraint's outcome: `holds` is None when the image is unknown."""

    constraint: Constraint
    holds: bool | None
    observed: int | None = None


@dataclass(frozen=True)
class JudgeResult:
    """The judge's reading of one image against one prompt.

    Attributes:
        prompt: the prompt's canonical text.
        verdicts: one per constraint of the prompt.
        fraction: share of constraints that hold (NaN when unknown).
        aligned: all constraints hold; None when unknown.
        unknown: the image could not be read (see `reason`).
        reason: why it is unknown ("" otherwise).
        objects: what was found (also filled in when unknown, as a best reading).
    """

    prompt: str
    verdicts: tuple[Verdict, ...]
    fraction: float
    aligned: bool | None
    unknown: bool
    reason: str
    objects: tuple[Detected, ...]


def _as_images(images: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to float32 (N, H, W, 3) in 0..255, and say which images are finite
    (non-finite pixels are zeroed)."""
    try:
        a = np.asarray(images)
    except Exception as exc:  # objects that refuse conversion (ragged lists, GPU tensors)
        raise ParameterError(f"images: expected an array of pixels, got {type(images).__name__}: {exc}") from exc
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ParameterError(f"images: expected uint8 or float pixels, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise LayoutError(f"images: expected (N, H, W, 3) or (H, W, 3), got shape {a.shape}")
    if a.shape[-1] != 3 and a.shape[1] == 3:
        a = np.moveaxis(a, 1, -1)  # channels-first (N, 3, H, W), as torch keeps images
    if a.shape[-1] != 3:
        raise LayoutError(f"images: expected 3 colour channels (RGB), got shape {a.shape}")
    h, w = a.shape[1:3]
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise LayoutError(f"images: expected sides between {MIN_SIDE} and {MAX_SIDE} pixels, got {h}x{w}")
    if not np.issubdtype(a.dtype, np.floating):
        return np.clip(a, 0, 255).astype(np.float32), np.ones(len(a), dtype=bool)
    ok = np.isfinite(a)
    finite = ok.all(axis=(1, 2, 3))
    a = np.where(ok, a, 0.0)
    if a.size and (a.min() < -FLOAT_SLACK or a.max() > 1 + FLOAT_SLACK):
        raise ParameterError(
            f"images: float pixels must lie in [0, 1], got values in [{a.min():.3g}, {a.max():.3g}] "
            "(divide 0..255 pixels by 255; map [-1, 1] outputs with (x + 1) / 2)"
        )
    return (a.astype(np.float32) * 255.0).clip(0, 255), finite


def _as_prompts(prompts: Any, n: int) -> list[Prompt]:
    if isinstance(prompts, (str, Prompt)):
        prompts = [prompts] * n
    try:
        ps = list(prompts)
    except TypeError as exc:
        raise ParameterError(f"prompts: expected a str or a sequence of str, got {type(prompts).__name__}") from exc
    if len(ps) != n:
        raise ParameterError(f"prompts: expected one prompt per image ({n}), got {len(ps)}")
    out = []
    for i, p in enumerate(ps):
        if isinstance(p, Prompt):
            out.append(p)
            continue
        try:
            out.append(parse(p))
        except ParameterError as exc:
            raise ParameterError(f"prompts[{i}]: {exc}") from exc
    return out


def _result(prompt: Prompt, objects: Sequence[Any], reason: str, found: tuple[Detected, ...]) -> JudgeResult:
    if reason:
        verdicts = tuple(Verdict(c, None) for c in prompt.constraints)
        return JudgeResult(prompt.text, verdicts, math.nan, None, True, reason, found)
    checked = check(objects, prompt)
    verdicts = tuple(Verdict(c, h, o) for c, (h, o) in zip(prompt.constraints, checked))
    holds = [h for h, _ in checked]
    return JudgeResult(prompt.text, verdicts, sum(holds) / len(holds), all(holds), False, "", found)


def judge(images: Any, prompts: Any, *, abstain: bool = True, batch_size: int = 128) -> list[JudgeResult]:
    """Judge images against prompts from their pixels alone.

    Args:
        images: (N, H, W, 3) or (H, W, 3) pixels, uint8 (or any integer type, clipped to 0..255)
            or float in [0, 1]; channels-first (N, 3, H, W) is accepted too. Sides 16..1024.
        prompts: one world prompt (str or parsed) per image, or one for all.
        abstain: answer `unknown` for unreadable images (else always give the best reading).
        batch_size: images processed together (memory bound).

    Returns:
        One `JudgeResult` per image.

    Raises:
        ParameterError: `images` is not numeric pixels, `prompts` does not match or does not parse.
        LayoutError: `images` has the wrong shape.

    >>> from textnorm.world import render
    >>> judge(render(["a big red star"], seed=3), ["a big red star"])[0].aligned
    True
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size: expected a positive int, got {batch_size!r}")
    imgs, finite = _as_images(images)
    ps = _as_prompts(prompts, len(imgs))
    out: list[JudgeResult] = []
    for start in range(0, len(imgs), batch_size):
        end = start + batch_size
        out.extend(_judge_batch(imgs[start:end], finite[start:end], ps[start:end], abstain))
    return out


def _judge_batch(imgs: np.ndarray, finite: np.ndarray, ps: list[Prompt], abstain: bool) -> list[JudgeResult]:
    from scipy import ndimage  # type: ignore[import-untyped]

    from textnorm.world._classify import classify
    from textnorm.world._segment import components, unmix

    n, h, w, _ = imgs.shape
    labels, _, pix = unmix(imgs)
    comps = components(labels)
    shape_idx, dist = classify(comps.features)
    scale = (h * w) / 64.0**2
    speck = comps.area < MIN_AREA * scale
    if speck.any():
        # A speck touching a real object is a stray edge pixel (blur plus noise can tip an edge
        # pixel to a neighbouring colour), not noise: it is neither an object nor counted.
        pm = comps.pixels
        real = (pm >= 0) & ~speck[pm]
        near = ndimage.binary_dilation(real, structure=_NEIGHBOURS)
        stray = np.unique(pm[near & (pm >= 0) & speck[pm]])
        ignored = np.zeros(len(speck), dtype=bool)
        ignored[stray] = True
    else:
        ignored = np.zeros(len(speck), dtype=bool)
    per_image: list[list[int]] = [[] for _ in range(n)]
    specks = np.zeros(n, dtype=int)
    for k in range(len(comps.area)):
        if ignored[k]:
            continue
        if speck[k]:
            specks[comps.image[k]] += 1
        else:
            per_image[comps.image[k]].append(k)
    bg_far = np.linalg.norm(pix.background - np.array(vocab.BACKGROUND), axis=1) > BACKGROUND_TOLERANCE
    results = []
    for i in range(n):
        found = []
        worst = 0.0
        for k in per_image[i]:
            shape = vocab.SHAPES[shape_idx[k]]
            radius = math.sqrt(comps.area[k] / AREA_FACTOR[shape] / (h * w))  # own area, no holes
            worst = max(worst, float(dist[k]))
            found.append(
                Detected(shape, vocab.COLOURS[comps.colour[k]], size_of(radius), float(comps.x[k]),
                         float(comps.y[k]), radius, float(comps.area[k]), float(dist[k]))
            )
        reason = ""
        if not finite[i]:
            reason = "non-finite pixels"
        elif abstain:
            if pix.border_uniform[i] < 0.5 or bg_far[i]:
                reason = "background is not the world's plain background"
            elif pix.foreign[i] > MAX_FOREIGN:
                reason = f"{pix.foreign[i]:.1%} of pixels match no colour of the world"
            elif pix.halo[i] > MAX_HALO:
                reason = f"blurred edges ({pix.halo[i]:.2f} partly covered pixels per edge pixel)"
            elif specks[i] > MAX_SPECKS:
                reason = f"{specks[i]} specks (noise)"
            elif len(found) > MAX_OBJECTS:
                reason = f"{len(found)} objects (more than {MAX_OBJECTS})"
            elif worst > MAX_DISTANCE:
                reason = "an object whose shape is unlike every world shape"
        results.append(_result(ps[i], found, reason, tuple(found)))
    return results


def _scene_problem(scene: Scene) -> str:
    """Why a scene's pixels might not show what its objects say ("" when they would)."""
    objs = scene.objects
    for i, a in enumerate(objs):
        if not (a.radius > 0 and a.radius <= a.x <= 1 - a.radius and a.radius <= a.y <= 1 - a.radius):
            return "an object leaves the image"
        for b in objs[i + 1 :]:
            if math.hypot(a.x - b.x, a.y - b.y) < a.radius + b.radius:
                return "objects overlap"
    return ""


def judge_scenes(scenes: Sequence[Scene], prompts: Any, *, strict: bool = False) -> list[JudgeResult]:
    """The ground truth: the same constraints checked on scenes (no pixels).

    Args:
        scenes: the scenes (for instance decoded from slots with `slots_to_scenes`).
        prompts: one prompt per scene, or one for all.
        strict: answer `unknown` for scenes whose drawing could mislead the pixel judge: objects
            whose circumcircles overlap, or that leave the image (the renderer never makes such
            scenes; a generator of slots may). Without it, scenes are never unknown.
    """
    ps = _as_prompts(prompts, len(scenes))
    return [_result(p, sc.objects, _scene_problem(sc) if strict else "", ()) for p, sc in zip(ps, scenes)]


def alignment(results: Sequence[JudgeResult], *, unknown: float = 0.0) -> np.ndarray:
    """`aligned` as a float array (1.0 / 0.0), with `unknown` for images the judge could not read."""
    return np.array([unknown if r.aligned is None else float(r.aligned) for r in results], dtype=np.float64)


def fractions(results: Sequence[JudgeResult], *, unknown: float = 0.0) -> np.ndarray:
    """Share of constraints satisfied per image, with `unknown` for unreadable images."""
    return np.array([unknown if r.unknown else r.fraction for r in results], dtype=np.float64)
