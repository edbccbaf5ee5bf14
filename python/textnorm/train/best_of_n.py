"""Best-of-n: sample n images per prompt, score them all, keep the best.

Usable alone (inference-time alignment) and as data for SFT. Writes, into the run folder:
``best/{i}.png`` (the best image of prompt i), ``all/{i}-{j}.png`` (every sample, optional),
``grids/{i}.png`` (the n samples of a prompt, best first), ``best_grid.png`` and
``metadata.jsonl`` (one line per sample: prompt, indices, noise key, reward, rank, best flag).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from textnorm._core import ParameterError
from textnorm.train._common import TAG_SFT, TrainContext, call_reward, generate
from textnorm.train.config import check_int
from textnorm.train.registry import Algorithm, TrainerBase, register
from textnorm.train.sampling import derive_seed

if TYPE_CHECKING:
    import torch

    from textnorm.train.config import TrainConfig
else:
    from textnorm.train._lazy import torch


@dataclass
class BestOfNOptions:
    """Best-of-n's options (config section ``[best_of_n]``)."""

    n: int = 8
    sample_batch_size: int = 8
    save_all_images: bool = True

    def validate(self, cfg: TrainConfig) -> None:
        """Raise ParameterError naming the first bad option."""
        check_int("best_of_n.n", self.n)
        check_int("best_of_n.sample_batch_size", self.sample_batch_size)


def best_indices(rewards: np.ndarray, groups: np.ndarray) -> dict[int, int]:
    """Index of the highest reward per group (first one on ties)."""
    best: dict[int, int] = {}
    for i, (r, g) in enumerate(zip(np.asarray(rewards, dtype=np.float64), np.asarray(groups))):
        if int(g) not in best or r > rewards[best[int(g)]]:
            best[int(g)] = i
    return best


def save_samples(path: Path, *, latents: torch.Tensor, rewards: np.ndarray, prompt_index: np.ndarray,
                 prompts: list[str]) -> None:
    """Final latents, rewards and prompt indices of every sample (SFT reads them with ``sft.data``)."""
    from safetensors.torch import save_file

    tmp = path.with_suffix(".tmp")
    save_file({"latents": latents.contiguous(), "rewards": torch.as_tensor(rewards, dtype=torch.float64),
               "prompt_index": torch.as_tensor(prompt_index, dtype=torch.int64)}, str(tmp),
              metadata={"prompts": json.dumps(prompts)})
    tmp.replace(path)


