"""Score cache: raw reward logits of every image against its prompt list, computed once per scorer.

With the raw logits on disk, any scale, lambda or ensemble is re-evaluated in seconds without a
model. Layout of a cache folder::

    index.json        {"version": 1, "entries": {key: {scorer, data, benchmark, category, file, ...}}}
    <key16>.npz       values (float64), offsets (int64, n_images + 1), image_offsets (n_prompts + 1),
                      prompts (str)

``key`` = SHA-256 of the scorer id, benchmark name, category and the benchmark fingerprint
(prompts, contrastive sets, image names; not the pixels, so cached scores serve without the
images; recompute after replacing images under the same names). Requirement on scorers: a
string attribute ``id`` (else ``name``) that changes whenever the weights or the preprocessing
change; a scorer without one cannot be cached.
Files are written to a temporary name and renamed, so an interrupted run leaves no broken entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from textnorm._core import LayoutError, ParameterError
from textnorm.eval._files import read_json
from textnorm.eval.benchmark import Benchmark

__all__ = ["RawScores", "ScoreCache", "SetScorer", "compute_raw_scores", "scorer_id"]

_VERSION = 1


class SetScorer(Protocol):
    """What the harness needs from a reward model (the ``textnorm.scorers`` protocol)."""

    def score_sets(self, images: Sequence[Any], prompt_lists: Sequence[Sequence[str]]) -> tuple[Any, Any]:
        """Logits of image b against each prompt of ``prompt_lists[b]``, as CSR (values, offsets)."""
        ...


def scorer_id(scorer: object) -> str:
    """The cache identity of a scorer: its ``id`` attribute, else its ``name``."""
    sid = getattr(scorer, "id", None) or getattr(scorer, "name", None)
    if not isinstance(sid, str) or not sid:
        raise ParameterError(
            f"scorer: expected a non-empty string attribute 'id' (or 'name') naming the model and its "
            f"weights, got {type(scorer).__name__} without one"
        )
    return sid


@dataclass
class RawScores:
    """Raw logits of a benchmark's images: image i has segment values[offsets[i]:offsets[i+1]] =
    logits against [prompt, *contrast] (target first); prompt p owns images
    image_offsets[p]:image_offsets[p+1]."""

    prompts: list[str]
    values: NDArray[np.float64]
    offsets: NDArray[np.int64]
    image_offsets: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.image_offsets.shape != (len(self.prompts) + 1,) or self.offsets.size != self.image_offsets[-1] + 1:
            raise LayoutError(
                f"image_offsets: expected {len(self.prompts) + 1} entries ending at {self.offsets.size - 1}, "
                f"got shape {self.image_offsets.shape}"
            )
        if self.offsets[-1] != self.values.size or np.any(np.diff(self.offsets) < 1):
            raise LayoutError(f"offsets: expected non-empty segments ending at {self.values.size}")
        self._index = {p: i for i, p in enumerate(self.prompts)}

    def _span(self, prompt: str) -> tuple[int, int]:
        try:
            i = self._index[prompt]
        except KeyError:
            raise ParameterError(f"prompt: expected a scored prompt of this cache, got {prompt!r}") from None
        return int(self.image_offsets[i]), int(self.image_offsets[i + 1])

    def segments(self, prompt: str) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """(values, offsets) of the prompt's images, offsets starting at 0."""
        a, b = self._span(prompt)
        off = self.offsets[a : b + 1]
        return self.values[off[0] : off[-1]], off - off[0]

    def raw(self, prompt: str) -> NDArray[np.float64]:
        """The raw reward of each image of ``prompt``: its logit against the target prompt."""
        a, b = self._span(prompt)
        return self.values[self.offsets[a:b]]


def _load_pil(paths: Sequence[Path]) -> list[Any]:
    from PIL import Image

    out = []
    for p in paths:
        try:
            with Image.open(p) as im:
                out.append(im.convert("RGB"))
        except FileNotFoundError:
            raise ParameterError(f"images_dir: the image {p} does not exist") from None
        except (OSError, ValueError, Image.DecompressionBombError) as exc:  # corrupt, truncated, huge
            raise ParameterError(f"images_dir: {p} is not a readable image ({exc})") from None
    return out


