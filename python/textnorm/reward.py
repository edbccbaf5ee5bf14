"""TextNormReward: the drop-in calibrated reward function, and RawReward, its baseline.

Both follow the convention of DDPO-style trainers, ``reward_fn(images, prompts, metadata) ->
(rewards, info)``, with one reward per image (never a mean), on the images' device; `as_plain`
adapts them to the plain ``(images, prompts) -> rewards`` convention.

For each image, TextNormReward scores the prompt list ``[prompt, *contrastive]`` with every
scorer (one image encoding per scorer, cached text embeddings), then turns each scorer's scores
into the target prompt's confidence with `textnorm.normalize.confidence`, once per scorer; an
ensemble combines those confidences as `textnorm.normalize.ensemble` does. Prompts are checked
once per call and the CSR offsets built once, on the host (the torch path copies them to the
device once). Gradients flow to the images when they require grad.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from textnorm._core import LayoutError, ParameterError
from textnorm.contrast import contrast as rule_contrast
from textnorm.normalize import confidence
from textnorm.scorers.base import Scorer
from textnorm.scorers.images import Images, batch_shape_message

__all__ = ["RawReward", "TextNormReward", "as_plain"]

Contrast = Any  # a ContrastiveSets, a {prompt: [contrastive, ...]} mapping, or a callable

_MODES = ("minmax", "temperature")
_METHODS = ("mean", "ur", "ur_std")
_ON_EMPTY = ("raise", "raw")


def _check_prompts(prompts: Any) -> list[str]:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise ParameterError(f"prompts: expected a list of strings, got {type(prompts).__name__}")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise ParameterError(f"prompts[{i}]: expected a string, got {type(prompt).__name__}")
    return list(prompts)


def _batch_size(images: Images) -> int:
    if isinstance(images, (list, tuple)):
        return len(images)
    shape = getattr(images, "shape", None)
    if shape is None or len(shape) == 0:
        raise ParameterError(
            f"images: expected a batch array, tensor or list of PIL images, got {type(images).__name__}"
        )
    if len(shape) != 4:
        raise LayoutError(batch_shape_message(tuple(int(n) for n in shape)))
    return int(shape[0])


def _out_device(images: Images) -> torch.device:
    return images.device if isinstance(images, torch.Tensor) else torch.device("cpu")


def _real(value: Any, name: str, *, positive: bool) -> float:
    """A finite real number (numpy scalars included, bools not): > 0, or >= 0."""
    expected = "a finite number > 0" if positive else "a finite number >= 0"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name}: expected {expected}, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ParameterError(f"{name}: expected {expected}, got an int too large for a float") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ParameterError(f"{name}: expected {expected}, got {value!r}")
    return number


def _hits_misses(scorers: Sequence[Scorer]) -> tuple[int, int]:
    infos = [s.cache_info() for s in scorers]
    return sum(i.hits for i in infos), sum(i.misses for i in infos)


def _hit_rate(before: tuple[int, int], after: tuple[int, int]) -> float:
    hits, misses = after[0] - before[0], after[1] - before[1]
    return hits / (hits + misses) if hits + misses else 1.0


def _is_rule_contrast(fn: Any) -> bool:
    """`textnorm.contrast` itself, or a functools.partial of it (rules, k, seed, lexicon bound)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn is rule_contrast


def _as_set(found: Any, prompt: str) -> list[str]:
    """A per-prompt callable's answer: a list of prompts, or a ContrastiveSets holding `prompt`."""
    if hasattr(found, "prompt_lists"):
        lists = [lst for lst in found.prompt_lists() if lst]
        match = [lst for lst in lists if lst[0] == prompt]
        if not match:
            targets = [lst[0] for lst in lists]
            shown = f"{targets[:3]!r}{' ...' if len(targets) > 3 else ''}"
            raise ParameterError(
                f"contrast: the callable returned a ContrastiveSets for {shown} when asked for "
                f"{prompt!r}; expected one that holds {prompt!r} as a target"
            )
        return list(match[0][1:])
    if isinstance(found, str) or not isinstance(found, Sequence):
        raise ParameterError(
            f"contrast: the callable returned {type(found).__name__} for {prompt!r}; expected a "
            "list of strings or a ContrastiveSets"
        )
    return list(found)


