"""The in-memory benchmark that every loader returns: prompts, contrastive sets, images, labels.

A :class:`Benchmark` holds one category. Each prompt has its contrastive prompts, its images
(file names relative to ``images_dir``, or absolute paths) and an (n_images, n_raters) integer label
matrix with 1 = aligned, 0 = not aligned, -1 = missing. An image is aligned by majority vote when
more than half of its labels present say 1 (for TIA2's three raters: at least 2 of 3). A prompt is
*scored* when its images are not all of one majority label, as in the TIA2 metric files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from textnorm._core import LayoutError, ParameterError

__all__ = ["Benchmark", "PromptData", "label_mean", "majority_vote"]


def majority_vote(labels: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Aligned when more than half of the labels present are 1 (missing = -1 is ignored). With
    TIA2's three raters this is "at least 2 of 3 labels are 1", also when one label is missing.

    Args:
        labels: (n_images, n_raters) integers in {-1, 0, 1}.

    Example:
        >>> majority_vote(np.array([[1, 1, 0], [-1, 1, 0], [-1, 1, 1]])).tolist()
        [True, False, True]
    """
    lab = np.asarray(labels)
    return 2 * np.sum(lab == 1, axis=1) > np.sum(lab != -1, axis=1)


def label_mean(labels: NDArray[np.integer], *, missing: str = "half") -> NDArray[np.float64]:
    """The target for the rank correlations: the mean of each image's labels.

    Args:
        labels: (n_images, n_raters) integers in {-1, 0, 1}.
        missing: ``"half"`` counts a missing label as 0.5 (uninformative). This reproduces the tie
            structure of the targets behind the Kendall values in the TIA2 files for every prompt
            whose model scores have no ties (checked in the tests); ``"drop"`` averages the
            labels present (an image without any label gets 0.5).

    Example:
        >>> label_mean(np.array([[1, 1, 0], [-1, 1, 1]])).round(4).tolist()
        [0.6667, 0.8333]
    """
    lab = np.asarray(labels, dtype=np.float64)
    present = lab != -1
    if missing == "half":
        return np.where(present, lab, 0.5).mean(axis=1)
    if missing == "drop":
        count = present.sum(axis=1)
        total = np.where(present, lab, 0.0).sum(axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), 0.5)
    raise ParameterError(f"missing: expected 'half' or 'drop', got {missing!r}")


@dataclass(frozen=True)
class PromptData:
    """One prompt: its contrastive set, its images and their labels (n_images, n_raters)."""

    prompt: str
    contrast: tuple[str, ...]
    images: tuple[str, ...]
    labels: NDArray[np.int64]