def compute_raw_scores(
    scorer: SetScorer,
    bench: Benchmark,
    *,
    prompts: Sequence[str] | None = None,
    batch_size: int = 64,
    load_images: Callable[[Benchmark, str], Sequence[Any]] | None = None,
    progress: bool = True,
) -> RawScores:
    """Score every image of ``prompts`` (default: the scored prompts) against its prompt list.

    Args:
        scorer: any object with ``score_sets(images, prompt_lists) -> (values, offsets)``.
        bench: the benchmark.
        prompts: which prompts (default ``bench.scored_prompts``).
        batch_size: images per ``score_sets`` call.
        load_images: ``(bench, prompt) -> images``: a list (e.g. of PIL images) or one batch
            array/tensor (B, ...); default opens ``bench.images(prompt)`` as RGB PIL images.
        progress: show a tqdm progress bar over prompts.
    """
    if batch_size < 1:
        raise ParameterError(f"batch_size: expected >= 1, got {batch_size!r}")
    prompts = list(bench.scored_prompts if prompts is None else prompts)
    loader = load_images or (lambda b, p: _load_pil(b.images(p)))
    values: list[NDArray[np.float64]] = []
    lengths: list[NDArray[np.int64]] = []
    counts = [0]
    bar: Any = prompts
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(prompts, desc=f"{scorer_id(scorer)} {bench.name}/{bench.category}", unit="prompt")
    for p in bar:
        plist = bench.prompt_list(p)
        loaded = loader(bench, p)
        # arrays and tensors stay batches (sliced below); anything else becomes a list
        images = loaded if hasattr(loaded, "shape") else list(loaded)
        for s in range(0, len(images), batch_size):
            chunk = images[s : s + batch_size]
            v, o = scorer.score_sets(chunk, [plist] * len(chunk))
            v = np.asarray(_to_numpy(v), dtype=np.float64).reshape(-1)
            o = np.asarray(_to_numpy(o), dtype=np.int64).reshape(-1)
            if o.size != len(chunk) + 1 or np.any(np.diff(o) != len(plist)) or o[-1] - o[0] != v.size:
                raise LayoutError(
                    f"scorer: score_sets returned offsets {o[:4].tolist()}... for {len(chunk)} images with "
                    f"{len(plist)} prompts each; expected {len(chunk) + 1} offsets in steps of {len(plist)}"
                )
            values.append(v[o[0] : o[-1]])
            lengths.append(np.diff(o))
        counts.append(counts[-1] + len(images))
    vals = np.concatenate(values) if values else np.zeros(0)
    lens = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    return RawScores(prompts, vals, np.r_[0, np.cumsum(lens)].astype(np.int64), np.array(counts, dtype=np.int64))


def _to_numpy(x: Any) -> Any:
    # Torch tensors (possibly on a GPU, possibly requiring grad) without importing torch here.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().double().numpy()
    return x


class ScoreCache:
    """A folder of raw scores keyed by scorer id and benchmark fingerprint."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _index_path(self) -> Path:
        return self.directory / "index.json"

    def _index(self) -> dict[str, Any]:
        path = self._index_path()
        if not path.is_file():
            return {"version": _VERSION, "entries": {}}
        data = read_json(path, name="cache")
        if not isinstance(data, dict):
            raise LayoutError(f"cache: {path} is not a score-cache index; remove it or use another cache folder")
        if data.get("version") != _VERSION:
            raise LayoutError(f"cache: {path} has version {data.get('version')!r}, expected {_VERSION}")
        if not isinstance(data.get("entries"), dict):
            raise LayoutError(f"cache: {path} is not a score-cache index; remove it or use another cache folder")
        return dict(data)

    @staticmethod
    def key(sid: str, bench: Benchmark, prompts: Sequence[str]) -> str:
        fingerprint = bench.subset(list(prompts)).fingerprint()
        return hashlib.sha256(json.dumps([sid, bench.name, bench.category, fingerprint]).encode()).hexdigest()

    def get(self, sid: str, bench: Benchmark, prompts: Sequence[str] | None = None) -> RawScores | None:
        """Cached raw scores, or None when absent."""
        prompts = list(bench.scored_prompts if prompts is None else prompts)
        entry = self._index()["entries"].get(self.key(sid, bench, prompts))
        if entry is None:
            return None
        path = self.directory / str(entry.get("file")) if isinstance(entry, dict) else self.directory
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return RawScores([str(p) for p in z["prompts"]], z["values"], z["offsets"], z["image_offsets"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise LayoutError(
                f"cache: {path} is damaged ({type(exc).__name__}: {exc}); recompute it with --refresh-cache"
            ) from None

    def put(self, sid: str, bench: Benchmark, raw: RawScores) -> Path:
        """Store raw scores atomically; returns the data file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        key = self.key(sid, bench, raw.prompts)
        file = self.directory / f"{key[:16]}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, values=raw.values, offsets=raw.offsets, image_offsets=raw.image_offsets,
                     prompts=np.array(raw.prompts, dtype=str))
        os.replace(tmp, file)
        index = self._index()
        index["entries"][key] = {
            "scorer": sid, "benchmark": bench.name, "category": bench.category, "file": file.name,
            "data": bench.subset(raw.prompts).fingerprint(), "n_prompts": len(raw.prompts),
            "n_images": int(raw.image_offsets[-1]),
        }
        self._write_index(index)
        return file

    def alias(self, spec: str) -> str | None:
        """The scorer id recorded for a command-line scorer spec, so a cached run need not load
        the model to learn its id."""
        value = self._index().get("aliases", {}).get(spec)
        return str(value) if value is not None else None

    def set_alias(self, spec: str, sid: str) -> None:
        """Record ``spec -> sid`` (see :meth:`alias`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        index = self._index()
        index.setdefault("aliases", {})[spec] = sid
        self._write_index(index)

    def _write_index(self, index: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(index, fh, indent=1)
        os.replace(tmp, self._index_path())

    def get_or_compute(self, scorer: SetScorer, bench: Benchmark, **kwargs: Any) -> RawScores:
        """Cached scores of ``scorer`` on ``bench``, computing and storing them when absent.
        Keyword arguments go to :func:`compute_raw_scores`."""
        sid = scorer_id(scorer)
        prompts = kwargs.pop("prompts", None)
        prompts = list(bench.scored_prompts if prompts is None else prompts)
        hit = self.get(sid, bench, prompts)
        if hit is not None:
            return hit
        raw = compute_raw_scores(scorer, bench, prompts=prompts, **kwargs)
        self.put(sid, bench, raw)
        return raw
