"""A reward of textnorm's kind in Flow-GRPO's reward convention, so a Flow-GRPO user can swap
TextNorm in without leaving their trainer.

textnorm's rewards are ``(images, prompts, metadata) -> (rewards (B,), info)`` callables
(``TextNormReward``, ``RawReward``, an ensemble, your own). Flow-GRPO builds each reward with a
factory that takes the device, and its trainer calls the combined reward as
``fn(images, prompts, metadata, only_strict=True)`` expecting ``(scores, metadata)`` where
``scores`` maps names to per-sample scores and ``scores["avg"]`` is what it trains on; it logs
the mean of every entry. :func:`flow_grpo_reward` wraps a textnorm reward that way and puts each
scorer's raw and calibrated scores in ``scores`` (``"<name>/raw/<scorer>"`` and
``"<name>/calibrated/<scorer>"``), so overoptimization shows in Flow-GRPO's own logs: the raw
score rising while the calibrated one falls.

    from textnorm.train.flow_grpo_reward import flow_grpo_reward
    reward_fn = flow_grpo_reward(build=lambda device: TextNormReward(scorers(device), contrast))(device)
    scores, _ = reward_fn(images, prompts, metadata, only_strict=True)   # scores["avg"]: (B,)

This module imports neither torch nor textnorm's scorers at import time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from textnorm._core import LayoutError, ParameterError

# Renames of textnorm's info keys in the scores dict.
_LABELS = {"confidence": "calibrated"}

logger = logging.getLogger(__name__)

FlowGRPORewardFn = Callable[..., tuple[dict[str, np.ndarray], dict[str, Any]]]


def _as_images(images: Any) -> Any:
    """(B, 3, H, W) float in [0, 1], as textnorm's rewards take them: a float tensor passes
    through; uint8 tensors, NHWC numpy arrays (uint8 or float) and PIL images are converted."""
    import torch

    if torch.is_tensor(images):
        return images.float() / 255.0 if images.dtype == torch.uint8 else images
    if isinstance(images, (list, tuple)) and images and not isinstance(images[0], np.ndarray):
        images = np.stack([np.asarray(im.convert("RGB")) for im in images])  # PIL images
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise LayoutError(f"images: expected a (B, 3, H, W) tensor or (B, H, W, 3) array, received "
                          f"shape {arr.shape}")
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).float() / scale


def _per_sample(value: Any, n: int) -> np.ndarray | None:
    """``value`` as a float (n,) array, or None when it is not one score per sample."""
    try:
        import torch

        if torch.is_tensor(value):
            value = value.detach().float().cpu().numpy()
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr.astype(np.float32) if arr.shape == (n,) else None


def flow_grpo_reward(reward: Callable[..., Any] | None = None, *,
                     build: Callable[[Any], Callable[..., Any]] | None = None, name: str = "textnorm",
                     weight: float = 1.0, log: Callable[[dict[str, float]], None] | None = None,
                     ) -> Callable[[Any], FlowGRPORewardFn]:
    """Wrap a textnorm-style reward as a Flow-GRPO reward factory.

    Args:
        reward: ``(images, prompts, metadata) -> (rewards, info)``; or give ``build`` instead.
        build: ``device -> reward``, called by the factory (for rewards holding models).
        name: the entry of the reward's scores (and the prefix of its per-scorer entries).
        weight: ``scores["avg"] = weight * scores[name]``.
        log: called after every call with the batch means of every entry (e.g. ``wandb.log``);
            the means are also logged at DEBUG level to this module's logger.

    Returns:
        ``factory(device) -> fn``; ``fn(images, prompts, metadata, only_strict=True)`` returns
        ``(scores, {})``: ``scores[name]``, ``scores["avg"]`` and per-scorer
        ``"<name>/raw/<scorer>"`` and ``"<name>/calibrated/<scorer>"`` float32 (B,) arrays, plus
        any other per-sample entry of the reward's info (``"<name>/set_size"``...).
        ``only_strict`` (used by Flow-GRPO's GenEval reward) is accepted and ignored.
    """
    if (reward is None) == (build is None):
        raise ParameterError("reward: expected exactly one of reward (a callable) or build (device -> "
                             f"callable), received {'both' if reward is not None else 'neither'}")
    if not isinstance(name, str) or not name or name == "avg":
        raise ParameterError(f"name: expected a non-empty name other than 'avg', received {name!r}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
        raise ParameterError(f"weight: expected a finite number, received {weight!r}")

    def factory(device: Any) -> FlowGRPORewardFn:
        fn = build(device) if build is not None else reward
        if not callable(fn):
            raise ParameterError(f"build: expected a reward callable, received {type(fn).__name__}")

        def call(images: Any, prompts: Sequence[str], metadata: Any = None,
                 only_strict: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
            del only_strict
            prompts = [prompts] if isinstance(prompts, str) else list(prompts)
            n = len(prompts)
            meta = [{} for _ in range(n)] if metadata is None else [dict(m or {}) for m in metadata]
            if len(meta) != n:
                raise LayoutError(f"metadata: expected one entry per prompt ({n}), received {len(meta)}")
            out = fn(_as_images(images), prompts, meta)
            if not (isinstance(out, tuple) and len(out) == 2):
                raise ParameterError(f"reward: expected the callable to return (rewards, info), "
                                     f"received {type(out).__name__}")
            rewards, info = out
            main = _per_sample(rewards, n)
            if main is None:
                raise LayoutError(f"reward: expected per-sample rewards of shape ({n},), received "
                                  f"{getattr(rewards, 'shape', type(rewards).__name__)}")
            scores = {name: main}
            for key, value in (info or {}).items():
                label = _LABELS.get(key, key)
                if isinstance(value, Mapping):
                    for scorer, sub in value.items():
                        arr = _per_sample(sub, n)
                        if arr is not None:
                            scores[f"{name}/{label}/{scorer}"] = arr
                elif (arr := _per_sample(value, n)) is not None:
                    scores[f"{name}/{label}"] = arr
            scores["avg"] = (weight * main).astype(np.float32)
            means = {k: float(v.mean()) for k, v in scores.items()}
            logger.debug("flow-grpo reward means: %s", means)
            if log is not None:
                log(means)
            return scores, {}

        return call

    return factory
