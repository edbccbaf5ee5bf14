"""``textnorm train``: fine-tune a text-to-image model against a reward.

Modes: those registered in ``textnorm.train.registry`` (built in: ``best-of-n``, ``sft``, ``ddpo``,
``grpo``, ``draft``; each mode's options are the config section of its name). Options come from a TOML/YAML file
(``--config``) and from the command line: every option is ``--section.option VALUE`` (see
``textnorm train --help``), with shortcuts for the common ones. This module is where a reward
spec becomes a reward callable (TextNormReward, RawReward or the user's own); ``textnorm.train``
itself only sees the callable.

Several GPUs or nodes: ``accelerate launch --multi_gpu --num_processes N -m textnorm train ...``.
Several CPU processes on one machine: ``torchrun --standalone --nproc_per_node N -m textnorm train
...`` (accelerate's launcher starts one process there). Batch sizes are per process; the same global
batch and seed give the same update whatever the number of processes.

Reward specs (``--reward.kind``): ``callable`` with ``--reward.target module:attr`` or
``file.py:attr`` (called with ``--reward.options`` as keyword arguments when they are given, else
used as the reward itself); ``textnorm`` with options ``{"scorers": [spec, ...], "scale": ...,
"mode": ..., "method": ..., "lam": ...}`` (contrastive prompts from the prompt source's metadata,
e.g. TIA2 or a ``{prompt: [contrastive...]}`` JSON file, else the rule-based generator); ``raw``
with ``{"scorer": spec}``. Scorer specs are those of ``textnorm eval --scorers``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

_SHORTCUTS = {
    "mode": ("--mode",),
    "model.path": ("--model",),
    "run.output_dir": ("--output-dir", "--out"),
    "run.steps": ("--steps",),
    "seed": ("--seed",),
    "prompts.path": ("--prompts",),
}


def _type_name(tp: Any) -> str:
    """``int``, ``str``, ``list``... (the non-None member of an optional type)."""
    import typing

    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args and typing.get_origin(tp) not in (list, dict):
        tp = args[0]
    return getattr(typing.get_origin(tp) or tp, "__name__", str(tp))


def add_parser(subparsers: Any) -> None:
    from textnorm.train.config import leaf_options
    from textnorm.train.registry import mode_names

    modes = mode_names()
    p = subparsers.add_parser(
        "train", help=f"fine-tune a text-to-image model ({', '.join(modes)})",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="TOML or YAML config file")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the newest complete checkpoint in the output folder")
    group = p.add_argument_group("options (section.option; command line wins over --config)")
    for dotted, tp, default in leaf_options():
        if dotted == "resume":
            continue
        flags = [f"--{dotted}", *_SHORTCUTS.get(dotted, ())]
        extra: dict[str, Any] = {"choices": modes} if dotted == "mode" else {}
        group.add_argument(*flags, dest=f"opt:{dotted}", default=None, metavar=_type_name(tp).upper()[:8],
                           help=f"default: {default!r}", **extra)
    p.set_defaults(run=run)


def build_reward(spec: Any, prompts: Any, *, option: str) -> Any:
    """A reward callable from a :class:`RewardSpec` (None for kind = 'none')."""
    from textnorm._core import ParameterError
    from textnorm.train.prompts import resolve_target

    if spec.kind == "none":
        return None
    opts = dict(spec.options)
    if spec.kind == "callable":
        if not spec.target:
            raise ParameterError(f"{option}.target: expected 'module:attr' or 'file.py:attr' for "
                                 f"kind = 'callable', received nothing")
        obj = resolve_target(spec.target, option=f"{option}.target")
        reward = obj(**opts) if opts else obj
        if not callable(reward):
            raise ParameterError(f"{option}.target: expected a reward callable, received {type(reward).__name__}")
        return reward
    import torch

    from textnorm.cli.eval import build_scorer
    from textnorm.reward import RawReward, TextNormReward

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.kind == "raw":
        scorer = opts.pop("scorer", None)
        if not isinstance(scorer, str):
            raise ParameterError(f"{option}.options.scorer: expected a scorer spec such as 'clip' or "
                                 f"'module:factory', received {scorer!r}")
        return RawReward(build_scorer(scorer, device=device))
    specs = opts.pop("scorers", None)
    if isinstance(specs, str):
        specs = [specs]
    if not specs:
        raise ParameterError(f"{option}.options.scorers: expected a list of scorer specs, received {specs!r}")
    known = {p: m["contrastive"] for p, m in zip(prompts.train + prompts.eval,
                                                  prompts.train_meta + prompts.eval_meta)
             if m.get("contrastive")}
    import textnorm

    try:  # the rule-based contrastive generator, once the package exposes it
        rules = textnorm.contrast
    except AttributeError:
        rules = None

    def contrast(prompt: str) -> Any:
        if prompt in known:
            return known[prompt]
        if rules is None:
            raise ParameterError(f"prompts: no contrastive prompts for {prompt!r}: give them in the "
                                 "prompt file ({prompt: [contrastive...]}) or use the TIA2 source")
        return rules([prompt])

    return TextNormReward([build_scorer(s, device=device) for s in specs], contrast, **opts)


def _check_run_options(cfg: Any) -> None:
    """What the command line can check before any model loads: the output folder (the seed is
    checked by the config)."""
    from pathlib import Path

    from textnorm.cli import writable_dir

    writable_dir(Path(cfg.run.output_dir), "--run.output_dir")


def _warn_on_one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file: Any = None, line: str | None = None) -> None:
    print(f"textnorm train: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("default")  # the command shows warnings, whatever filters its caller set
        warnings.showwarning = _warn_on_one_line  # restored when the block ends
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from textnorm._core import NonFiniteError, TextnormError
    from textnorm.train.config import load_config

    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt:") and v is not None}
    if args.resume:
        overrides["resume"] = True
    if "prompts.path" in overrides and "prompts.source" not in overrides:
        overrides.setdefault("prompts.source", "file")
    cfg = None
    try:
        cfg = load_config(args.config, overrides=overrides)
        _check_run_options(cfg)
        from textnorm.train.checkpoint import StopRequested
        from textnorm.train.prompts import load_prompts
        from textnorm.train.runner import train

        prompts = load_prompts(cfg.prompts, seed=cfg.seed)
        reward = build_reward(cfg.reward, prompts, option="reward")
        if reward is None:
            raise TextnormError("reward.kind: expected textnorm, raw or callable, received 'none'")
        eval_reward = build_reward(cfg.eval_reward, prompts, option="eval_reward")
        try:
            result = train(cfg, reward_fn=reward, eval_reward_fn=eval_reward)
        except StopRequested as stop:
            print(f"textnorm train: stopped ({stop}); resume with --resume", file=sys.stderr)
            return 143
    except NonFiniteError as err:
        print(f"textnorm train: error: {err} (last consistent state checkpointed)", file=sys.stderr)
        return 1
    except TextnormError as err:
        print(f"textnorm train: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # an output folder that cannot be written, a full disk
        from pathlib import Path

        name = str(err.filename) if err.filename else ""
        out = Path(cfg.run.output_dir).resolve() if cfg is not None else None
        option = "run.output_dir: " if out and name and Path(name).resolve().is_relative_to(out) else ""
        what = f"{name!r}: {err.strerror}" if name else str(err)
        print(f"textnorm train: error: {option}cannot write or read {what}", file=sys.stderr)
        return 2
    print(f"textnorm train: {cfg.mode} finished at step {result.step}; outputs in {result.output_dir}")
    for label, path in (("LoRA weights", result.lora_path), ("overoptimization plot", result.plot_path)):
        if path is not None:
            print(f"  {label}: {path}")
    return 0