def load_samples(folder: str | Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Read a best-of-n run's ``samples.safetensors``: (tensors, prompts)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(folder) / "samples.safetensors"
    if not path.is_file():
        raise ParameterError(f"sft.data: expected a best-of-n run folder with samples.safetensors, "
                             f"received {str(folder)!r}")
    with safe_open(str(path), framework="pt") as fh:
        prompts = json.loads((fh.metadata() or {})["prompts"])
    return load_file(str(path)), list(prompts)


def run_best_of_n(ctx: TrainContext, *, prompts: list[str] | None = None,
                  metadata: list[dict[str, Any]] | None = None,
                  ) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Sample ``best_of_n.n`` images per prompt (default: the training prompts) with the current model.

    Returns the per-sample records (also written to ``metadata.jsonl`` by the main process) and
    the metrics to log.
    """
    from textnorm.train.logs import image_grid, save_png

    cfg = ctx.cfg.best_of_n
    prompts = list(ctx.prompts.train if prompts is None else prompts)
    metadata = list(ctx.prompts.train_meta if metadata is None else metadata or [{} for _ in prompts])
    items = [(p, j) for p in range(len(prompts)) for j in range(cfg.n)]
    mine = items[ctx.rank::ctx.world_size]
    out = Path(ctx.cfg.run.output_dir)
    images_all: list[torch.Tensor] = []
    latents_all: list[torch.Tensor] = []
    rewards_all: list[torch.Tensor] = []
    owners: list[int] = []
    infos: list[dict[str, float]] = []
    with ctx.sampling_weights() as net, torch.no_grad():
        for lo in range(0, len(mine), cfg.sample_batch_size):
            chunk = mine[lo:lo + cfg.sample_batch_size]
            batch_prompts = [prompts[p] for p, _ in chunk]
            keys = [derive_seed(ctx.cfg.seed, TAG_SFT, p, j) for p, j in chunk]
            traj, _ = generate(ctx, net, batch_prompts, keys)
            images = ctx.model.decode(traj.final)
            r, info = call_reward(ctx.reward_fn, images, batch_prompts, [metadata[p] for p, _ in chunk],
                                  check_finite=False)
            images_all.append(images.cpu())
            latents_all.append(traj.final.float().cpu())
            rewards_all.append(r.detach())
            owners.extend(p * cfg.n + j for p, j in chunk)
            infos.append(info)
    ctx.check_finite(torch.cat(rewards_all), [prompts[p] for p, _ in mine])
    imgs = ctx.accelerator.gather(torch.cat(images_all).to(ctx.model.device)).cpu()
    lats = ctx.accelerator.gather(torch.cat(latents_all).to(ctx.model.device)).cpu()
    rew = ctx.accelerator.gather(torch.cat(rewards_all)).cpu().double().numpy()
    own = ctx.accelerator.gather(torch.tensor(owners, device=ctx.model.device)).cpu().numpy()
    order = np.argsort(own, kind="stable")
    imgs, lats = imgs[torch.as_tensor(order)], lats[torch.as_tensor(order)]
    rew, own = rew[order], own[order]
    groups = own // cfg.n
    best = best_indices(rew, groups)
    records: list[dict[str, Any]] = []
    for i, (o, r) in enumerate(zip(own.tolist(), rew.tolist())):
        p, j = divmod(int(o), cfg.n)
        rank = int((rew[groups == p] > r).sum())
        records.append({"prompt": prompts[p], "prompt_index": p, "sample": j,
                        "noise_key": derive_seed(ctx.cfg.seed, TAG_SFT, p, j), "reward": float(r),
                        "rank": rank, "best": best[p] == i, "metadata": metadata[p]})
    if ctx.accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_samples(out / "samples.safetensors", latents=lats, rewards=rew, prompt_index=groups,
                     prompts=prompts)
        with (out / "metadata.jsonl").open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, default=str) + "\n")
        for p in range(len(prompts)):
            idx = np.flatnonzero(groups == p)
            idx = idx[np.argsort(-rew[idx], kind="stable")]
            save_png(image_grid(imgs[torch.as_tensor(idx)], columns=len(idx)), out / "grids" / f"{p:05d}.png")
            save_png(image_grid(imgs[best[p]:best[p] + 1]), out / "best" / f"{p:05d}.png")
            if cfg.save_all_images:
                for k in idx.tolist():
                    save_png(image_grid(imgs[k:k + 1]), out / "all" / f"{p:05d}-{int(own[k]) % cfg.n:03d}.png")
        save_png(image_grid(imgs[torch.as_tensor([best[p] for p in range(len(prompts))])]), out / "best_grid.png")
    means = {"best_of_n/reward_mean": float(rew.mean()),
             "best_of_n/best_reward_mean": float(np.mean([rew[best[p]] for p in range(len(prompts))]))}
    for info in infos:
        for key, v in info.items():
            means[f"best_of_n/{key}"] = means.get(f"best_of_n/{key}", 0.0) + v / len(infos)
    return records, means


class BestOfNTrainer(TrainerBase):
    """Its one :meth:`step` samples and ranks; :meth:`outputs` hands back the records."""

    def __init__(self, ctx: TrainContext) -> None:
        super().__init__(ctx)
        self.samples: list[dict[str, Any]] = []

    def step(self, step: int) -> dict[str, float]:
        self.samples, metrics = run_best_of_n(self.ctx)
        return metrics

    def outputs(self) -> dict[str, Any]:
        return {"samples": self.samples}


BEST_OF_N = register(Algorithm(
    name="best-of-n", options=BestOfNOptions, trainer=BestOfNTrainer, updates_weights=False,
    summary="sample n images per prompt and keep the best (inference-time; data for sft)"))
