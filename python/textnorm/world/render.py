"""Rendering: prompts, scenes and continuous object slots to uint8 RGB images.

`render(prompts, seed=...)` is deterministic: image i depends only on the canonical text of
prompts[i] and its seed (``seed + i`` for an int seed, or ``seed[i]`` for a sequence), never on the
batch around it. Geometry and compositing are documented in `textnorm.world.geometry`.

Slots (for generators over a compact scene latent): an array (..., n_slots, SLOT_DIM) whose last
axis holds, in order, ``presence`` (1; an object is drawn when > 0.5), ``shape`` scores
(len(SHAPES), argmax picks the shape, in `SHAPES` order), ``colour`` scores (len(COLOURS), argmax,
`COLOURS` order), then ``radius``, ``x``, ``y`` (normalised units). `SLOT_INDEX` names the slices.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Literal, overload

import numpy as np

from textnorm._core import LayoutError, NonFiniteError, ParameterError
from textnorm.world import vocab
from textnorm.world.geometry import coverage
from textnorm.world.grammar import Prompt, parse
from textnorm.world.scene import Scene, WorldObject, sample_near_miss, sample_scene, size_of

_NS, _NC = len(vocab.SHAPES), len(vocab.COLOURS)
SLOT_INDEX: dict[str, slice] = {
    "presence": slice(0, 1),
    "shape": slice(1, 1 + _NS),
    "colour": slice(1 + _NS, 1 + _NS + _NC),
    "radius": slice(1 + _NS + _NC, 2 + _NS + _NC),
    "x": slice(2 + _NS + _NC, 3 + _NS + _NC),
    "y": slice(3 + _NS + _NC, 4 + _NS + _NC),
}
SLOT_DIM = 4 + _NS + _NC


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or not 16 <= size <= 1024:
        raise ParameterError(f"size: expected an int in [16, 1024], got {size!r}")


def render_scene(scene: Scene, *, size: int = 64, antialias: bool = True) -> np.ndarray:
    """Draw one scene.

    Args:
        scene: the objects (geometry in normalised units).
        size: image side in pixels.
        antialias: one-pixel coverage ramp at edges (else hard 0/1 coverage).

    Returns:
        uint8 array (size, size, 3).
    """
    _check_size(size)
    img = np.empty((size, size, 3), dtype=np.float32)
    img[:] = vocab.BACKGROUND
    for o in scene.objects:
        if not (np.isfinite(o.x) and np.isfinite(o.y) and np.isfinite(o.radius)):
            raise NonFiniteError(f"scene: object coordinates must be finite, got {o}")
        if o.radius <= 0:
            continue
        pad = o.radius * size + 2
        r0, r1 = max(0, int(o.y * size - pad)), min(size, int(np.ceil(o.y * size + pad)))
        c0, c1 = max(0, int(o.x * size - pad)), min(size, int(np.ceil(o.x * size + pad)))
        if r0 >= r1 or c0 >= c1:
            continue
        a = coverage(o.shape, o.x, o.y, o.radius, size=size, window=(r0, r1, c0, c1))
        if not antialias:
            a = (a >= 0.5).astype(np.float32)
        win = img[r0:r1, c0:c1]
        win += a[..., None] * (np.asarray(o.rgb, dtype=np.float32) - win)
    return np.rint(img).astype(np.uint8)


def _seeds(seed: int | Sequence[int], n: int) -> list[int]:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ParameterError(f"seed: expected a non-negative int, got {seed}")
        return [int(seed) + i for i in range(n)]
    seeds = list(seed) if not isinstance(seed, (int, np.integer)) else []
    if len(seeds) != n or any(not isinstance(s, (int, np.integer)) or s < 0 for s in seeds):
        raise ParameterError(f"seed: expected an int or {n} non-negative ints (one per prompt), got {seed!r}")
    return [int(s) for s in seeds]


def _prompts(prompts: Sequence[str | Prompt] | str) -> list[Prompt]:
    if isinstance(prompts, (str, Prompt)):
        prompts = [prompts]
    return [p if isinstance(p, Prompt) else parse(p) for p in prompts]


def _stack(scenes: list[Scene], size: int) -> np.ndarray:
    _check_size(size)
    if not scenes:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([render_scene(sc, size=size) for sc in scenes])


def rng_for(prompt: Prompt, seed: int, stream: int = 0) -> np.random.Generator:
    """The generator behind (prompt, seed): seeded by the seed and a checksum of the text."""
    return np.random.default_rng([seed, zlib.crc32(prompt.text.encode()), stream])


@overload
def render(
    prompts: Sequence[str | Prompt] | str,
    *,
    seed: int | Sequence[int] = ...,
    size: int = ...,
    return_scenes: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def render(
    prompts: Sequence[str | Prompt] | str,
    *,
    seed: int | Sequence[int] = ...,
    size: int = ...,
    return_scenes: Literal[True],
) -> tuple[np.ndarray, list[Scene]]: ...


def render(
    prompts: Sequence[str | Prompt] | str,
    *,
    seed: int | Sequence[int] = 0,
    size: int = 64,
    return_scenes: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[Scene]]:
    """Render one correct image per prompt.

    Args:
        prompts: world prompts (text or parsed).
        seed: an int (image i uses seed + i) or one seed per prompt.
        size: image side in pixels.
        return_scenes: also return the scenes drawn (the ground truth).

    Returns:
        uint8 (N, size, size, 3), and the scenes when asked.

    >>> render(["three red circles"], seed=0).shape
    (1, 64, 64, 3)
    """
    ps = _prompts(prompts)
    scenes = [sample_scene(p, rng_for(p, s)) for p, s in zip(ps, _seeds(seed, len(ps)))]
    images = _stack(scenes, size)
    return (images, scenes) if return_scenes else images


def render_near_misses(
    prompts: Sequence[str | Prompt] | str,
    *,
    kind: str | Sequence[str | None] | None = None,
    seed: int | Sequence[int] = 0,
    size: int = 64,
) -> tuple[np.ndarray, list[Scene], list[str]]:
    """Render one near-miss per prompt: an image its prompt does not describe.

    Args:
        prompts: world prompts.
        kind: a near-miss kind for all prompts, one per prompt, or None for a random applicable
            kind (see `textnorm.world.scene.near_miss_prompt`).
        seed: as in `render` (an independent stream: near-miss i differs from render i).
        size: image side in pixels.

    Returns:
        (images uint8 (N, size, size, 3), scenes, the kind of each).
    """
    ps = _prompts(prompts)
    kinds = [kind] * len(ps) if kind is None or isinstance(kind, str) else list(kind)
    if len(kinds) != len(ps):
        raise ParameterError(f"kind: expected one kind per prompt ({len(ps)}), got {len(kinds)}")
    out = [sample_near_miss(p, rng_for(p, s, 1), kind=k) for p, s, k in zip(ps, _seeds(seed, len(ps)), kinds)]
    scenes = [sc for sc, _ in out]
    images = _stack(scenes, size)
    return images, scenes, [k for _, k in out]


def scenes_to_slots(scenes: Sequence[Scene], *, n_slots: int = 8) -> np.ndarray:
    """Encode scenes as slot arrays (N, n_slots, SLOT_DIM) float32; unused slots are all zero.

    Raises:
        ParameterError: a scene has more than `n_slots` objects.
    """
    out = np.zeros((len(scenes), n_slots, SLOT_DIM), dtype=np.float32)
    for i, sc in enumerate(scenes):
        if len(sc.objects) > n_slots:
            raise ParameterError(f"n_slots: scene {i} has {len(sc.objects)} objects, more than n_slots={n_slots}")
        for k, o in enumerate(sc.objects):
            row = out[i, k]
            row[0] = 1.0
            row[SLOT_INDEX["shape"]][vocab.SHAPES.index(o.shape)] = 1.0
            row[SLOT_INDEX["colour"]][vocab.COLOURS.index(o.colour)] = 1.0
            row[SLOT_INDEX["radius"]], row[SLOT_INDEX["x"]], row[SLOT_INDEX["y"]] = o.radius, o.x, o.y
    return out


def slots_to_scenes(slots: np.ndarray) -> list[Scene]:
    """Decode slot arrays (N, n_slots, SLOT_DIM) to scenes (exact palette colours, no jitter).

    Radii are clipped to [0, 0.5]; centres are kept as given (objects may leave the image).

    Raises:
        LayoutError: `slots` is not (N, n_slots, SLOT_DIM).
        NonFiniteError: `slots` holds NaN or infinity.
    """
    a = np.asarray(slots, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != SLOT_DIM:
        raise LayoutError(f"slots: expected shape (N, n_slots, {SLOT_DIM}), got {a.shape}")
    if not np.isfinite(a).all():
        raise NonFiniteError("slots: expected finite values, got NaN or infinity")
    scenes = []
    for row in a:
        objs = []
        for s in row[row[:, 0] > 0.5]:
            shape = vocab.SHAPES[int(np.argmax(s[SLOT_INDEX["shape"]]))]
            colour = vocab.COLOURS[int(np.argmax(s[SLOT_INDEX["colour"]]))]
            r = float(np.clip(s[SLOT_INDEX["radius"]][0], 0.0, 0.5))
            x, y = float(s[SLOT_INDEX["x"]][0]), float(s[SLOT_INDEX["y"]][0])
            objs.append(WorldObject(shape, colour, size_of(r), x, y, r, vocab.PALETTE[colour]))
        scenes.append(Scene(tuple(objs)))
    return scenes


def render_slots(slots: np.ndarray, *, size: int = 64) -> np.ndarray:
    """Decode and draw slot arrays: uint8 (N, size, size, 3). See `slots_to_scenes`."""
    return _stack(slots_to_scenes(slots), size)
