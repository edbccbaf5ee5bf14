"""``train()``: one fine-tuning run of any mode, on any :class:`T2IModel`, with any reward callable.

It builds the accelerator, the model (with LoRA), the optimizer and the prompt set, resumes from
the newest complete checkpoint when asked, runs the mode's steps with logging, evaluation on
held-out prompts and checkpoints, and finishes with the LoRA weights and the overoptimization plot.
On SIGTERM it checkpoints at the next step boundary and raises :class:`StopRequested`; on a bad
reward or loss it checkpoints the last consistent state and raises.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from textnorm._core import ParameterError, TextnormError
from textnorm.train._common import RewardFn, TrainContext, evaluate
from textnorm.train.checkpoint import (
    SignalFlag,
    StopRequested,
    check_fits,
    find_resumable,
    remove_temporaries,
    restore,
    save_checkpoint,
)
from textnorm.train.config import ModelConfig, TrainConfig, save_config
from textnorm.train.logs import RunLogger, overoptimization_plot
from textnorm.train.model import StableDiffusionModel, T2IModel
from textnorm.train.prompts import load_prompts, resolve_target
from textnorm.train.registry import Algorithm, Trainer, get_algorithm


@dataclass
class TrainResult:
    """What a run produced."""

    output_dir: Path
    step: int
    records: list[dict[str, Any]] = field(default_factory=list)
    lora_path: Path | None = None
    plot_path: Path | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)  # best-of-n records
    outputs: dict[str, Any] = field(default_factory=dict)  # the trainer's outputs()


def load_model(cfg: ModelConfig) -> T2IModel:
    """``tiny``, a ``module:factory`` returning a T2IModel, or a hub id / folder of a Stable
    Diffusion pipeline or (by its ``model_index.json``) a Stable Diffusion 3 one."""
    if cfg.path == "tiny":
        from textnorm.train.tiny import tiny_pipeline

        return StableDiffusionModel(tiny_pipeline(seed=0), resolution=cfg.resolution)
    if ":" in cfg.path and not Path(cfg.path).exists() and not cfg.path.startswith(("/", ".")):
        model = resolve_target(cfg.path, option="model.path")()
        if not isinstance(model, T2IModel):
            raise ParameterError(f"model.path: expected a factory returning a T2IModel, received "
                                 f"{type(model).__name__}")
        return model
    from textnorm.train.flow_model import FlowMatchingModel, is_flow_pipeline

    if is_flow_pipeline(cfg.path, revision=cfg.revision):
        return FlowMatchingModel.from_pretrained(cfg.path, revision=cfg.revision, resolution=cfg.resolution)
    return StableDiffusionModel.from_pretrained(cfg.path, revision=cfg.revision, resolution=cfg.resolution)


def trainable_weights(model: T2IModel) -> dict[str, torch.Tensor]:
    """Trainable denoiser weights by parameter name."""
    return {n: p.detach() for n, p in model.denoiser.named_parameters() if p.requires_grad}


def _load_weights(model: T2IModel, weights: dict[str, torch.Tensor]) -> None:
    params = dict(model.denoiser.named_parameters())
    missing = [n for n in weights if n not in params]
    if missing:
        raise ParameterError(f"resume: expected checkpoint weights of this model, received unknown "
                             f"names such as {missing[0]!r}")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value.to(params[name]))


def prepare(cfg: TrainConfig, *, reward_fn: RewardFn, model: T2IModel | None = None,
            prompt_source: Callable[[], Any] | None = None, accelerator: Any = None,
            ) -> tuple[TrainContext, int, dict[str, Any]]:
    """Build the run's context (accelerator, model with LoRA, optimizer, prompts, logger), resuming
    from the newest complete checkpoint when ``cfg.resume``; returns ``(ctx, start step, trainer state)``."""
    cfg.validate()
    from accelerate import Accelerator

    if accelerator is None:
        accelerator = Accelerator(mixed_precision=cfg.run.mixed_precision, cpu=not torch.cuda.is_available())
    if cfg.model.allow_tf32 and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    out = Path(cfg.run.output_dir)
    prompts = load_prompts(cfg.prompts, seed=cfg.seed, source=prompt_source)
    if not prompts.train:
        raise ParameterError("prompts: expected at least one training prompt after holding out "
                             "evaluation prompts, received none (lower prompts.eval_fraction)")
    if model is None:
        model = load_model(cfg.model)
    model.to(accelerator.device)  # type: ignore[attr-defined]
    use_lora = not cfg.model.full_finetune
    reference = None
    if use_lora:
        model.add_lora(rank=cfg.model.lora_rank, alpha=cfg.model.lora_alpha, targets=cfg.model.lora_targets)
    else:
        reference = copy.deepcopy(model.denoiser).requires_grad_(False).eval()
        model.denoiser.requires_grad_(True)
    if cfg.model.gradient_checkpointing and hasattr(model, "enable_gradient_checkpointing"):
        model.enable_gradient_checkpointing()
    params = [p for p in model.denoiser.parameters() if p.requires_grad]
    o = cfg.optim
    optimizer = torch.optim.AdamW(params, lr=o.learning_rate, betas=(o.beta1, o.beta2),
                                  weight_decay=o.weight_decay, eps=o.eps)
    warm = o.warmup_steps
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) if warm else 1.0)
    net, optimizer = accelerator.prepare(model.denoiser, optimizer)
    start, trainer_state, optimizer_steps = 0, {}, 0
    found = None
    if cfg.resume:
        if accelerator.is_main_process:
            remove_temporaries(out / "checkpoints")
        params = {n: p for n, p in model.denoiser.named_parameters() if p.requires_grad}
        found = find_resumable(out / "checkpoints",
                               check=lambda t, m: check_fits(t, m, params, optimizer=optimizer))
    if found is not None:
        _, tensors, meta = found
        _load_weights(model, restore(tensors, meta, optimizer=optimizer))
        start = int(meta["step"])
        extra = meta["extra"]
        lr_scheduler.load_state_dict({**extra.get("lr_scheduler", {}), "lr_lambdas": [None]})
        trainer_state = extra.get("trainer", {})
        optimizer_steps = int(extra.get("optimizer_steps", 0))
    logger = RunLogger(out, total=cfg.run.steps, initial=start, enabled=accelerator.is_main_process,
                       tensorboard=cfg.run.tensorboard, progress=cfg.run.progress_bar)
    ctx = TrainContext(cfg=cfg, model=model, accelerator=accelerator, net=net, optimizer=optimizer,
                       lr_scheduler=lr_scheduler, reward_fn=reward_fn, prompts=prompts, logger=logger,
                       reference=reference, use_lora=use_lora, optimizer_steps=optimizer_steps)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    return ctx, start, trainer_state


def train(cfg: TrainConfig, *, reward_fn: RewardFn, eval_reward_fn: RewardFn | None = None,
          model: T2IModel | None = None, prompt_source: Callable[[], Any] | None = None,
          accelerator: Any = None) -> TrainResult:
    """Run ``cfg.mode`` for ``cfg.run.steps`` steps.

    Args:
        cfg: the run's configuration (validated here).
        reward_fn: ``(images, prompts, metadata) -> (rewards (B,), info)``; images in [0, 1].
        eval_reward_fn: a second reward for the overoptimization curve (optional).
        model: a ready :class:`T2IModel`; default: loaded from ``cfg.model``.
        prompt_source: a callable returning prompts (overrides ``cfg.prompts``).
        accelerator: an ``accelerate.Accelerator``; default: one built from ``cfg``.
    """
    ctx, start, trainer_state = prepare(cfg, reward_fn=reward_fn, model=model,
                                        prompt_source=prompt_source, accelerator=accelerator)
    out = Path(cfg.run.output_dir)
    result = TrainResult(output_dir=out, step=start)
    algorithm = get_algorithm(cfg.mode)
    try:
        trainer = algorithm.trainer(ctx)
        trainer.load_state(trainer_state)
        try:
            _loop(ctx, algorithm, trainer, start, eval_reward_fn, result)
        finally:
            trainer.close()
        result.outputs = trainer.outputs()
        result.samples = list(result.outputs.get("samples", []))
        if algorithm.updates_weights:
            result.lora_path = _export(ctx, out)
            if ctx.accelerator.is_main_process:
                result.records = ctx.logger.all_records()
                result.plot_path = overoptimization_plot(result.records, out / "overoptimization.png")
        return result
    finally:
        ctx.logger.close()


def _save(ctx: TrainContext, trainer: Trainer, step: int) -> None:
    if ctx.accelerator.is_main_process:
        extra = {"trainer": trainer.state(), "optimizer_steps": ctx.optimizer_steps,
                 "lr_scheduler": {k: v for k, v in ctx.lr_scheduler.state_dict().items() if k != "lr_lambdas"},
                 "config": ctx.cfg.to_dict()}
        save_checkpoint(Path(ctx.cfg.run.output_dir) / "checkpoints", step=step,
                        weights=trainable_weights(ctx.model), optimizer=ctx.optimizer, extra=extra,
                        keep=ctx.cfg.run.keep_checkpoints)
    ctx.accelerator.wait_for_everyone()


def _loop(ctx: TrainContext, algorithm: Algorithm, trainer: Trainer, start: int,
          eval_reward_fn: RewardFn | None, result: TrainResult) -> None:
    """``run.steps`` steps with logging, checkpoints and evaluation (one pass and neither of the
    two for an algorithm that does not update weights)."""
    run = ctx.cfg.run
    updates = algorithm.updates_weights
    total = run.steps if updates else 1
    evaluating = updates and bool(ctx.prompts.eval)
    flag = SignalFlag()
    done, saved = start, start
    opt_steps_at_done = ctx.optimizer_steps
    with flag.installed():
        try:
            if start == 0 and evaluating:
                ctx.logger.log(0, evaluate(ctx, 0, eval_reward_fn))
            for step in range(start, total):
                metrics = trainer.step(step)
                done = step + 1
                opt_steps_at_done = ctx.optimizer_steps
                ctx.logger.log(done, metrics)
                ctx.logger.advance()
                if updates and (done % run.checkpoint_every == 0 or done == total):
                    _save(ctx, trainer, done)
                    saved = done
                if evaluating and (done % run.eval_every == 0 or done == total):
                    ctx.logger.log(done, evaluate(ctx, done, eval_reward_fn))
                if flag.raised is not None:
                    raise StopRequested(f"signal {flag.raised}: checkpoint saved at step {done}")
        except (TextnormError, StopRequested, KeyboardInterrupt):
            # Weights equal the state after `done` steps only while no update of the failing step
            # was applied; then checkpoint them so nothing is lost, else keep the last checkpoint.
            consistent = ctx.optimizer_steps == opt_steps_at_done
            if updates and saved != done and consistent:
                _save(ctx, trainer, done)
            raise
        finally:
            result.step = done


def _export(ctx: TrainContext, out: Path) -> Path | None:
    """Final LoRA weights (peft key format) as ``lora.safetensors``."""
    if not ctx.use_lora or not ctx.accelerator.is_main_process:
        return None
    path = out / "lora.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in ctx.model.lora_state_dict().items()}, str(tmp),
              metadata={"format": "peft", "rank": str(ctx.cfg.model.lora_rank),
                        "alpha": str(ctx.cfg.model.lora_alpha)})
    tmp.replace(path)
    return path
