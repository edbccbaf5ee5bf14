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

MODES = ("best-of-n", "sft", "ddpo", "draft")


@dataclass
class ModelConfig:
    """The generator: a diffusers Stable Diffusion pipeline (hub id or local folder) or ``tiny``."""

    path: str = "tiny"  # hub id, local pipeline folder, or "tiny" (random-weight test pipeline)
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
    """DDIM sampling used by every mode."""

    num_steps: int = 50
    guidance_scale: float = 5.0
    eta: float = 1.0


@dataclass
class PromptConfig:
    """Where prompts come from; evaluation prompts are held out from training prompts."""

    source: str = "file"  # file | tia2 | callable | list
    path: str | None = None  # prompt file (txt / json / jsonl) or TIA2 root folder
    tia2_sets: list[str] = field(default_factory=lambda: ["counting", "composition", "comprehensive"])
    target: str | None = None  # "module:attr" or "file.py:attr" for source = callable
    prompts: list[str] = field(default_factory=list)  # inline prompts for source = list
    eval_path: str | None = None  # explicit evaluation prompt file
    eval_prompts: list[str] = field(default_factory=list)  # inline evaluation prompts (in-process callers)
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
class DDPOConfig:
    """DDPO: PPO-clip over DDIM steps. Batch sizes are per process."""

    sample_batch_size: int = 8
    num_batches_per_epoch: int = 2
    train_batch_size: int = 4
    gradient_accumulation_steps: int = 1  # in train batches; timesteps always accumulate
    num_inner_epochs: int = 1
    clip_range: float = 1e-4
    adv_clip_max: float = 5.0
    timestep_fraction: float = 1.0
    kl_coef: float = 0.0  # DPOK-style KL to the frozen base model; 0 = off (the paper)
    per_prompt_stat_tracking: bool = True
    stat_buffer_size: int = 32
    stat_min_count: int = 16
    async_reward: bool = True  # score batch i while batch i+1 is sampled


@dataclass
class SFTConfig:
    """The paper's reward-weighted SFT on the top fraction of base-model samples."""

    samples_per_prompt: int = 8
    sample_batch_size: int = 8
    top_fraction: float = 0.1
    selection: str = "global"  # global | per_prompt
    beta: float = 0.5  # weight of ||eps_theta - eps_ref||^2 to the frozen base model
    train_batch_size: int = 4
    data: str | None = None  # a best-of-n run folder (its samples.safetensors) instead of sampling


@dataclass
class BestOfNConfig:
    """n samples per prompt, the best kept."""

    n: int = 8
    sample_batch_size: int = 8
    save_all_images: bool = True


@dataclass
class DraftConfig:
    """DRaFT-K: backpropagate a differentiable reward through the last K sampling steps."""

    k: int = 1
    batch_size: int = 2
    eta: float = 0.0


@dataclass
class RunConfig:
    """Steps, checkpoints, logging and evaluation."""

    output_dir: str = "runs/train"
    steps: int = 10  # DDPO epochs / SFT and DRaFT optimizer steps
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    eval_every: int = 5
    eval_images_per_prompt: int = 2
    eval_seed: int = 1234
    image_every: int = 5
    mixed_precision: str = "no"  # no | fp16 | bf16
    tensorboard: bool = True
    progress_bar: bool = True


