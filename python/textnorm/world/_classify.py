"""Shape classification by nearest neighbours in feature space (private; used by the judge).

The reference set is measured, not learned by gradient: single objects of every shape are
rendered at sizes across both size ranges (and a little beyond), at random sub-pixel positions,
clean, blurred and noisy, with a fixed seed, and their features (see `_segment`) are stored. A
component takes the majority shape of its `_K_NN` nearest references in standardised feature
space; its distance to the nearest reference says how familiar it looks, and the judge abstains
on unfamiliar components. Built once per process on first use (about a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from textnorm.world import vocab
from textnorm.world._segment import components, unmix
from textnorm.world.render import render_scene
from textnorm.world.scene import Scene, WorldObject

_K_NN = 5
_PER_SHAPE = 240


@dataclass(frozen=True)
class Reference:
    features: np.ndarray  # (R, F) standardised
    shapes: np.ndarray  # (R,) int index into SHAPES
    mean: np.ndarray
    scale: np.ndarray


def _calibration_images(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    imgs, shapes = [], []
    for si, shape in enumerate(vocab.SHAPES):
        for k in range(_PER_SHAPE):
            r = float(rng.uniform(0.08, 0.165))
            x, y = rng.uniform(0.3, 0.7, size=2)
            colour = vocab.COLOURS[k % len(vocab.COLOURS)]
            obj = WorldObject(shape, colour, "small", float(x), float(y), r, vocab.PALETTE[colour])
            img = render_scene(Scene((obj,))).astype(np.float32)
            variant = k % 4
            if variant == 1:
                img = ndimage.gaussian_filter(img, sigma=(rng.uniform(0.4, 1.0),) * 2 + (0,))
            elif variant == 2:
                img = img + rng.normal(0, 8, img.shape)
            elif variant == 3:
                img = ndimage.gaussian_filter(img, sigma=(0.6, 0.6, 0)) + rng.normal(0, 5, img.shape)
            imgs.append(np.clip(img, 0, 255))
            shapes.append(si)
    return np.stack(imgs).astype(np.float32), np.array(shapes)


@lru_cache(maxsize=1)
def reference() -> Reference:
    """The reference feature set (built on first call, deterministic)."""
    images, shapes = _calibration_images(np.random.default_rng(20241126))
    labels, _, _ = unmix(images)
    comps = components(labels)
    # Keep each image's largest component (noise may add specks).
    order = np.lexsort((-comps.area, comps.image))
    first = order[np.r_[True, comps.image[order][1:] != comps.image[order][:-1]]]
    feats = comps.features[first]
    ref_shapes = shapes[comps.image[first]]
    mean = feats.mean(axis=0)
    scale = feats.std(axis=0) + 1e-6
    return Reference((feats - mean) / scale, ref_shapes, mean, scale)


def classify(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape index and nearest-reference distance (standardised units) for each feature row."""
    ref = reference()
    if len(features) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    q = (features - ref.mean) / ref.scale
    d2 = (q * q).sum(1)[:, None] - 2 * q @ ref.features.T + (ref.features**2).sum(1)[None]
    nn = np.argpartition(d2, _K_NN, axis=1)[:, :_K_NN]
    votes = np.zeros((len(q), len(vocab.SHAPES)))
    np.add.at(votes, (np.repeat(np.arange(len(q)), _K_NN), ref.shapes[nn].ravel()), 1.0)
    dist = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return votes.argmax(axis=1), dist
