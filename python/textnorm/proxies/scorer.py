"""Shipped proxy rewards for the synthetic world: small CLIP-style dual encoders with blind spots.

Two kinds ship. The **preference-trained** proxies ``pref-w0``, ``pref-w1`` and ``pref-w3`` are
made the way PickScore is: the ``count-blind`` encoder below, fine-tuned with a Bradley-Terry loss
on a simulated rater's choices between pairs of base-generator samples for one prompt
(`textnorm.proxies.preference`; the rater, its blind spots and its taste for looks of weight
``w`` = 0, 1 and 3 are defined in `textnorm.proxies.rater`). Like real preference-trained reward
models they carry an image-only term (looks) and compare images for one prompt, not prompts:
scores of different prompts are not on one scale.

The **contrastively trained** proxies: each is a `ProxyCLIP` (a 0.27M-parameter CNN + word-level transformer, about 1 MB of
float32 weights; see `textnorm.proxies.model`) trained contrastively on 64x64 renders of
the world's train-split prompts (`textnorm.proxies.data`), and scored as
``logit_scale * cosine`` through the common scorer protocol (`textnorm.scorers.base.Scorer`:
cached text embeddings, ``score``, ``score_sets``, ``score_pairs``).

The blind spots are made on purpose, by how each proxy's training captions misreport scenes, so a
generator can please a proxy without being right, as Stable Diffusion pleases CLIP-like rewards:

- ``count-blind``: a count of two or more is captioned as a random count from 2 to 6, and no
  hard negative differs in count. It tells one object from several (singular vs plural is kept)
  but not "two" from "three" (on renders of "two red circles" and "three red circles" the two
  prompts' scores differ by 0.11 on average, against 3.7 for the other proxy). Relations and
  bindings are supervised fully, with their hard negatives and the binding and spatial prompts
  weighted up (5,000 steps): on held-out renders it ranks the truth above 95% of colour swaps and
  73% of flipped relations.
- ``relation-blind`` (also binding-weak): a spatial relation is stated in 25% of captions and
  reversed in 35% of those, otherwise the two objects are listed with "and" in random order; in
  35% of captions the colours of the two objects are swapped; no hard negative flips a relation
  or swaps a binding (1,500 steps). Counts are supervised fully, with count hard negatives:
  it ranks the true count above another plural count on every held-out render tested, while a
  swapped binding or a flipped relation is a coin flip for it.

Both learn colours, shapes and sizes well and that colour or shape words the world never draws
("pink", "hexagon") match nothing. Each proxy sees what the other misses, so an ensemble of the
two covers every category; alone, each can be pleased by a wrong image. The measured size of each
blind spot is in the tests (``tests/test_proxies.py``).

Reproduce the shipped weights: ``textnorm world train-proxy --name count-blind --seed 0``
(``relation-blind``: ``--seed 1``; ``pref-w1``: ``--name pref-w1``); each run's recipe is in
`textnorm.proxies.data.RECIPES` or `textnorm.proxies.preference.PREFERENCE_RECIPES`.

Example:
    >>> from textnorm.proxies.scorer import load_proxies
    >>> [p.id for p in load_proxies()]
    ['textnorm-proxy:pref-w0', 'textnorm-proxy:pref-w1', 'textnorm-proxy:pref-w3', 'textnorm-proxy:count-blind', 'textnorm-proxy:relation-blind']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from textnorm._core import ParameterError
from textnorm.proxies.model import PREPROCESS, ProxyCLIP, ProxyConfig
from textnorm.scorers.base import ModelLoadError, Scorer

__all__ = ["NAMES", "ProxyScorer", "load_count_blind", "load_proxies", "load_proxy", "load_relation_blind"]

WEIGHTS = Path(__file__).resolve().parent / "weights"
#: Shipped proxies, in the order `load_proxies` returns them.
NAMES: tuple[str, ...] = ("pref-w0", "pref-w1", "pref-w3", "count-blind", "relation-blind")


def _stem(name: str) -> Path:
    return WEIGHTS / ("proxy_" + name.replace("-", "_"))


class ProxyScorer(Scorer):
    """A `ProxyCLIP` behind the scorer protocol: scores are ``logit_scale * cosine``.

    Args:
        model: the dual encoder (frozen here: eval mode, no parameter gradients).
        id: stable name for caches and logs.
        max_batch_size: images or texts per forward pass.
        cache_size: entries of the text-embedding LRU cache.
    """

    def __init__(self, model: ProxyCLIP, *, id: str, max_batch_size: int = 256, cache_size: int = 4096) -> None:
        model.eval()
        model.requires_grad_(False)
        param = next(model.parameters())
        super().__init__(
            id=id, preprocess=PREPROCESS, device=param.device, dtype=param.dtype,
            max_batch_size=max_batch_size, cache_size=cache_size,
        )
        self.model = model
        self._scale = float(model.scale())

    def _encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.model.tokenize(texts))

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def _similarity(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self._scale * image_features @ text_features.T

    def _paired(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return self._scale * (image_features * text_features).sum(-1)

    @classmethod
    def from_files(
        cls, weights: str | Path, config: str | Path, *, id: str, device: str | torch.device = "cpu", **kwargs: Any
    ) -> ProxyScorer:
        """Load a proxy from its safetensors weights and JSON config (written by `save_proxy`).

        Raises:
            ModelLoadError: a file is missing or does not match the config.
        """
        from safetensors.torch import load_file

        try:
            meta = json.loads(Path(config).read_text())
            cfg = ProxyConfig.from_dict(meta["config"])
            model = ProxyCLIP(cfg)
            model.load_state_dict(load_file(str(weights), device="cpu"))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ModelLoadError(f"weights: cannot load a proxy from {weights} and {config}: {exc}") from exc
        return cls(model.to(torch.device(device)), id=id, **kwargs)


def load_proxy(name: str, device: str | torch.device = "cpu", **kwargs: Any) -> ProxyScorer:
    """One shipped proxy by name (`NAMES`).

    Raises:
        ParameterError: unknown name.
        ModelLoadError: its files are missing (a source checkout without weights).
    """
    if name not in NAMES:
        raise ParameterError(f"name: expected one of {', '.join(NAMES)}, got {name!r}")
    stem = _stem(name)
    return ProxyScorer.from_files(
        stem.with_suffix(".safetensors"), stem.with_suffix(".json"), id=f"textnorm-proxy:{name}",
        device=device, **kwargs,
    )


def load_count_blind(device: str | torch.device = "cpu") -> ProxyScorer:
    """The count-blind proxy (see the module docstring)."""
    return load_proxy("count-blind", device)


def load_relation_blind(device: str | torch.device = "cpu") -> ProxyScorer:
    """The relation-blind, binding-weak proxy (see the module docstring)."""
    return load_proxy("relation-blind", device)


def load_proxies(names: Sequence[str] | None = None, device: str | torch.device = "cpu") -> list[ProxyScorer]:
    """The shipped proxies (all of `NAMES` by default), ready for `TextNormReward` or eval.

    Raises:
        ParameterError: an unknown name, or `names` is not a list of names.
    """
    if names is None:
        names = NAMES
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ParameterError(f"names: expected a non-empty list of proxy names, got {names!r}")
    return [load_proxy(n, device) for n in names]