@dataclass
class Benchmark:
    """One category of a human-label benchmark.

    Attributes:
        name: benchmark name, e.g. ``"tia2"``.
        category: category name, e.g. ``"counting"``.
        data: {prompt: PromptData}, in file order.
        images_dir: folder the image names are relative to, or None (annotations only).
        label_missing: how :meth:`targets` treats missing labels (see :func:`label_mean`).
    """

    name: str
    category: str
    data: dict[str, PromptData]
    images_dir: Path | None = None
    label_missing: str = "half"
    _scored: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for p, d in self.data.items():
            lab = np.asarray(d.labels)
            if lab.ndim != 2 or lab.shape[0] != len(d.images):
                raise LayoutError(
                    f"labels of {p!r}: expected shape ({len(d.images)}, n_raters), got {lab.shape}"
                )
            if not np.all(np.isin(lab, (-1, 0, 1))):
                raise ParameterError(f"labels of {p!r}: expected values in {{-1, 0, 1}}, got {np.unique(lab).tolist()}")
        self._scored = [p for p, d in self.data.items() if len(set(majority_vote(d.labels).tolist())) == 2]

    @property
    def prompts(self) -> list[str]:
        """Every annotated prompt, in file order."""
        return list(self.data)

    @property
    def scored_prompts(self) -> list[str]:
        """Prompts whose images are not all of one majority label (the ones metrics are computed on)."""
        return list(self._scored)

    @property
    def n_images(self) -> int:
        return sum(len(d.images) for d in self.data.values())

    def _get(self, prompt: str) -> PromptData:
        try:
            return self.data[prompt]
        except KeyError:
            raise ParameterError(f"prompt: expected a prompt of {self.name}/{self.category}, got {prompt!r}") from None

    def contrast(self, prompt: str) -> list[str]:
        """The contrastive prompts of ``prompt`` (target excluded)."""
        return list(self._get(prompt).contrast)

    def prompt_list(self, prompt: str) -> list[str]:
        """[prompt, *contrast] without duplicates or copies of the target, target first."""
        return list(dict.fromkeys([prompt, *self._get(prompt).contrast]))

    def images(self, prompt: str) -> list[Path]:
        """Image paths of ``prompt`` (joined with ``images_dir`` when it is set)."""
        names = self._get(prompt).images
        base = self.images_dir
        return [Path(n) if base is None else base / n for n in names]

    def labels(self, prompt: str) -> NDArray[np.int64]:
        """(n_images, n_raters) labels: 1 aligned, 0 not, -1 missing."""
        return np.array(self._get(prompt).labels, dtype=np.int64)

    def majority(self, prompt: str) -> NDArray[np.bool_]:
        """Majority-vote label per image (see :func:`majority_vote`)."""
        return majority_vote(self._get(prompt).labels)

    def targets(self, prompt: str) -> NDArray[np.float64]:
        """Mean label per image, the target of Spearman and Kendall (see :func:`label_mean`)."""
        return label_mean(self._get(prompt).labels, missing=self.label_missing)

    def human(self, prompt: str) -> float:
        """Fraction of the prompt's images that are aligned by majority vote (TIA2 ``human``)."""
        m = self.majority(prompt)
        return float(m.mean()) if m.size else math.nan

    def missing_images(self) -> list[Path]:
        """Image files that do not exist (all of them when ``images_dir`` is None)."""
        return [p for q in self.data for p in self.images(q) if not p.is_file()]

    def check_images(self) -> None:
        """Raise one clear error when any image file is missing."""
        if self.images_dir is None:
            raise ParameterError(
                f"images_dir: {self.name}/{self.category} needs its images for scoring, got none; "
                "pass the folder that holds the downloaded images"
            )
        missing = self.missing_images()
        if missing:
            raise ParameterError(
                f"images_dir: {len(missing)} of {self.n_images} images of {self.name}/{self.category} "
                f"are missing under {self.images_dir} (first: {missing[0].name})"
            )

    def fingerprint(self, *, with_files: bool = False) -> str:
        """SHA-256 of prompts, contrastive sets and image names (and, with ``with_files``, each
        image's size in bytes). The score cache keys on names only, so cached scores stay usable
        without the images; recompute (``--refresh-cache``) after replacing images in place."""
        h = hashlib.sha256()
        for p, d in self.data.items():
            item: list[object] = [p, self.prompt_list(p), list(d.images)]
            if with_files and self.images_dir is not None:
                item.append([q.stat().st_size if q.is_file() else -1 for q in self.images(p)])
            h.update(json.dumps(item).encode())
        return h.hexdigest()

    def subset(self, prompts: Sequence[str]) -> Benchmark:
        """A benchmark with only ``prompts`` (in the given order)."""
        data = {p: self._get(p) for p in prompts}
        return Benchmark(self.name, self.category, data, self.images_dir, self.label_missing)


def from_records(
    name: str, category: str, records: Mapping[str, tuple[Sequence[str], Sequence[str], Sequence[Sequence[int]]]],
    *, images_dir: Path | None = None,
) -> Benchmark:
    """Build a :class:`Benchmark` from {prompt: (contrast, image names, label rows)}; label rows
    of unequal length are padded with -1 (missing)."""
    data: dict[str, PromptData] = {}
    for p, (contrast, images, rows) in records.items():
        width = max((len(r) for r in rows), default=1)
        lab = np.full((len(rows), width), -1, dtype=np.int64)
        for i, r in enumerate(rows):
            lab[i, : len(r)] = r
        data[p] = PromptData(p, tuple(contrast), tuple(images), lab)
    return Benchmark(name, category, data, images_dir)
