"""Shape classification by nearest neighbours in feature space (private; used by the judge).

The reference set is measured, not learned by gradient: single objects of every shape are
rendered at sizes across both size ranges (and a little beyond), at random sub-pixel positions,
clean, blurred and noisy, with a fixed seed, and their features (see `_segment`) are stored. A
component takes the majority shape of its `_K_NN` nearest references in standardised feature
space; its distance to the nearest reference says how familiar it looks, and the judge abstains
on unfamiliar components. The set is stored beside this module (`_reference.npz`, keyed by
everything it depends on) and rebuilt in memory when missing or stale (several seconds);
``python -m textnorm.world._classify`` rewrites the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage  # type: ignore[import-untyped]
from scipy.spatial import cKDTree  # type: ignore[import-untyped]

from textnorm.world import geometry, vocab
from textnorm.world._segment import N_FEATURES, RESIDUAL, components, unmix
from textnorm.world.render import render_scene
from textnorm.world.scene import Scene, WorldObject

_K_NN = 5
_PER_SHAPE = 720
_SEED = 20241126
_FORMAT = 3  # bump when features or the calibration recipe change
_FILE = Path(__file__).with_name("_reference.npz")


def _key() -> str:
    facts = (
        _FORMAT, _PER_SHAPE, _SEED, N_FEATURES, RESIDUAL, vocab.SHAPES, vocab.PALETTE, vocab.BACKGROUND,
        geometry.POLYGONS, geometry.RING_INNER,
    )
    return hashlib.sha256(repr(facts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Reference:
    features: np.ndarray  # (R, F) standardised
    shapes: np.ndarray  # (R,) int index into SHAPES
    mean: np.ndarray
    scale: np.ndarray
    tree: cKDTree


def _calibration_images(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    imgs, shapes = [], []
    for si, shape in enumerate(vocab.SHAPES):
        for k in range(_PER_SHAPE):
            # Radii around the two size ranges, small ones (hardest to read) more often.
            r = float(rng.uniform(0.08, 0.105) if rng.random() < 0.6 else rng.uniform(0.13, 0.16))
            x, y = rng.uniform(0.3, 0.7, size=2)
            colour = vocab.COLOURS[k % len(vocab.COLOURS)]
            obj = WorldObject(shape, colour, "small", float(x), float(y), r, vocab.PALETTE[colour])
            img: np.ndarray = render_scene(Scene((obj,))).astype(np.float32)
            variant = k % 6 if k % 6 < 4 else 0  # half clean, half blurred and/or noisy
            if variant == 1:
                img = ndimage.gaussian_filter(img, sigma=(rng.uniform(0.4, 1.0),) * 2 + (0,))
            elif variant == 2:
                img = img + rng.normal(0, 8, img.shape)
            elif variant == 3:
                img = ndimage.gaussian_filter(img, sigma=(0.6, 0.6, 0)) + rng.normal(0, 5, img.shape)
            imgs.append(np.clip(img, 0, 255))
            shapes.append(si)
    return np.stack(imgs).astype(np.float32), np.array(shapes)


def build() -> tuple[np.ndarray, np.ndarray]:
    """Measure the reference features (unstandardised) and their shapes, from scratch."""
    images, shapes = _calibration_images(np.random.default_rng(_SEED))
    feats, ref_shapes = [], []
    for start in range(0, len(images), 512):
        labels, _, _ = unmix(images[start : start + 512])
        comps = components(labels)
        # Keep each image's largest component (noise may add specks).
        order = np.lexsort((-comps.area, comps.image))
        first = order[np.r_[True, comps.image[order][1:] != comps.image[order][:-1]]]
        feats.append(comps.features[first])
        ref_shapes.append(shapes[start + comps.image[first]])
    return np.concatenate(feats).astype(np.float32), np.concatenate(ref_shapes).astype(np.int8)


@lru_cache(maxsize=1)
def reference() -> Reference:
    """The reference feature set (from the stored file when current, else built)."""
    feats: np.ndarray | None = None
    if _FILE.exists():
        with np.load(_FILE) as z:
            if str(z["key"]) == _key():
                feats, ref_shapes = z["features"].astype(np.float64), z["shapes"].astype(np.int64)
    if feats is None:
        f, sh = build()
        feats, ref_shapes = f.astype(np.float64), sh.astype(np.int64)
    mean = feats.mean(axis=0)
    scale = feats.std(axis=0) + 1e-6
    std = (feats - mean) / scale
    return Reference(std, ref_shapes, mean, scale, cKDTree(std))


def classify(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shape index and nearest-reference distance (standardised units) for each feature row."""
    ref = reference()
    if len(features) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    q = (features - ref.mean) / ref.scale
    q = np.where(np.isfinite(q), q, 1e6)  # degenerate components land far from everything
    dist, nn = ref.tree.query(q, k=_K_NN)
    votes = np.zeros((len(q), len(vocab.SHAPES)))
    np.add.at(votes, (np.repeat(np.arange(len(q)), _K_NN), ref.shapes[nn].ravel()), 1.0)
    return votes.argmax(axis=1), dist[:, 0]

if __name__ == "__main__":
    f, sh = build()
    np.savez_compressed(_FILE, key=np.array(_key()), features=f, shapes=sh)
    print(f"wrote {_FILE} ({len(f)} references)")
