"""The protocol every reward model follows, and the text-embedding cache behind it.

A scorer turns images and prompts into a score matrix. TextNorm needs each image scored
against its target prompt and K contrastive prompts; with a dual encoder that should cost one
image encoding plus K+1 cached text embeddings, not K+1 forward passes. `Scorer` implements
the protocol once on top of four model-specific hooks:

- ``_encode_text_batch(texts)``: features of distinct texts (cached here, per exact string);
- ``_encode_pixels(pixels)``: features of preprocessed images;
- ``_similarity(image_features, text_features)``: every image against every text;
- ``_paired(image_features, text_features)``: row i against row i.

Cross-encoders fit the same shape: their "text features" are token ids and ``_paired`` runs
the joint model, so each image is still encoded once and reused across its prompts.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from textnorm._core import LayoutError, ParameterError, TextnormError
from textnorm.scorers.images import ImagePreprocess, Images, prepare_images

__all__ = ["CacheInfo", "ModelLoadError", "Scorer", "TextCache", "unique_id"]


class ModelLoadError(TextnormError):
    """A reward model's weights, tokenizer or package could not be loaded."""


class CacheInfo(NamedTuple):
    """Counters of a scorer's text cache: lookups of distinct strings per call."""

    hits: int
    misses: int
    size: int


def unique_id(prefix: str) -> str:
    """An id for a model that has no stable name: unique, so score caches never mix models."""
    return f"{prefix}:unnamed-{uuid.uuid4().hex[:12]}"