def _combine(confidences: list[torch.Tensor], method: str, lam: float) -> torch.Tensor:
    """The ensemble of per-scorer confidences, as `textnorm.normalize.ensemble` forms it: their
    mean, minus ``lam`` times their population variance ("ur") or standard deviation ("ur_std").
    Computed in float64 (float32 on MPS), returned in the confidences' dtype; the std's gradient
    is 0, not NaN, where the scorers agree exactly."""
    stack = torch.stack(confidences)
    work = stack.float() if stack.device.type == "mps" else stack.double()  # MPS has no float64
    mean = work.mean(dim=0)
    if method != "mean":
        var = ((work - mean) ** 2).mean(dim=0)
        if method == "ur_std":
            spread = var > 0
            var = torch.where(spread, var, torch.ones_like(var)).sqrt() * spread
        mean = mean - lam * var
    return mean.to(stack.dtype)


class TextNormReward:
    """Calibrated reward: the target prompt's confidence among its contrastive prompts.

    Args:
        scorers: one `Scorer` or a list (an ensemble over their confidences).
        contrast: contrastive prompts per target prompt: a ContrastiveSets
            (`textnorm.contrast(...)`, looked up by target prompt), a mapping
            ``{prompt: [contrastive, ...]}``, or a callable for unseen prompts (memoised per
            prompt): `textnorm.contrast` itself or a ``functools.partial`` of it (called once per
            call with that call's unseen prompts), or any ``prompt -> list[str]`` or
            ``prompt -> ContrastiveSets`` (the answer must hold that prompt as a target).
        scale: inverse temperature (the paper's grid: 0.1, 1, 3, 5, 10); any finite real > 0,
            numpy scalars included.
        mode: "minmax" (rescale each row to [0, 1] first; the default) or "temperature".
        method: ensemble over scorers: "mean", "ur" (mean minus ``lam`` times the variance)
            or "ur_std" (minus ``lam`` times the std).
        lam: the uncertainty penalty for "ur" / "ur_std", a finite real >= 0.
        on_empty: a prompt whose contrastive set is empty: "raise" (default), or "raw" to
            reward that image with the mean raw target score over scorers instead; such rows
            are flagged in ``info["fallback"]``. Raw scores are not on the confidence scale,
            so use "raw" only where such prompts are rare.

    Calling it returns ``(rewards, info)``: rewards (B,) float32 on the images' device, and
    info with per-scorer ``raw`` target scores and ``confidence`` ({scorer id: (B,)}),
    ``set_size`` (K per image), ``fallback`` (bool per image) and ``cache_hit_rate``.

    Example:
        >>> import textnorm
        >>> reward = textnorm.TextNormReward(scorer, textnorm.contrast, scale=3.0)
        >>> rewards, info = reward(images, ["two red cubes", "a cat"], None)
        >>> rewards.shape, bool(((rewards > 0) & (rewards < 1)).all())
        (torch.Size([2]), True)
    """

    def __init__(
        self, scorers: Scorer | Sequence[Scorer], contrast: Contrast, *, scale: float = 1.0,
        mode: str = "minmax", method: str = "mean", lam: float = 0.0, on_empty: str = "raise",
    ) -> None:
        if isinstance(scorers, Scorer):
            self.scorers = [scorers]
        elif isinstance(scorers, (str, bytes)) or not isinstance(scorers, Iterable):
            raise ParameterError(
                f"scorers: expected a textnorm Scorer or a list of them, got {type(scorers).__name__}"
            )
        else:
            self.scorers = list(scorers)
        if not self.scorers:
            raise ParameterError("scorers: expected at least one scorer, got none")
        for i, scorer in enumerate(self.scorers):
            if not isinstance(scorer, Scorer):
                raise ParameterError(f"scorers[{i}]: expected a textnorm Scorer, got {type(scorer).__name__}")
            if scorer.prompt_free:
                raise ParameterError(
                    f"scorers[{i}]: {type(scorer).__name__} is prompt-free: TextNorm compares an "
                    "image's scores across prompts, which a prompt-free model cannot tell apart; "
                    "use textnorm.RawReward for it"
                )
        self.scale = _real(scale, "scale", positive=True)
        choices = (("mode", mode, _MODES), ("method", method, _METHODS), ("on_empty", on_empty, _ON_EMPTY))
        for name, value, allowed in choices:
            if not isinstance(value, str) or value not in allowed:
                raise ParameterError(f"{name}: expected one of {allowed}, got {value!r}")
        self.lam = _real(lam, "lam", positive=False)
        self.mode, self.method, self.on_empty = mode, method, on_empty
        self._lookup: Callable[[Any], Any] | None = None
        self._batched = False
        self._sets: dict[str, tuple[str, ...]] = {}
        if hasattr(contrast, "prompt_lists"):
            for i, lst in enumerate(contrast.prompt_lists()):
                if not lst or not isinstance(lst[0], str):
                    raise ParameterError(f"contrast: expected [target, *contrastive] lists, got {lst!r} at {i}")
                self._sets.setdefault(lst[0], self._clean(lst[0], lst[1:]))
        elif isinstance(contrast, Mapping):
            for prompt, others in contrast.items():
                if not isinstance(prompt, str):
                    raise ParameterError(f"contrast: expected str keys (target prompts), got {type(prompt).__name__}")
                self._sets[prompt] = self._clean(prompt, others)
        elif callable(contrast):
            self._lookup = contrast
            self._batched = _is_rule_contrast(contrast)
        else:
            raise ParameterError(
                "contrast: expected a ContrastiveSets, a dict {prompt: [contrastive, ...]} or a "
                f"callable prompt -> contrastive prompts, got {type(contrast).__name__}"
            )

    @property
    def id(self) -> str:
        """Stable name of scorers and settings (for score caches)."""
        models = "+".join(s.id for s in self.scorers)
        return f"textnorm[{models}|scale={self.scale}|mode={self.mode}|method={self.method}|lam={self.lam}]"

    @staticmethod
    def _clean(prompt: str, others: Any) -> tuple[str, ...]:
        """Contrastive prompts without copies of the target and without duplicates."""
        if isinstance(others, str) or not isinstance(others, Sequence):
            raise ParameterError(
                f"contrast[{prompt!r}]: expected a list of strings, got {type(others).__name__}"
            )
        for other in others:
            if not isinstance(other, str):
                raise ParameterError(f"contrast[{prompt!r}]: expected strings, got {type(other).__name__}")
        return tuple(dict.fromkeys(o for o in others if o != prompt))

    def _resolve(self, prompts: list[str]) -> None:
        """Memoise the contrastive sets of the prompts not seen yet (prompts already checked)."""
        unseen = [p for p in dict.fromkeys(prompts) if p not in self._sets]
        if not unseen:
            return
        if self._lookup is None:
            raise ParameterError(
                f"prompts: no contrastive set for {unseen[0]!r} in contrast (it holds "
                f"{len(self._sets)} prompts); pass a callable to make sets for unseen prompts"
            )
        if not self._batched:
            for prompt in unseen:
                self._sets[prompt] = self._clean(prompt, _as_set(self._lookup(prompt), prompt))
            return
        lists = self._lookup(unseen).prompt_lists()
        if len(lists) != len(unseen):
            raise ParameterError(
                f"contrast: expected {len(unseen)} sets from textnorm.contrast, got {len(lists)}"
            )
        for prompt, lst in zip(unseen, lists):
            if not lst or lst[0] != prompt:
                raise ParameterError(f"contrast: expected the set of {prompt!r} from textnorm.contrast, got {lst[:1]!r}")
            self._sets[prompt] = self._clean(prompt, lst[1:])

    def contrastive(self, prompt: str) -> tuple[str, ...]:
        """The contrastive prompts of `prompt` (target excluded), memoised."""
        self._resolve(_check_prompts([prompt]))
        return self._sets[prompt]

    def __call__(
        self, images: Images, prompts: Sequence[str], metadata: Any = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Calibrated rewards of `images` for `prompts` (`metadata` is accepted and ignored)."""
        prompts = _check_prompts(prompts)
        n_images = _batch_size(images)
        if n_images != len(prompts):
            raise LayoutError(f"prompts: expected one prompt per image ({n_images}), got {len(prompts)}")
        self._resolve(prompts)
        sets = [self._sets[p] for p in prompts]
        empty = [not s for s in sets]
        if any(empty) and self.on_empty == "raise":
            i = empty.index(True)
            raise ParameterError(
                f"prompts[{i}]: the contrastive set of {prompts[i]!r} is empty, and TextNorm needs "
                "at least one contrastive prompt; pass on_empty='raw' to reward such images with "
                "the raw score instead"
            )
        # One CSR layout for every scorer, built once on the host: the normaliser's core path
        # reads host offsets directly, its torch path copies them to the device once.
        flat = [text for p, s in zip(prompts, sets, strict=True) for text in (p, *s)]
        sizes = torch.tensor([1 + len(s) for s in sets], dtype=torch.int64)
        owner = torch.repeat_interleave(torch.arange(n_images), sizes)
        offsets = torch.zeros(n_images + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(sizes, 0)
        device = _out_device(images)
        before = _hits_misses(self.scorers)
        what = "prompts: expected one prompt"
        values = [s._score_flat(images, flat, owner, n_images, what=what).to(device) for s in self.scorers]
        hit_rate = _hit_rate(before, _hits_misses(self.scorers))
        confidences = [confidence(v, offsets=offsets, scale=self.scale, mode=self.mode) for v in values]
        rewards = confidences[0] if len(values) == 1 else _combine(confidences, self.method, self.lam)
        starts = offsets[:-1].to(device)
        raw = [v.index_select(0, starts) for v in values]
        fallback = torch.tensor(empty, device=device)
        if any(empty):
            rewards = torch.where(fallback, torch.stack(raw).mean(0), rewards)
        info: dict[str, Any] = {
            "raw": {s.id: r.detach() for s, r in zip(self.scorers, raw, strict=True)},
            "confidence": {s.id: c.detach() for s, c in zip(self.scorers, confidences, strict=True)},
            "set_size": (sizes - 1).to(device),
            "fallback": fallback,
            "cache_hit_rate": hit_rate,
        }
        return rewards, info

    def as_plain(self) -> Callable[[Images, Sequence[str]], torch.Tensor]:
        """This reward as a plain ``(images, prompts) -> rewards`` function."""
        return as_plain(self)


class RawReward:
    """The uncalibrated baseline: each image's score against its own prompt.

    Args:
        scorer: any `Scorer` (prompt-free ones such as AestheticScorer included).

    Calling it returns ``(rewards, info)`` like `TextNormReward`: rewards (B,) float32 on the
    images' device, info with ``raw`` ({scorer id: (B,)}) and ``cache_hit_rate``.
    """

    def __init__(self, scorer: Scorer) -> None:
        if not isinstance(scorer, Scorer):
            raise ParameterError(f"scorer: expected a textnorm Scorer, got {type(scorer).__name__}")
        self.scorer = scorer

    @property
    def id(self) -> str:
        """Stable name of the scorer (for score caches)."""
        return f"raw[{self.scorer.id}]"

    def __call__(
        self, images: Images, prompts: Sequence[str], metadata: Any = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Raw rewards of `images` for `prompts` (`metadata` is accepted and ignored)."""
        prompts = _check_prompts(prompts)
        if _batch_size(images) != len(prompts):
            raise LayoutError(
                f"prompts: expected one prompt per image ({_batch_size(images)}), got {len(prompts)}"
            )
        before = _hits_misses([self.scorer])
        rewards = self.scorer.score_pairs(images, prompts).to(_out_device(images))
        info = {
            "raw": {self.scorer.id: rewards.detach()},
            "cache_hit_rate": _hit_rate(before, _hits_misses([self.scorer])),
        }
        return rewards, info

    def as_plain(self) -> Callable[[Images, Sequence[str]], torch.Tensor]:
        """This reward as a plain ``(images, prompts) -> rewards`` function."""
        return as_plain(self)


def as_plain(
    reward_fn: Callable[..., tuple[torch.Tensor, Any]],
) -> Callable[[Images, Sequence[str]], torch.Tensor]:
    """Adapt ``(images, prompts, metadata) -> (rewards, info)`` to ``(images, prompts) -> rewards``."""

    def plain(images: Images, prompts: Sequence[str]) -> torch.Tensor:
        rewards, _ = reward_fn(images, prompts, None)
        return rewards

    plain.__name__ = f"plain_{type(reward_fn).__name__}"
    plain.__doc__ = f"{type(reward_fn).__name__} returning only the rewards."
    return plain
