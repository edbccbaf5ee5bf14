"""The trainer contract: one small protocol every algorithm implements, and one registry of them.

An algorithm is one module that declares three things side by side:

- its options, a dataclass whose fields have defaults (it becomes the config section named
  after the mode, e.g. ``[ddpo]``; a ``validate(cfg)`` method, when present, checks them);
- its trainer, a class implementing :class:`Trainer`, built from the run's
  :class:`textnorm.train._common.TrainContext`;
- one call to :func:`register`.

The runner knows nothing else about it: it calls :meth:`Trainer.step` once per step and saves
:meth:`Trainer.state` with every checkpoint. :func:`mode_names` is the one list of modes (the
config, the CLI and the demo read it). This module imports neither torch nor the algorithms;
:func:`algorithms` imports the built-in ones on first use (they import torch only when they run).

Example, a whole new algorithm in one file::

    @dataclass
    class NoisyOptions:
        scale: float = 0.1

    class NoisyTrainer(TrainerBase):
        def step(self, step):
            ...  # sample, score, update through self.ctx
            return {"loss": 0.0}

    register(Algorithm(name="noisy", options=NoisyOptions, trainer=NoisyTrainer,
                       summary="a toy"))
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from textnorm._core import ParameterError

if TYPE_CHECKING:
    from textnorm.train._common import TrainContext

# The modules of the built-in algorithms, in the order the CLI lists their modes.
BUILTIN = (
    "textnorm.train.best_of_n",
    "textnorm.train.sft",
    "textnorm.train.ddpo",
    "textnorm.train.grpo",
    "textnorm.train.draft",
)


@runtime_checkable
class Trainer(Protocol):
    """What the runner calls on an algorithm's trainer."""

    def step(self, step: int) -> dict[str, float]:
        """Run step ``step`` (0-based; an epoch or one optimizer step, as the algorithm defines);
        returns the metrics to log for it."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state saved with each checkpoint (e.g. DDPO's stat tracker)."""
        ...

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state` when a run resumes (an empty mapping on a fresh run)."""
        ...

    def close(self) -> None:
        """Release workers and files; called once at the end of the run, even after an error."""
        ...

    def outputs(self) -> dict[str, Any]:
        """What the run hands back besides weights (best-of-n: ``{"samples": records}``)."""
        ...


class TrainerBase:
    """A :class:`Trainer` with no state and no outputs; subclasses write :meth:`step`.

    Attributes:
        ctx: the run's context.
    """

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx

    def step(self, step: int) -> dict[str, float]:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: Mapping[str, Any]) -> None:
        del state

    def close(self) -> None:
        pass

    def outputs(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Algorithm:
    """One registered training mode.

    Attributes:
        name: the mode (``--mode NAME``).
        options: a dataclass of the algorithm's options; every field needs a default.
        trainer: builds the trainer from the run's context (usually the trainer class).
        summary: one line for ``textnorm train --help``.
        updates_weights: False for inference-time methods (best-of-n): the run is one pass of
            :meth:`Trainer.step` without checkpoints, evaluation or exported weights.
        section: the config section of the options; default: ``name`` with ``-`` as ``_``.
    """

    name: str
    options: type
    trainer: Callable[[TrainContext], Trainer]
    summary: str = ""
    updates_weights: bool = True
    section: str = field(default="")

    def __post_init__(self) -> None:
        if not self.section:
            object.__setattr__(self, "section", self.name.replace("-", "_"))
        if not (dataclasses.is_dataclass(self.options) and isinstance(self.options, type)):
            raise ParameterError(f"options: expected a dataclass type for algorithm {self.name!r}, "
                                 f"received {self.options!r}")
        try:
            self.options()
        except TypeError as err:
            raise ParameterError(f"options: expected defaults for every option of algorithm "
                                 f"{self.name!r}: {err}") from err


_REGISTRY: dict[str, Algorithm] = {}
_LOADED = False


def register(algorithm: Algorithm, *, replace: bool = False) -> Algorithm:
    """Add ``algorithm`` to the registry (its mode becomes available to config, CLI and runner).

    Args:
        algorithm: the algorithm.
        replace: allow replacing an algorithm of the same name (otherwise an error).

    Returns:
        ``algorithm``, so a module can keep it as a constant.
    """
    old = _REGISTRY.get(algorithm.name)
    if old is not None and old is not algorithm and not replace:
        raise ParameterError(f"mode: expected a new algorithm name, received {algorithm.name!r}, "
                             "which is registered already (pass replace=True to replace it)")
    sections = {a.section: a.name for a in _REGISTRY.values() if a.name != algorithm.name}
    if algorithm.section in sections or algorithm.section in _CORE_SECTIONS:
        raise ParameterError(f"section: expected a config section of its own for algorithm "
                             f"{algorithm.name!r}, received {algorithm.section!r}, already used")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


# Sections of TrainConfig that are not algorithms (kept in sync by a test).
_CORE_SECTIONS = frozenset({"model", "sampling", "prompts", "reward", "eval_reward", "optim", "run",
                            "mode", "seed", "resume", "algorithms"})


def algorithms() -> dict[str, Algorithm]:
    """Every registered algorithm by mode name: the built-in ones first, in :data:`BUILTIN`'s
    order (whatever order they were imported in), then the others in registration order."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in BUILTIN:
            importlib.import_module(module)

    def rank(item: tuple[int, Algorithm]) -> tuple[int, int]:
        module = getattr(item[1].trainer, "__module__", "")
        return (BUILTIN.index(module) if module in BUILTIN else len(BUILTIN), item[0])

    ordered = sorted(enumerate(_REGISTRY.values()), key=rank)
    return {a.name: a for _, a in ordered}


def mode_names() -> tuple[str, ...]:
    """The registered modes, in registration order (built-in ones first)."""
    return tuple(algorithms())


def get_algorithm(mode: str) -> Algorithm:
    """The algorithm registered as ``mode``; ParameterError naming the known modes otherwise."""
    found = algorithms().get(mode)
    if found is None:
        raise ParameterError(f"mode: expected one of {list(mode_names())}, received {mode!r}")
    return found