@dataclass
class TrainConfig:
    """One training run."""

    mode: str = "ddpo"
    seed: int = 0
    resume: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    reward: RewardSpec = field(default_factory=RewardSpec)
    eval_reward: RewardSpec = field(default_factory=lambda: RewardSpec(kind="none"))
    optim: OptimConfig = field(default_factory=OptimConfig)
    ddpo: DDPOConfig = field(default_factory=DDPOConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    best_of_n: BestOfNConfig = field(default_factory=BestOfNConfig)
    draft: DraftConfig = field(default_factory=DraftConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> TrainConfig:
        """Check every value; raise ParameterError naming the first bad option. Returns self."""
        _choice("mode", self.mode, MODES)
        _choice("prompts.source", self.prompts.source, ("file", "tia2", "callable", "list"))
        _choice("reward.kind", self.reward.kind, ("textnorm", "raw", "callable"))
        _choice("eval_reward.kind", self.eval_reward.kind, ("textnorm", "raw", "callable", "none"))
        _choice("sft.selection", self.sft.selection, ("global", "per_prompt"))
        _choice("run.mixed_precision", self.run.mixed_precision, ("no", "fp16", "bf16"))
        for name in (
            "model.lora_rank", "sampling.num_steps", "ddpo.sample_batch_size",
            "ddpo.num_batches_per_epoch", "ddpo.train_batch_size",
            "ddpo.gradient_accumulation_steps", "ddpo.num_inner_epochs", "ddpo.stat_buffer_size",
            "sft.samples_per_prompt", "sft.sample_batch_size", "sft.train_batch_size",
            "best_of_n.n", "best_of_n.sample_batch_size", "draft.k", "draft.batch_size",
            "run.checkpoint_every", "run.keep_checkpoints", "run.eval_every",
            "run.eval_images_per_prompt", "run.image_every", "prompts.max_eval_prompts",
        ):
            _positive(name, self.get(name))
        _positive("run.steps", self.run.steps, allow_zero=True)
        _positive("ddpo.stat_min_count", self.ddpo.stat_min_count, allow_zero=True)
        _positive("optim.warmup_steps", self.optim.warmup_steps, allow_zero=True)
        for name in ("model.lora_alpha", "optim.learning_rate", "optim.eps", "ddpo.clip_range",
                     "ddpo.adv_clip_max", "optim.max_grad_norm"):
            _finite(name, self.get(name), low=0.0, low_open=True)
        for name in ("sampling.guidance_scale", "ddpo.kl_coef", "sft.beta", "optim.weight_decay"):
            _finite(name, self.get(name), low=0.0)
        for name in ("optim.beta1", "optim.beta2"):
            _finite(name, self.get(name), low=0.0, high=1.0, high_open=True)
        _finite("ddpo.timestep_fraction", self.ddpo.timestep_fraction, low=0.0, low_open=True, high=1.0)
        _finite("sft.top_fraction", self.sft.top_fraction, low=0.0, low_open=True, high=1.0)
        _finite("prompts.eval_fraction", self.prompts.eval_fraction, low=0.0, high=1.0, high_open=True)
        _finite("sampling.eta", self.sampling.eta, low=0.0, high=1.0)
        _finite("draft.eta", self.draft.eta, low=0.0, high=1.0)
        if self.mode == "ddpo" and self.sampling.eta == 0.0:
            raise ParameterError(
                "sampling.eta: DDPO needs a stochastic sampler, expected eta in (0, 1] (the paper "
                "uses 1), received 0.0"
            )
        if self.draft.k > self.sampling.num_steps:
            raise ParameterError(
                f"draft.k: expected at most sampling.num_steps ({self.sampling.num_steps}), "
                f"received {self.draft.k}"
            )
        return self

    def get(self, dotted: str) -> Any:
        """The value of ``section.option`` (or a top-level ``option``)."""
        obj: Any = self
        for part in dotted.split("."):
            obj = getattr(obj, part)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML-serialisable)."""
        return dataclasses.asdict(self)


def _choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ParameterError(f"{name}: expected one of {list(allowed)}, received {value!r}")


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ParameterError(f"{name}: expected an integer >= {low}, received {value!r}")


def _finite(name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> None:
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


def _apply(obj: Any, data: Mapping[str, Any], prefix: str = "") -> None:
    hints = _field_types(type(obj))
    for key, value in data.items():
        key_norm = key.replace("-", "_")
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
        for name, tp in _field_types(type(obj)).items():
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
