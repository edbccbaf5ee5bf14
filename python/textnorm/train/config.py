"""Typed configuration for ``textnorm train``: dataclasses, TOML/YAML loading, CLI overrides.

A run is described by one :class:`TrainConfig`. Its sections are small dataclasses; a config file
(TOML or YAML) maps onto them section by section, and every leaf option can be overridden on the
command line as ``--section.option VALUE`` (top-level options as ``--option VALUE``). Validation
raises :class:`textnorm.ParameterError` naming the option, what was expected and what was received.
This module is torch-free.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textnorm._core import ParameterError


@dataclass
class ModelConfig:
    """The generator: a diffusers Stable Diffusion pipeline (hub id or local folder) or ``tiny``."""

    path: str = "tiny"  # hub id, local pipeline folder, "module:factory", or "tiny" (test pipeline)
    revision: str | None = None
    resolution: int | None = None  # image side in pixels; None: the pipeline's default
    lora_rank: int = 4
    lora_alpha: float = 4.0
    lora_targets: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"])
    full_finetune: bool = False  # train every denoiser weight instead of LoRA adapters
    gradient_checkpointing: bool = False
    allow_tf32: bool = True
    merge_lora_for_sampling: bool = False  # faster sampling; ratio then ~1 instead of exactly 1


@dataclass
class SamplingConfig:
    """The sampler every mode uses (DDIM on latent diffusion; the model's own sampler otherwise)."""

    num_steps: int = 50
    guidance_scale: float = 5.0
    eta: float = 1.0  # the sampler's noise level: DDIM's eta; Flow-GRPO's a on flow models
    eval_num_steps: int | None = None  # steps when evaluating; None: num_steps


@dataclass
class PromptConfig:
    """Where prompts come from; evaluation prompts are held out from training prompts."""

    source: str = "file"  # file | tia2 | callable | list
    path: str | None = None  # prompt file (txt / json / jsonl) or TIA2 root folder
    tia2_sets: list[str] = field(default_factory=lambda: ["counting", "composition", "comprehensive"])
    target: str | None = None  # "module:attr" or "file.py:attr" for source = callable
    prompts: list[str] = field(default_factory=list)  # inline prompts for source = list
    eval_path: str | None = None  # explicit evaluation prompt file
    eval_fraction: float = 0.1  # held-out share when eval_path is not given
    max_eval_prompts: int = 16


@dataclass
class RewardSpec:
    """A reward callable, named as data; the CLI resolves it (train/ never imports rewards)."""

    kind: str = "callable"  # textnorm | raw | callable | none
    target: str | None = None  # "module:attr" or "file.py:attr": a reward or a factory of one
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """AdamW with linear warm-up."""

    learning_rate: float = 3e-4
    beta1: float = 0.9
    beta2: float = 0.999
    weight_decay: float = 1e-4
    eps: float = 1e-8
    max_grad_norm: float = 1.0
    warmup_steps: int = 0


@dataclass
class RunConfig:
    """Steps, checkpoints, logging and evaluation."""

    output_dir: str = "runs/train"
    steps: int = 10  # DDPO/GRPO epochs, SFT and DRaFT optimizer steps
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    eval_every: int = 5
    eval_images_per_prompt: int = 2
    eval_batch_size: int = 8
    eval_seed: int = 1234
    image_every: int = 5
    mixed_precision: str = "no"  # no | fp16 | bf16
    tensorboard: bool = True
    progress_bar: bool = True


def default_algorithm_options() -> dict[str, Any]:
    """Each registered algorithm's options with their defaults, by config section."""
    from textnorm.train.registry import algorithms

    return {a.section: a.options() for a in algorithms().values()}


@dataclass
class TrainConfig:
    """One training run: the shared sections, and one section per registered algorithm.

    The algorithms' sections live in :attr:`algorithms` (section name -> options dataclass, see
    :mod:`textnorm.train.registry`) and read as attributes: ``cfg.ddpo.clip_range``.
    """

    mode: str = "ddpo"
    seed: int = 0
    resume: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    reward: RewardSpec = field(default_factory=RewardSpec)
    eval_reward: RewardSpec = field(default_factory=lambda: RewardSpec(kind="none"))
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    algorithms: dict[str, Any] = field(default_factory=default_algorithm_options, repr=False)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("algorithms")
        if sections is not None and name in sections:
            return sections[name]
        raise AttributeError(f"{type(self).__name__!r} has no option or section {name!r}")

    def options(self, mode: str | None = None) -> Any:
        """The options of ``mode`` (default: this run's mode)."""
        from textnorm.train.registry import get_algorithm

        return self.algorithms[get_algorithm(self.mode if mode is None else mode).section]

    def validate(self) -> TrainConfig:
        """Check every value; raise ParameterError naming the first bad option. Returns self."""
        from textnorm.train.registry import algorithms

        check_choice("mode", self.mode, tuple(algorithms()))
        check_choice("prompts.source", self.prompts.source, ("file", "tia2", "callable", "list"))
        check_choice("reward.kind", self.reward.kind, ("textnorm", "raw", "callable"))
        check_choice("eval_reward.kind", self.eval_reward.kind, ("textnorm", "raw", "callable", "none"))
        check_choice("run.mixed_precision", self.run.mixed_precision, ("no", "fp16", "bf16"))
        for name in (
            "model.lora_rank", "sampling.num_steps", "run.checkpoint_every", "run.keep_checkpoints",
            "run.eval_every", "run.eval_images_per_prompt", "run.eval_batch_size", "run.image_every",
            "prompts.max_eval_prompts",
        ):
            check_int(name, self.get(name))
        if self.sampling.eval_num_steps is not None:
            check_int("sampling.eval_num_steps", self.sampling.eval_num_steps)
        check_int("seed", self.seed, low=0)
        check_int("run.steps", self.run.steps, low=0)
        check_int("optim.warmup_steps", self.optim.warmup_steps, low=0)
        for name in ("model.lora_alpha", "optim.learning_rate", "optim.eps", "optim.max_grad_norm"):
            check_number(name, self.get(name), low=0.0, low_open=True)
        for name in ("sampling.guidance_scale", "optim.weight_decay"):
            check_number(name, self.get(name), low=0.0)
        for name in ("optim.beta1", "optim.beta2"):
            check_number(name, self.get(name), low=0.0, high=1.0, high_open=True)
        check_number("prompts.eval_fraction", self.prompts.eval_fraction, low=0.0, high=1.0, high_open=True)
        check_number("sampling.eta", self.sampling.eta, low=0.0, high=1.0)
        for algo in algorithms().values():
            opts = self.algorithms.get(algo.section)
            if not isinstance(opts, algo.options):
                raise ParameterError(f"{algo.section}: expected the options of mode {algo.name!r} "
                                     f"({algo.options.__name__}), received {type(opts).__name__}")
            check = getattr(opts, "validate", None)
            if check is not None:
                check(self)
        return self

    def get(self, dotted: str) -> Any:
        """The value of ``section.option`` (or a top-level ``option``)."""
        obj: Any = self
        for part in dotted.split("."):
            obj = getattr(obj, part)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML-serialisable); algorithm sections at the top level."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name != "algorithms":
                value = getattr(self, f.name)
                out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        out.update({name: dataclasses.asdict(opts) for name, opts in self.algorithms.items()})
        return out


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    """ParameterError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ParameterError(f"{name}: expected one of {list(allowed)}, received {value!r}")


def check_int(name: str, value: Any, *, low: int = 1) -> None:
    """ParameterError unless ``value`` is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ParameterError(f"{name}: expected an integer >= {low}, received {value!r}")


