"""Shape geometry of the world, written once for numpy and for any array library like it.

Coordinates
    Images are square, ``S`` pixels a side (64 by default). A point is ``(x, y)`` in normalised
    image units: ``x`` grows to the right, ``y`` grows DOWNWARDS, both in [0, 1] across the image.
    The pixel in row ``i``, column ``j`` has its centre at ``((j + 0.5) / S, (i + 0.5) / S)``.

Objects
    An object is ``(shape, x, y, r)``: centre ``(x, y)`` and radius ``r``, both in normalised
    units. ``r`` is the circumradius: every point of the shape lies within ``r`` of its centre,
    so ``r * S`` is the radius in pixels. Unit shapes (``r = 1``, centre at the origin, y down):

    ========  ==============================================================================
    circle    disc of radius 1
    ring      annulus between radii 0.5 and 1
    square    axis-aligned, half-side 1/sqrt(2) (corners on the unit circle)
    diamond   rhombus with vertices (0, -1), (0.75, 0), (0, 1), (-0.75, 0)
    triangle  equilateral, apex up: (0, -1), (sqrt(3)/2, 1/2), (-sqrt(3)/2, 1/2)
    star      five points, outer radius 1 at angles -90 + 72k degrees, inner radius 0.45
              at -54 + 72k degrees (first point straight up)
    cross     plus sign: two bars of half-width 0.3 reaching +-sqrt(1 - 0.09) along each axis
    ========  ==============================================================================

    Every shape's centroid is its centre, so a detected object's pixel centroid estimates
    ``(x, y)``. `AREA_FACTOR[shape]` is the area of the unit shape (area = factor * r**2).

Rendering
    `signed_distance(shape, u, v)` is the exact Euclidean signed distance (negative inside) to the
    unit shape at unit coordinates ``u = (px - x) / r``, ``v = (py - y) / r``; in normalised units
    the distance is ``r * signed_distance(...)``. The hard renderer's coverage of a pixel is
    ``alpha = clip(0.5 - S * d, 0, 1)`` with ``d`` the normalised distance at the pixel centre (a
    one-pixel anti-aliasing ramp), and objects are composited in order,
    ``image = image * (1 - alpha) + rgb * alpha``, over the plain background. A soft,
    differentiable renderer uses the same distance with ``alpha = sigmoid(-S * d / tau)``.

    The functions take ``xp``: any module with numpy's names for ``sqrt``, ``abs``, ``minimum``,
    ``clip`` and ``where`` (numpy, or torch itself), so ``signed_distance(shape, u, v, xp=torch)``
    on tensors is differentiable in ``u`` and ``v`` (hence in ``x``, ``y`` and ``r``). A tiny
    1e-12 under every square root keeps gradients finite at the centre and on edges.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from textnorm._core import ParameterError

_EPS = 1e-12
RING_INNER = 0.5
STAR_INNER = 0.45
CROSS_HALF_WIDTH = 0.3


def _star() -> tuple[tuple[float, float], ...]:
    pts = []
    for k in range(10):
        ang = math.radians(-90 + 36 * k)
        rad = 1.0 if k % 2 == 0 else STAR_INNER
        pts.append((rad * math.cos(ang), rad * math.sin(ang)))
    return tuple(pts)


def _cross() -> tuple[tuple[float, float], ...]:
    w, e = CROSS_HALF_WIDTH, math.sqrt(1 - CROSS_HALF_WIDTH**2)
    return (
        (-w, -e), (w, -e), (w, -w), (e, -w), (e, w), (w, w),
        (w, e), (-w, e), (-w, w), (-e, w), (-e, -w), (-w, -w),
    )


_H = 1 / math.sqrt(2)
_S3 = math.sqrt(3) / 2
POLYGONS: dict[str, tuple[tuple[float, float], ...]] = {
    "square": ((-_H, -_H), (_H, -_H), (_H, _H), (-_H, _H)),
    "diamond": ((0.0, -1.0), (0.75, 0.0), (0.0, 1.0), (-0.75, 0.0)),
    "triangle": ((0.0, -1.0), (_S3, 0.5), (-_S3, 0.5)),
    "star": _star(),
    "cross": _cross(),
}


def _shoelace(pts: tuple[tuple[float, float], ...]) -> float:
    n = len(pts)
    return abs(sum(pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n))) / 2


AREA_FACTOR: dict[str, float] = {name: _shoelace(p) for name, p in POLYGONS.items()}
AREA_FACTOR["circle"] = math.pi
AREA_FACTOR["ring"] = math.pi * (1 - RING_INNER**2)


def _polygon(u: Any, v: Any, pts: tuple[tuple[float, float], ...], xp: Any) -> Any:
    d2: Any = None
    inside: Any = None
    for k in range(len(pts)):
        (x1, y1), (x2, y2) = pts[k], pts[(k + 1) % len(pts)]
        ex, ey = x2 - x1, y2 - y1
        wx, wy = u - x1, v - y1
        t = xp.clip((wx * ex + wy * ey) * (1.0 / (ex * ex + ey * ey)), 0.0, 1.0)
        dx, dy = wx - t * ex, wy - t * ey
        dd = dx * dx + dy * dy
        d2 = dd if d2 is None else xp.minimum(d2, dd)
        if y1 != y2:  # even-odd crossing test along +u; horizontal edges never cross
            crosses = ((v < y1) != (v < y2)) & (u < x1 + (v - y1) * (ex / ey))
            inside = crosses if inside is None else inside ^ crosses
    d = xp.sqrt(d2 + _EPS)
    return xp.where(inside, -d, d)


def signed_distance(shape: str, u: Any, v: Any, *, xp: Any = np) -> Any:
    """Exact signed distance to the unit `shape` (negative inside) at unit coordinates (u, v).

    Args:
        shape: one of `textnorm.world.SHAPES`.
        u: x offset from the centre divided by the radius (array of any shape).
        v: y offset (downwards) divided by the radius, broadcastable with `u`.
        xp: array module (numpy by default; torch works too).

    Raises:
        ParameterError: `shape` is not drawable.

    >>> round(float(signed_distance("circle", np.array(2.0), np.array(0.0))), 9)
    1.0
    >>> round(float(signed_distance("square", np.array(0.0), np.array(0.0))), 4)  # -half-side
    -0.7071
    """
    if shape == "circle":
        return xp.sqrt(u * u + v * v + _EPS) - 1.0
    if shape == "ring":
        mid, half = (1 + RING_INNER) / 2, (1 - RING_INNER) / 2
        return xp.abs(xp.sqrt(u * u + v * v + _EPS) - mid) - half
    pts = POLYGONS.get(shape)
    if pts is None:
        raise ParameterError(f"shape: expected one of circle, ring, {', '.join(POLYGONS)}; got {shape!r}")
    return _polygon(u, v, pts, xp)


def coverage(
    shape: str, x: float, y: float, r: float, *, size: int = 64, window: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Hard anti-aliased coverage (alpha in [0, 1], float32) of one object on an image grid.

    Args:
        shape, x, y, r: the object (normalised units, see the module docstring).
        size: image side in pixels.
        window: (row0, row1, col0, col1) to evaluate only that part of the grid; the full image
            when None.
    """
    r0, r1, c0, c1 = window if window is not None else (0, size, 0, size)
    py = ((np.arange(r0, r1, dtype=np.float64) + 0.5) / size)[:, None]
    px = ((np.arange(c0, c1, dtype=np.float64) + 0.5) / size)[None, :]
    d = r * signed_distance(shape, (px - x) / r, (py - y) / r)
    return np.clip(0.5 - size * d, 0.0, 1.0).astype(np.float32)
