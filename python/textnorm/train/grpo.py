"""GRPO for diffusion and flow models (Flow-GRPO, Liu et al., 2025; DanceGRPO): DDPO with groups.

Each epoch draws ``sample_batch_size * num_batches_per_epoch * processes / group_size`` prompts
(without replacement while there are enough) and samples ``group_size`` images of each, keyed by
their global index so the groups do not depend on the number of processes. A sample's advantage
is its reward minus its group's mean, divided by

- ``std = "group"``: its group's standard deviation (GRPO),
- ``std = "global"``: the whole batch's standard deviation (Flow-GRPO's ``global_std``),
- ``std = "none"``: 1 (centring only),

never by less than ``std_floor`` (plus 1e-6). A group whose rewards all but tie (a saturated
prompt: every image scores 1) would otherwise turn rounding noise into unit-variance advantages;
with ``zero_saturated`` such groups (standard deviation at most ``std_floor``) get advantage 0.
Training is PPO-clip on the per-step importance ratio with an optional KL to the frozen base
model, on the steps inside ``step_window`` (Flow-GRPO-Fast trains a window of the chain), in
``updates_per_epoch`` optimizer steps per pass over the samples (fewer, larger updates than
DDPO). The sampler is the model's own (:func:`textnorm.train.sampling.sampler_for`): DDIM on
latent diffusion models (where this is DDPO with group sampling), the SDE of a flow-matching
model; sample fewer steps in training than in evaluation with ``sampling.eval_num_steps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from textnorm._core import ParameterError
from textnorm.train._common import TAG_PROMPTS
from textnorm.train.config import check_choice, check_int, check_number
from textnorm.train.ddpo import PPOOptions, PPOTrainer
from textnorm.train.registry import Algorithm, register
from textnorm.train.sampling import derive_seed
from textnorm.train.stat_tracker import EPS

if TYPE_CHECKING:
    from textnorm.train.config import TrainConfig

STD_MODES = ("group", "global", "none")


@dataclass
class GRPOOptions(PPOOptions):
    """GRPO's options (config section ``[grpo]``): PPO's, the groups' and the advantages'."""

    group_size: int = 4  # images per prompt; sample_batch_size * num_batches_per_epoch a multiple
    std: str = "group"  # group | global | none: what divides the centred rewards
    std_floor: float = 0.0  # the divisor is at least this (reward units)
    zero_saturated: bool = False  # groups with std <= std_floor get advantage 0
    updates_per_epoch: int = 1  # optimizer steps per pass; 0: gradient_accumulation_steps decides

    def validate(self, cfg: TrainConfig, *, section: str = "grpo") -> None:
        """Raise ParameterError naming the first bad option."""
        super().validate(cfg, section=section)
        check_int(f"{section}.group_size", self.group_size, low=2)
        check_choice(f"{section}.std", self.std, STD_MODES)
        check_number(f"{section}.std_floor", self.std_floor, low=0.0)
        check_int(f"{section}.updates_per_epoch", self.updates_per_epoch, low=0)
        per_process = self.sample_batch_size * self.num_batches_per_epoch
        if per_process % self.group_size:
            raise ParameterError(
                f"{section}.group_size: expected a divisor of {section}.sample_batch_size x "
                f"{section}.num_batches_per_epoch ({per_process} samples per process and epoch), "
                f"received {self.group_size}")


def group_advantages(rewards: np.ndarray, groups: np.ndarray, *, std: str = "group",
                     std_floor: float = 0.0, zero_saturated: bool = False) -> np.ndarray:
    """GRPO advantages: ``(r - mean_group) / (max(s, std_floor) + 1e-6)`` (see the module doc).

    Args:
        rewards: (N,) rewards.
        groups: (N,) group label of each reward.
        std: "group", "global" or "none": what ``s`` is.
        std_floor: the smallest divisor.
        zero_saturated: 0 for a group whose own standard deviation is at most ``std_floor``.

    Returns:
        float64 (N,) advantages.
    """
    check_choice("std", std, STD_MODES)
    rewards = np.asarray(rewards, dtype=np.float64)
    groups = np.asarray(groups)
    out = np.zeros_like(rewards)
    global_std = float(rewards.std())
    for g in np.unique(groups):
        mask = groups == g
        r = rewards[mask]
        own = float(r.std())
        if zero_saturated and own <= std_floor:
            continue
        s = {"group": own, "global": global_std, "none": 1.0}[std]
        out[mask] = (r - r.mean()) / (max(s, std_floor) + EPS)
    return out


class GRPOTrainer(PPOTrainer):
    """One :meth:`step` = one GRPO epoch: groups sampled, scored, normalised, PPO-clip passes."""

    opts: GRPOOptions

    def choose_prompts(self, epoch: int, total: int) -> np.ndarray:
        """``group_size`` consecutive global samples share a prompt; distinct prompts per epoch
        while there are enough."""
        n_groups, n_prompts = total // self.opts.group_size, len(self.ctx.prompts.train)
        rng = np.random.default_rng(derive_seed(self.ctx.cfg.seed, TAG_PROMPTS, epoch))
        chosen = rng.choice(n_prompts, size=n_groups, replace=n_groups > n_prompts)
        return np.repeat(chosen, self.opts.group_size)

    def advantages(self, prompts: list[str], rewards: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        o = self.opts
        groups = np.arange(rewards.size) // o.group_size
        adv = group_advantages(rewards, groups, std=o.std, std_floor=o.std_floor,
                               zero_saturated=o.zero_saturated)
        stds = np.array([rewards[groups == g].std() for g in np.unique(groups)])
        return adv, {"grpo/group_std": float(stds.mean()),
                     "grpo/saturated_groups": float((stds <= o.std_floor).mean())}

    def accumulation(self, n_minibatches: int) -> int:
        if self.opts.updates_per_epoch == 0:
            return self.opts.gradient_accumulation_steps
        return max(1, math.ceil(n_minibatches / self.opts.updates_per_epoch))


GRPO = register(Algorithm(
    name="grpo", options=GRPOOptions, trainer=GRPOTrainer,
    summary="group-relative PPO over the sampler's steps (Flow-GRPO; DDPO with groups on DDIM)"))