def check_number(name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False,
                 high_open: bool = False) -> None:
    """ParameterError unless ``value`` is a finite number in the interval (open or closed ends)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ParameterError(f"{name}: expected a finite number in {lo}{low}, {high}{hi}, "
                             f"received {value!r}")


# ---- loading ------------------------------------------------------------------------------

def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    """Convert a loaded or command-line value to the field's declared type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(name, args[0], value)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ParameterError(f"{name}: expected a list, received {value!r}")
        return [_coerce(name, inner, v) for v in value]
    if origin is dict or tp is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ParameterError(f"{name}: expected a JSON object, received {value!r}") from err
        if not isinstance(value, Mapping):
            raise ParameterError(f"{name}: expected a table/mapping, received {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ParameterError(f"{name}: expected true or false, received {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ParameterError(f"{name}: expected an integer, received {value!r}")
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{name}: expected an integer, received {value!r}") from err
    if tp is float:
        if isinstance(value, bool):
            raise ParameterError(f"{name}: expected a number, received {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{name}: expected a number, received {value!r}") from err
    if tp is str:
        if not isinstance(value, str):
            raise ParameterError(f"{name}: expected a string, received {value!r}")
        return value
    return value


def _sections(obj: Any) -> dict[str, Any]:
    """Options of ``obj`` that are typed leaves or sections, by name (TrainConfig: plus the
    algorithms' sections, minus the ``algorithms`` holder itself)."""
    hints = _field_types(type(obj))
    if isinstance(obj, TrainConfig):
        hints.pop("algorithms")
        hints.update({name: type(opts) for name, opts in obj.algorithms.items()})
    return hints


def _apply(obj: Any, data: Mapping[str, Any], prefix: str = "") -> None:
    hints = _sections(obj)
    for key, value in data.items():
        key_norm = str(key).replace("-", "_")
        name = f"{prefix}{key_norm}"
        if key_norm not in hints:
            known = ", ".join(sorted(hints))
            raise ParameterError(f"{name}: unknown option; expected one of: {known}")
        tp = hints[key_norm]
        if _is_section(tp):
            if not isinstance(value, Mapping):
                raise ParameterError(f"{name}: expected a table of options, received {value!r}")
            _apply(getattr(obj, key_norm), value, prefix=f"{name}.")
        else:
            setattr(obj, key_norm, _coerce(name, tp, value))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``/``.json``) file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"config: expected an existing TOML or YAML file, received {str(p)!r}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml", ".json"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ParameterError(
                f"config: expected a .toml, .yaml, .yml or .json file, received {str(p)!r}")
    except ParameterError:
        raise
    except Exception as err:  # a parse error: name the file and the parser's message
        raise ParameterError(f"config: could not parse {str(p)!r}: {err}") from err
    if not isinstance(data, dict):
        raise ParameterError(f"config: expected a table at the top of {str(p)!r}, received "
                             f"{type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None) -> TrainConfig:
    """Build a validated config from a file, a dict and dotted overrides (applied in that order).

    Args:
        path: TOML or YAML file, optional.
        overrides: ``{"ddpo.clip_range": "1e-3", "mode": "sft"}``; values may be strings.
        data: nested dict applied after the file.

    Returns:
        The validated :class:`TrainConfig`.
    """
    cfg = TrainConfig()
    if path is not None:
        _apply(cfg, read_config_file(path))
    if data:
        _apply(cfg, data)
    for dotted, value in (overrides or {}).items():
        nested: dict[str, Any] = {}
        parts = dotted.replace("-", "_").split(".")
        cursor = nested
        for part in parts[:-1]:
            cursor = cursor.setdefault(part, {})
        cursor[parts[-1]] = value
        _apply(cfg, nested)
    return cfg.validate()


def leaf_options() -> list[tuple[str, Any, Any]]:
    """Every overridable option as ``(dotted name, type, default)`` (for the CLI)."""
    out: list[tuple[str, Any, Any]] = []

    def walk(obj: Any, prefix: str) -> None:
        for name, tp in _sections(obj).items():
            value = getattr(obj, name)
            if _is_section(tp):
                walk(value, f"{prefix}{name}.")
            else:
                out.append((f"{prefix}{name}", tp, value))

    walk(TrainConfig(), "")
    return out


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (readable back with :func:`load_config`)."""
    import yaml

    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
