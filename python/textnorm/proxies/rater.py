"""The simulated rater behind the preference-trained proxies: who prefers which of two images.

Real reward models such as PickScore, ImageReward and HPS v2 are learned from people's pairwise
choices: two images made for one prompt, "which is better?". People check what the prompt asks
for only as far as they notice it, and they also like some images better for how they look. A
reward model learned from such choices inherits both: the alignment it can see, a taste for looks
that depends on the image alone, and blind spots where raters did not look. This module is the
one place where the world's rater is defined.

**Alignment as noticed.** For each constraint of the prompt (`textnorm.world.Prompt.constraints`),
an image gets a standing from the ground-truth scene: +1 if the constraint holds, 0 if it fails,
-1 if it fails because the object is missing altogether. Where two images differ on a
constraint, the rater notices the difference with a probability that depends on how the worse of
the two fails (`Rater` fields, see `failure_kind`):

- ``missing``: no object of the asked shape at all (hard to miss);
- ``count``: the right kind of object, the wrong number; raters count reliably up to three
  (``count_small``) and hardly at all beyond (``count_large``: "three" vs "four" vs "five");
- ``attribute``: the shape is there but in another colour or size; in a prompt with several
  objects this is an attribute-binding error, often missed (``binding``);
- ``relation``: the objects are there but not in the stated spatial relation;
- ``extra``: something unasked-for is in the image (raters rarely mind).

Noticed differences add up to a margin ``m`` (positive when image A stands better).

**Looks.** `appearance(image)` scores an image from its pixels alone: fuller scenes (more
foreground: more or bigger objects), more saturated colour, and a centred composition look better.

**Choice.** The rater prefers A with probability ``sigmoid(beta * m + w * (appearance(A) -
appearance(B)))``, a Bradley-Terry choice over a utility that mixes what was noticed with looks.
``w = 0`` is a rater with no taste for looks; blind spots then make ties, not preferences. With
``w > 0`` a blind spot becomes a preference: a rater who cannot count past three but likes fuller
scenes prefers four stars to three when "three stars" was asked for.

This module needs numpy and the world only (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from textnorm._core import ParameterError
from textnorm.world import vocab
from textnorm.world.grammar import Constraint, Prompt, check
from textnorm.world.scene import Scene

__all__ = ["FAILURE_KINDS", "Rater", "appearance", "failure_kind", "standing"]

FAILURE_KINDS: tuple[str, ...] = ("missing", "count", "attribute", "relation", "extra")

# Appearance features, standardised by their mean and spread over the shipped base generator's
# samples for train-split prompts (1,280 samples, seed 0; `tests/test_rater.py` re-measures them),
# so that one unit of `appearance` is about one standard deviation of base samples.
_AREA = (0.058, 0.029)  # foreground fraction of the image
_SATURATION = (0.61, 0.23)  # mean HSV saturation of foreground pixels
_OFFCENTRE = (0.18, 0.099)  # distance of the foreground's centroid from the centre (image sides)
_BACKGROUND = np.asarray(vocab.BACKGROUND, dtype=np.float64)
_FG_THRESHOLD = 40.0  # a pixel this far (max channel difference) from the background is foreground


def _as_float_images(images: np.ndarray) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ParameterError(f"images: expected uint8 (N, H, W, 3) or (H, W, 3), got shape {a.shape}")
    if a.dtype != np.uint8:
        raise ParameterError(f"images: expected uint8 pixels, got {a.dtype}")
    return a.astype(np.float64)


def appearance_features(images: np.ndarray) -> np.ndarray:
    """Raw looks features per image, (N, 3): foreground fraction, foreground saturation, and the
    foreground centroid's distance from the image centre (in image sides; 0 when empty)."""
    a = _as_float_images(images)
    n, h, w, _ = a.shape
    fg = np.abs(a - _BACKGROUND).max(axis=-1) > _FG_THRESHOLD
    area = fg.mean(axis=(1, 2))
    mx, mn = a.max(axis=-1), a.min(axis=-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-9), 0.0)
    count = fg.sum(axis=(1, 2))
    safe = np.maximum(count, 1)
    saturation = np.where(count > 0, (sat * fg).sum(axis=(1, 2)) / safe, 0.0)
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    cy = (fg * ys[None, :, None]).sum(axis=(1, 2)) / safe
    cx = (fg * xs[None, None, :]).sum(axis=(1, 2)) / safe
    off = np.where(count > 0, np.hypot(cx - 0.5, cy - 0.5), 0.0)
    return np.stack([area, saturation, off], axis=1)


