"""How much signal a policy-gradient estimator carries at the current model (DDPO, GRPO).

Two estimates of the gradient of the PPO objective with respect to the trainable (LoRA) weights,
each from its own independently sampled set of images (disjoint noise keys and prompt draws), at
the current weights and before any update (importance ratio 1, so the estimate is the plain
REINFORCE gradient ``-mean(A * grad log p)`` over the trained steps). If the estimator carries
signal, the two point the same way: their cosine is clearly positive, and grows towards 1 with the
number of samples; a cosine near 0 at every sample count says the updates are noise (the weights
random-walk). The same split per denoising step shows which steps carry signal and which only
norm (for example low-noise final steps whose actions a hard decoder ignores: leave them out
with ``step_window``).

    from textnorm.train.diagnostics import measure_gradient_signal
    signal = measure_gradient_signal(cfg, reward_fn=reward, model=generator, pairs=3)
    print(signal.cosine, signal.step_cosine)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from textnorm._core import ParameterError

if TYPE_CHECKING:
    import torch

    from textnorm.train._common import RewardFn
    from textnorm.train.config import TrainConfig
    from textnorm.train.ddpo import PPOTrainer
    from textnorm.train.model import T2IModel
else:
    from textnorm.train._lazy import torch

# Epochs of the diagnostic's samples: far from any training epoch, so its noise keys are its own.
_EPOCH_BASE = 1 << 30


@dataclass
class GradientSignal:
    """The agreement of independent policy-gradient estimates.

    Attributes:
        cosine: mean over pairs of the cosine between the two estimates (full gradients).
        cosines: the cosine of each pair.
        norm: mean norm of one estimate.
        steps: the chain's step indices that were trained (0 = the first, noisiest step).
        step_cosine: per trained step, the mean over pairs of the cosine between the two
            estimates' contributions of that step.
        step_norm: per trained step, the mean norm of its contribution to one estimate.
        samples: images per estimate (over all processes).
    """

    cosine: float
    cosines: list[float]
    norm: float
    steps: list[int]
    step_cosine: list[float]
    step_norm: list[float]
    samples: int
    extra: dict[str, Any] = field(default_factory=dict)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def step_gradients(trainer: PPOTrainer, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """One estimate from the samples of ``epoch``: per trained step, the flat float64 gradient of
    that step's share of the PPO loss. Leaves the weights, optimizer and trainer state as they were.

    Returns:
        ``(steps (S,), gradients (S, P))``; their sum over steps is the whole estimate.
    """
    ctx = trainer.ctx
    state = trainer.state()
    params = ctx.trainable()
    ctx.optimizer.zero_grad(set_to_none=True)
    try:
        data = trainer.collect(epoch)
        steps = trainer.trained_steps(data["timesteps"])
        n_local = data["log_probs"].shape[0]
        size = trainer.opts.train_batch_size
        minibatches = [np.arange(lo, min(lo + size, n_local)) for lo in range(0, n_local, size)]
        rows = []
        for j in steps:
            for mb in minibatches:
                trainer._train_step(data, mb, np.full(mb.size, j), scale=mb.size / (n_local * len(steps)),
                                    sync=True)
            rows.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                   for p in params]).double().cpu().numpy())
            ctx.optimizer.zero_grad(set_to_none=True)
    finally:
        ctx.optimizer.zero_grad(set_to_none=True)
        trainer.load_state(state)
    return np.asarray(steps), np.stack(rows)


def gradient_signal(trainer: PPOTrainer, *, pairs: int = 1) -> GradientSignal:
    """Cosines between pairs of independent gradient estimates at the trainer's current weights.

    Args:
        trainer: a DDPO or GRPO trainer (its options set the samples per estimate:
            ``sample_batch_size * num_batches_per_epoch`` per process, and the trained steps).
        pairs: independent pairs of estimates to average over.
    """
    if pairs < 1:
        raise ParameterError(f"pairs: expected an integer >= 1, received {pairs!r}")
    cosines, norms, step_cos, step_norm = [], [], [], []
    steps = np.zeros(0, dtype=np.int64)
    for k in range(pairs):
        steps, ga = step_gradients(trainer, _EPOCH_BASE + 2 * k)
        _, gb = step_gradients(trainer, _EPOCH_BASE + 2 * k + 1)
        cosines.append(_cos(ga.sum(0), gb.sum(0)))
        norms += [float(np.linalg.norm(ga.sum(0))), float(np.linalg.norm(gb.sum(0)))]
        step_cos.append([_cos(a, b) for a, b in zip(ga, gb)])
        step_norm.append((np.linalg.norm(ga, axis=1) + np.linalg.norm(gb, axis=1)) / 2)
    o = trainer.opts
    return GradientSignal(
        cosine=float(np.mean(cosines)), cosines=cosines, norm=float(np.mean(norms)),
        steps=[int(s) for s in steps], step_cosine=np.mean(step_cos, axis=0).tolist(),
        step_norm=np.mean(step_norm, axis=0).tolist(),
        samples=o.sample_batch_size * o.num_batches_per_epoch * trainer.ctx.world_size)


def measure_gradient_signal(cfg: TrainConfig, *, reward_fn: RewardFn, model: T2IModel | None = None,
                            prompt_source: Callable[[], Any] | None = None, pairs: int = 1,
                            accelerator: Any = None) -> GradientSignal:
    """Build a run as :func:`textnorm.train.runner.train` would (LoRA added, or resumed from the
    run folder's checkpoint when ``cfg.resume``) and measure :func:`gradient_signal` there.

    Args:
        cfg: a ``ddpo`` or ``grpo`` config; its ``run.output_dir`` receives the config and logs.
        reward_fn: the reward, as for training.
        model: the generator (LoRA is injected into it); default: loaded from ``cfg.model``.
        prompt_source: prompts, as for training.
        pairs: independent pairs of estimates.
        accelerator: as for training.
    """
    from textnorm.train.ddpo import PPOTrainer
    from textnorm.train.registry import get_algorithm
    from textnorm.train.runner import prepare

    trainer_cls = get_algorithm(cfg.mode).trainer
    if not (isinstance(trainer_cls, type) and issubclass(trainer_cls, PPOTrainer)):
        raise ParameterError(f"mode: expected a policy-gradient mode such as 'ddpo' or 'grpo', "
                             f"received {cfg.mode!r}")
    ctx, _, state = prepare(cfg, reward_fn=reward_fn, model=model, prompt_source=prompt_source,
                            accelerator=accelerator)
    trainer = trainer_cls(ctx)
    try:
        trainer.load_state(state)
        return gradient_signal(trainer, pairs=pairs)
    finally:
        trainer.close()
        ctx.logger.close()