class TextCache:
    """Bounded LRU map from the exact prompt string to its features (kept on the model's device).

    Args:
        capacity: most entries kept; 0 disables caching (duplicates within one call are
            still encoded once).
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ParameterError(f"cache_size: expected an int >= 0, got {capacity!r}")
        self.capacity = capacity
        self._store: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> torch.Tensor | None:
        value = self._store.get(text)
        if value is None:
            self.misses += 1
            return None
        self._store.move_to_end(text)
        self.hits += 1
        return value

    def put(self, text: str, value: torch.Tensor) -> None:
        if self.capacity == 0:
            return
        # clone: a row view would keep its whole batch alive after the others are evicted
        self._store[text] = value.clone()
        self._store.move_to_end(text)
        while len(self._store) > self.capacity:
            self._store.popitem(last=False)

    def clear(self) -> None:
        self._store.clear()
        self.hits = 0
        self.misses = 0

    def info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, len(self._store))


def _check_texts(texts: Any, name: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ParameterError(f"{name}: expected a list of strings, got {type(texts).__name__}")
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise ParameterError(f"{name}: expected strings only, got {type(bad[0]).__name__}")
    return list(texts)


class Scorer:
    """Base class of every reward model wrapper (see the module docstring for the hooks).

    Args:
        id: stable name of model and weights (for score caches and logs).
        preprocess: how images are resized, cropped and normalised for this model.
        device: the model's device.
        dtype: the model's compute dtype; images are cast to it.
        max_batch_size: most images (or image-text pairs for cross-encoders) per forward pass.
        cache_size: entries of the text-feature LRU cache (0 turns caching off).
    """

    #: True for models that score an image without a prompt (they refuse TextNorm).
    prompt_free: bool = False
    #: True when `_paired` runs a joint model (chunked by max_batch_size); dual encoders'
    #: `_paired` is a row-wise dot product, done in one go.
    cross_encoder: bool = False

    def __init__(
        self,
        *,
        id: str,
        preprocess: ImagePreprocess,
        device: torch.device,
        dtype: torch.dtype,
        max_batch_size: int = 64,
        cache_size: int = 4096,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ParameterError(f"max_batch_size: expected an int >= 1, got {max_batch_size!r}")
        self.id = id
        self.preprocess = preprocess
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_batch_size = max_batch_size
        self._cache = TextCache(cache_size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, device={self.device}, dtype={self.dtype})"

    # ---- hooks -------------------------------------------------------------------------
    def _encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _similarity(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _paired(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- protocol ----------------------------------------------------------------------
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Features of `texts` (one row per text, in order), through the LRU cache.

        Each distinct string is looked up once per call; misses are encoded together in
        batches of at most `max_batch_size`, without gradients (reward models are frozen).
        """
        return self._encode_checked(_check_texts(texts, "texts"))

    def _encode_checked(self, texts: list[str]) -> torch.Tensor:
        """`encode_text` of texts already checked to be a list of str."""
        distinct = list(dict.fromkeys(texts))
        if not distinct:
            raise LayoutError("texts: expected at least one text, got an empty list")
        found: dict[str, torch.Tensor] = {}
        missing: list[str] = []
        for text in distinct:
            hit = self._cache.get(text)
            if hit is None:
                missing.append(text)
            else:
                found[text] = hit
        with torch.no_grad():
            for start in range(0, len(missing), self.max_batch_size):
                chunk = missing[start : start + self.max_batch_size]
                features = self._encode_text_batch(chunk)
                for text, row in zip(chunk, features, strict=True):
                    found[text] = row
                    self._cache.put(text, row)
        table = torch.stack([found[text] for text in distinct])
        if len(distinct) == len(texts):
            return table
        slot = {text: i for i, text in enumerate(distinct)}
        index = torch.tensor([slot[text] for text in texts], device=table.device)
        return table.index_select(0, index)

    def encode_images(self, images: Images) -> torch.Tensor:
        """Features of a batch of images, in chunks of `max_batch_size`.

        Differentiable with respect to `images` when they require grad.
        """
        return self._encode_prepared(self._prepare(images))

    def _prepare(self, images: Images) -> torch.Tensor:
        return prepare_images(images, self.preprocess, device=self.device, dtype=self.dtype)

    def _encode_prepared(self, pixels: torch.Tensor) -> torch.Tensor:
        grad = torch.is_grad_enabled() and pixels.requires_grad
        with torch.set_grad_enabled(grad):
            parts = [
                self._encode_pixels(pixels[start : start + self.max_batch_size])
                for start in range(0, pixels.shape[0], self.max_batch_size)
            ]
        return torch.cat(parts)

    def score(self, images: Images, texts: Sequence[str]) -> torch.Tensor:
        """Scores of every image against every text: float32, shape (n_images, n_texts)."""
        image_features = self.encode_images(images)
        text_features = self.encode_text(texts)
        return self._similarity(image_features, text_features).float()

    def score_sets(
        self, images: Images, prompt_lists: Sequence[Sequence[str]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image i against the prompts of `prompt_lists[i]` (target first for TextNorm).

        Each image is encoded once; texts go through the cache.

        Returns:
            ``(values, offsets)``: float32 scores of all pairs concatenated (CSR layout) and
            int64 offsets of length B+1, both on the model's device.
        """
        if isinstance(prompt_lists, str) or not isinstance(prompt_lists, Sequence):
            raise ParameterError(
                f"prompt_lists: expected a list of prompt lists, got {type(prompt_lists).__name__}"
            )
        lists = [_check_texts(p, f"prompt_lists[{i}]") for i, p in enumerate(prompt_lists)]
        for i, prompts in enumerate(lists):
            if not prompts:
                raise LayoutError(f"prompt_lists[{i}]: expected at least one prompt, got none")
        sizes = torch.tensor([len(p) for p in lists], dtype=torch.int64)
        flat = [text for prompts in lists for text in prompts]
        owner = torch.repeat_interleave(torch.arange(len(lists)), sizes)
        values = self._score_flat(images, flat, owner, len(lists), what="prompt_lists: expected one list")
        offsets = torch.zeros(len(lists) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(sizes, 0)
        return values, offsets.to(self.device)

    def _score_flat(
        self, images: Images, flat: list[str], owner: torch.Tensor, n_images: int, *, what: str
    ) -> torch.Tensor:
        """Image ``owner[j]`` against ``flat[j]``: float32 scores on the model's device.

        The work behind `score_sets`, for callers that checked the texts already (the rewards):
        ``flat`` is a list of str, ``owner`` (len(flat),) int64 image indices (any device) and
        ``n_images`` the number of images expected; `what` starts the error on a count
        mismatch ("prompts: expected one prompt").
        """
        pixels = self._prepare(images)
        if pixels.shape[0] != n_images:
            raise LayoutError(f"{what} per image ({pixels.shape[0]}), got {n_images}")
        image_features = self._encode_prepared(pixels)
        text_features = self._encode_checked(flat)
        owner = owner.to(self.device)
        step = self.max_batch_size if self.cross_encoder else len(flat)
        values = []
        for start in range(0, len(flat), step):
            rows = owner[start : start + step]
            values.append(
                self._paired(image_features.index_select(0, rows), text_features[start : start + step])
            )
        return torch.cat(values).float()

    def score_pairs(self, images: Images, texts: Sequence[str]) -> torch.Tensor:
        """Image i against text i: float32, shape (B,). The raw reward."""
        texts = _check_texts(texts, "texts")
        owner = torch.arange(len(texts))
        return self._score_flat(images, texts, owner, len(texts), what="texts: expected one text")

    def _all_pairs(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """`_similarity` for cross-encoders: `_paired` over every (image, text) pair in chunks."""
        n_images, n_texts = image_features.shape[0], text_features.shape[0]
        rows = torch.arange(n_images, device=image_features.device).repeat_interleave(n_texts)
        cols = torch.arange(n_texts, device=image_features.device).repeat(n_images)
        out = [
            self._paired(
                image_features.index_select(0, rows[s : s + self.max_batch_size]),
                text_features.index_select(0, cols[s : s + self.max_batch_size]),
            )
            for s in range(0, rows.numel(), self.max_batch_size)
        ]
        return torch.cat(out).view(n_images, n_texts)

    def cache_info(self) -> CacheInfo:
        """``(hits, misses, size)`` of the text cache, counting distinct strings per call."""
        return self._cache.info()

    def clear_cache(self) -> None:
        """Drop cached text features (needed only if the model's weights change)."""
        self._cache.clear()


def freeze(model: Any) -> Any:
    """Eval mode and no parameter gradients: reward models are frozen in fine-tuning."""
    model.eval()
    model.requires_grad_(False)
    return model


def model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of a model's first floating-point parameter."""
    for param in model.parameters():
        if param.is_floating_point():
            return param.device, param.dtype
    return torch.device("cpu"), torch.float32