def appearance(images: np.ndarray) -> np.ndarray:
    """How good each image looks to the rater, from its pixels alone (float64, (N,)).

    ``z(area) + 0.5 z(saturation) - 0.5 z(off-centre)``, each feature standardised over base
    generator samples, so a fuller, more colourful, centred scene scores higher.

    >>> import numpy as np
    >>> blank = np.full((1, 64, 64, 3), 240, np.uint8)
    >>> full = blank.copy(); full[:, 16:48, 16:48] = (210, 30, 40)
    >>> bool(appearance(full)[0] > appearance(blank)[0])
    True
    """
    f = appearance_features(images)
    return ((f[:, 0] - _AREA[0]) / _AREA[1] + 0.5 * (f[:, 1] - _SATURATION[0]) / _SATURATION[1]
            - 0.5 * (f[:, 2] - _OFFCENTRE[0]) / _OFFCENTRE[1])


def failure_kind(constraint: Constraint, scene: Scene, holds: bool, observed: int | None) -> str | None:
    """How `scene` fails `constraint` (one of `FAILURE_KINDS`), or None when it holds."""
    if holds:
        return None
    if constraint.kind == "relation":
        return "relation"
    if constraint.kind == "no_extra":
        return "extra"
    spec = constraint.subject
    assert spec is not None
    if observed:
        return "count"
    if any(o.shape == spec.shape for o in scene.objects):
        return "attribute" if (spec.colour is not None or spec.size is not None) else "count"
    return "missing"


def standing(prompt: Prompt, scene: Scene) -> list[tuple[int, str | None, int | None]]:
    """Per constraint of `prompt`: ``(standing, failure kind, observed count)`` for `scene`.

    Standing is +1 (holds), 0 (fails) or -1 (fails with the object missing altogether).
    """
    out = []
    for c, (holds, observed) in zip(prompt.constraints, check(scene.objects, prompt)):
        kind = failure_kind(c, scene, holds, observed)
        out.append((1 if kind is None else (-1 if kind == "missing" else 0), kind, observed))
    return out


@dataclass(frozen=True)
class Rater:
    """A simulated rater (see the module docstring): what it notices, and its taste for looks.

    Attributes:
        w: weight of looks (`appearance` difference) in the choice's logit; 0: no taste.
        beta: weight of one noticed constraint difference in the choice's logit.
        missing: probability of noticing a missing object.
        count_small: probability of noticing a wrong count when both counts are at most three.
        count_large: the same when either count is above three.
        attribute: probability of noticing a wrong colour or size in a one-object prompt.
        binding: the same in a prompt with several objects (attribute binding).
        relation: probability of noticing a wrong spatial relation.
        extra: probability of noticing an unasked-for object.
    """

    w: float = 0.0
    beta: float = 2.0
    missing: float = 0.95
    count_small: float = 0.9
    count_large: float = 0.1
    attribute: float = 0.85
    binding: float = 0.3
    relation: float = 0.3
    extra: float = 0.1

    def __post_init__(self) -> None:
        for name in ("missing", "count_small", "count_large", "attribute", "binding", "relation", "extra"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ParameterError(f"{name}: expected a probability in [0, 1], got {v!r}")
        for name in ("w", "beta"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ParameterError(f"{name}: expected a finite non-negative number, got {v!r}")

    def notice_probability(self, prompt: Prompt, kind: str, counts: tuple[int, int]) -> float:
        """Probability of noticing a difference whose worse side fails as `kind`; `counts` are the
        asked and the observed count (for ``count``)."""
        if kind == "count":
            return self.count_small if max(counts) <= 3 else self.count_large
        if kind == "attribute":
            return self.binding if len(prompt.objects) > 1 else self.attribute
        return float(getattr(self, kind))

    def margin(self, prompt: Prompt, a: Scene, b: Scene, rng: np.random.Generator) -> int:
        """The noticed alignment margin of A over B for one comparison (random: what is noticed)."""
        m = 0
        for c, sa, sb in zip(prompt.constraints, standing(prompt, a), standing(prompt, b)):
            if sa[0] == sb[0]:
                continue
            worse = sa if sa[0] < sb[0] else sb
            asked = c.subject.count if c.subject is not None else 0
            p = self.notice_probability(prompt, worse[1] or "extra", (asked, worse[2] or 0))
            if rng.random() < p:
                m += sa[0] - sb[0]
        return m

    def choose(self, prompt: Prompt, scenes: Sequence[Scene], images: np.ndarray,
               pairs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Simulated choices: 1.0 where the rater prefers ``pairs[i, 0]`` over ``pairs[i, 1]``.

        Args:
            prompt: the prompt both images were made for.
            scenes: ground-truth scene of each image.
            images: uint8 (N, H, W, 3) pixels of each image (for `appearance`).
            pairs: int (P, 2) indices into `scenes`/`images`.
            rng: random generator (what is noticed, and the choice).
        """
        looks = appearance(images)
        out = np.empty(len(pairs))
        for i, (ia, ib) in enumerate(np.asarray(pairs, dtype=np.int64)):
            logit = self.beta * self.margin(prompt, scenes[ia], scenes[ib], rng) + self.w * (looks[ia] - looks[ib])
            out[i] = float(rng.random() < 1.0 / (1.0 + np.exp(-logit)))
        return out
