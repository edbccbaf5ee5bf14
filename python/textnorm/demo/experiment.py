"""The demo experiment: fine-tune the world generator against a raw proxy reward and against its
TextNorm calibration, with the same budget and seeds, and judge both exactly.

For each training seed, two runs of `textnorm.train.train` start from the shipped generator: one
rewards `RawReward(proxy)`, the other `TextNormReward(proxy, contrast=textnorm.contrast(...))`
(or the ensemble of every proxy with ``ensemble=True``). Everything else is equal: prompts,
noise keys, optimiser, steps. At every evaluation the held-out prompts (the world's test split,
every category) are sampled at fixed noise keys and scored by the raw proxy and by the exact
judge; the report (`textnorm.demo.report`) turns that into the overoptimization curves,
image grids and the summary table.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textnorm._core import ParameterError
from textnorm.world import CATEGORIES, PROMPT_CATEGORIES, sample_prompts

__all__ = ["DemoConfig", "EvalRecorder", "QUICK", "run_demo"]

METHODS = ("raw", "textnorm")
MODES = ("ddpo", "best-of-n", "sft", "draft")


@dataclass(frozen=True)
class DemoConfig:
    """One demo: what to train, how long, and on which prompts.

    Attributes:
        mode: fine-tuning mode (ddpo, best-of-n, sft, draft).
        seeds: training seeds; each gives one raw and one TextNorm run.
        steps: optimisation steps per run (DDPO epochs; SFT/DRaFT updates).
        eval_every: evaluate every this many steps (and at 0 and the end).
        train_prompts: training prompts per category (train split).
        eval_prompts: held-out prompts per benchmark category (test split).
        eval_images: images per held-out prompt (fixed noise keys).
        categories: prompt categories used for training and evaluation.
        num_steps: DDIM sampling steps.
        guidance_scale: classifier-free guidance weight.
        learning_rate: AdamW learning rate.
        lora_rank: LoRA rank (0: full fine-tuning of the denoiser).
        batch_size: samples per DDPO batch (two batches per epoch) / per DRaFT step.
        scale: TextNorm inverse temperature.
        norm_mode: TextNorm normalisation, "minmax" (the authors') or "temperature".
        proxy: the proxy's name (None: the first of `load_proxies()`).
        ensemble: TextNorm over every proxy (the raw baseline then averages their raw scores).
        best_of_n: samples per prompt for best-of-n mode.
        overrides: extra ``(dotted option, value)`` pairs for `textnorm.train.load_config`
            (``("ddpo.clip_range", "1e-3")``), applied last.
    """

    mode: str = "ddpo"
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 24
    eval_every: int = 4
    train_prompts: int = 3
    eval_prompts: int = 6
    eval_images: int = 2
    categories: tuple[str, ...] = PROMPT_CATEGORIES
    num_steps: int = 20
    guidance_scale: float = 1.0
    learning_rate: float = 1e-3
    lora_rank: int = 8
    batch_size: int = 16
    scale: float = 3.0
    norm_mode: str = "minmax"
    proxy: str | None = None
    ensemble: bool = False
    best_of_n: int = 8
    overrides: tuple[tuple[str, str], ...] = ()

    def validate(self) -> DemoConfig:
        if self.mode not in MODES:
            raise ParameterError(f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if not self.seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ParameterError(f"seeds: expected one or more non-negative ints, got {self.seeds!r}")
        for name in ("steps", "eval_every", "train_prompts", "eval_prompts", "eval_images", "num_steps",
                     "batch_size", "best_of_n"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"{name}: expected a positive int, got {v!r}")
        if self.norm_mode not in ("minmax", "temperature"):
            raise ParameterError(f"norm_mode: expected 'minmax' or 'temperature', got {self.norm_mode!r}")
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise ParameterError(f"lora_rank: expected an int >= 0, got {self.lora_rank!r}")
        bad = [c for c in self.categories if c not in PROMPT_CATEGORIES]
        if bad or not self.categories:
            raise ParameterError(f"categories: expected some of {', '.join(PROMPT_CATEGORIES)}, got {self.categories!r}")
        for name in ("learning_rate", "scale", "guidance_scale"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
                raise ParameterError(f"{name}: expected a positive number, got {v!r}")
        return self


#: The `--quick` preset: one seed, a few steps, small evaluation (the test suite runs it).
QUICK = DemoConfig(seeds=(0,), steps=4, eval_every=2, train_prompts=2, eval_prompts=2, eval_images=2,
                   num_steps=10, batch_size=8, best_of_n=4)


class EvalRecorder:
    """The evaluation reward: judge alignment per image, recording raw proxy scores and images.

    `textnorm.train` calls it on the held-out prompts at every evaluation; each call's results are
    appended, so ``records[i]`` belongs to the i-th evaluation once all of its batches are in.
    """

    def __init__(self, proxies: Sequence[Any], categories: dict[str, str], *, keep_images: bool = True) -> None:
        self.proxies = list(proxies)
        self.categories = categories
        self.keep_images = keep_images
        self.rows: list[dict[str, Any]] = []
        self.images: list[torch.Tensor] = []

    def __call__(self, images: torch.Tensor, prompts: list[str], metadata: Any = None) -> tuple[torch.Tensor, dict[str, Any]]:
        from textnorm.world.judging import judge

        pixels = (images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
        results = judge(pixels, prompts)
        with torch.no_grad():
            raw = torch.stack([p.score_pairs(images.detach(), prompts).float().cpu() for p in self.proxies]).mean(0)
        for prompt, res, r in zip(prompts, results, raw.tolist()):
            self.rows.append({"prompt": prompt, "category": self.categories.get(prompt, "?"),
                              "aligned": bool(res.aligned), "unknown": bool(res.unknown), "proxy": float(r)})
        if self.keep_images:
            self.images.append(images.detach().cpu())
        return torch.tensor([float(bool(r.aligned)) for r in results]), {}

    def split(self, per_eval: int) -> tuple[list[list[dict[str, Any]]], list[torch.Tensor]]:
        """Rows and images grouped by evaluation (`per_eval` images each)."""
        rows = [self.rows[i:i + per_eval] for i in range(0, len(self.rows), per_eval)]
        imgs = torch.cat(self.images) if self.images else torch.zeros(0)
        groups = [imgs[i:i + per_eval] for i in range(0, len(imgs), per_eval)] if len(imgs) else []
        return rows, groups


class MeanRaw:
    """The raw baseline for an ensemble: the mean of each proxy's raw score."""

    def __init__(self, proxies: Sequence[Any]) -> None:
        from textnorm.reward import RawReward

        self.parts = [RawReward(p) for p in proxies]

    def __call__(self, images: Any, prompts: list[str], metadata: Any = None) -> tuple[torch.Tensor, dict[str, Any]]:
        outs = [p(images, prompts, metadata) for p in self.parts]
        return torch.stack([r for r, _ in outs]).mean(0), {}


def _prompt_sets(cfg: DemoConfig) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    train = [{"prompt": p, "category": c} for c in cfg.categories
             for p in sample_prompts(c, cfg.train_prompts, seed=0, split="train", unique=True)]
    evals = [{"prompt": p, "category": c} for c in cfg.categories
             for p in sample_prompts(c, cfg.eval_prompts, seed=0, split="test", unique=True)]
    return train, evals


def _write_jsonl(rows: list[dict[str, str]], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _train_config(cfg: DemoConfig, *, seed: int, folder: Path, train_file: Path, eval_file: Path, n_eval: int) -> Any:
    from textnorm.train.config import load_config

    data: dict[str, Any] = {
        "mode": cfg.mode, "seed": seed,
        "model": {"lora_rank": max(cfg.lora_rank, 1), "lora_alpha": float(max(cfg.lora_rank, 1)),
                  "full_finetune": cfg.lora_rank == 0},
        "sampling": {"num_steps": cfg.num_steps, "guidance_scale": cfg.guidance_scale, "eta": 1.0},
        "prompts": {"source": "file", "path": str(train_file), "eval_path": str(eval_file),
                    "max_eval_prompts": n_eval},
        "optim": {"learning_rate": cfg.learning_rate},
        # Few training prompts, each sampled about twice per epoch, so the per-prompt stat tracker
        # (min_count 3) normalises advantages within a prompt: across many rarely repeated prompts
        # the batch statistics reward prompts, not samples, and the policy drifts away from the data.
        # The log-probabilities are means over the latent's 76 numbers, so a clip range of 2e-3
        # bounds each step's change of the whole chain's log-probability at about 0.15 nats per
        # step; with 0.2 (the usual PPO value) nothing was ever clipped, and seeds collapsed to
        # empty scenes within 20 epochs. Measured at 32 samples per epoch: learning rates of 3e-3
        # and more made the proxy reward fall (noise-driven drift), 1e-3 and less left it flat.
        "ddpo": {"sample_batch_size": cfg.batch_size, "num_batches_per_epoch": 2,
                 "train_batch_size": max(1, cfg.batch_size // 2), "timestep_fraction": 0.5, "clip_range": 2e-3,
                 "num_inner_epochs": 2, "stat_min_count": 3, "stat_buffer_size": 16},
        "sft": {"samples_per_prompt": 4, "sample_batch_size": 32, "top_fraction": 0.25,
                "train_batch_size": cfg.batch_size},
        "best_of_n": {"n": cfg.best_of_n, "sample_batch_size": 32, "save_all_images": True},
        # The whole chain (AlignProp-style): the last few steps barely move a scene's content.
        "draft": {"k": cfg.num_steps, "batch_size": cfg.batch_size, "eta": 0.0},
        "run": {"output_dir": str(folder), "steps": cfg.steps, "checkpoint_every": cfg.steps,
                "keep_checkpoints": 1, "eval_every": cfg.eval_every, "eval_images_per_prompt": cfg.eval_images,
                "eval_seed": 1234, "image_every": 10**6, "tensorboard": False, "progress_bar": False},
    }
    return load_config(data=data, overrides=dict(cfg.overrides))


def run_demo(
    cfg: DemoConfig, out_dir: str | Path, *, generator: Callable[[], Any] | None = None,
    proxies: Sequence[Any] | None = None, log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the experiment and write its report into `out_dir`; returns the summary dict.

    Args:
        cfg: the experiment.
        out_dir: output folder (created).
        generator: a factory returning a fresh `T2IModel` per run (default: the shipped one).
        proxies: scorers (default: `textnorm.proxies.scorer.load_proxies()`).
        log: progress messages.
    """
    import textnorm
    from textnorm.demo.report import write_report
    from textnorm.reward import RawReward, TextNormReward
    from textnorm.train import train

    cfg = cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if generator is None:
        from textnorm.generator.diffusion import load_generator

        generator = load_generator
    if proxies is None:
        from textnorm.proxies.scorer import load_proxies

        proxies = load_proxies()
    proxies = list(proxies)
    if cfg.proxy is not None:
        chosen = [p for p in proxies if p.id.endswith(cfg.proxy)]
        if not chosen:
            raise ParameterError(f"proxy: expected one of {[p.id for p in proxies]}, got {cfg.proxy!r}")
        primary = chosen[0]
    else:
        primary = proxies[0]
    used = proxies if cfg.ensemble else [primary]
    train_rows, eval_rows = _prompt_sets(cfg)
    if cfg.mode == "best-of-n":  # inference-time selection among samples of the held-out prompts
        train_rows = [r for r in eval_rows for _ in range(cfg.eval_images)]
    train_file = _write_jsonl(train_rows, out / "train_prompts.jsonl")
    eval_file = _write_jsonl(eval_rows, out / "eval_prompts.jsonl")
    categories = {r["prompt"]: r["category"] for r in [*train_rows, *eval_rows]}
    sets = textnorm.contrast(sorted(categories))
    rewards: dict[str, Any] = {
        "raw": RawReward(primary) if len(used) == 1 else MeanRaw(used),
        "textnorm": TextNormReward(used if len(used) > 1 else used[0], contrast=sets, scale=cfg.scale,
                                   mode=cfg.norm_mode),
    }
    n_eval = len(eval_rows)
    runs: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in METHODS}
    for seed in cfg.seeds:
        for method in METHODS:
            t0 = time.perf_counter()
            folder = out / "runs" / f"{method}-seed{seed}"
            shutil.rmtree(folder, ignore_errors=True)  # a previous demo's logs would be appended to
            tcfg = _train_config(cfg, seed=seed, folder=folder, train_file=train_file, eval_file=eval_file, n_eval=n_eval)
            recorder = EvalRecorder(used, categories)
            model = generator()
            result = train(tcfg, reward_fn=rewards[method], eval_reward_fn=recorder, model=model)
            if cfg.mode == "best-of-n":
                runs[method][seed] = _best_of_n_run(result, recorder, [r["prompt"] for r in train_rows])
            else:
                rows, images = recorder.split(n_eval * cfg.eval_images)
                steps = [int(r["step"]) for r in result.records if "eval/eval_reward" in r]
                train_curve = [(int(r["step"]), float(r["reward_mean"])) for r in result.records if "reward_mean" in r]
                runs[method][seed] = {"steps": steps, "evals": rows, "images": [images[0], images[-1]],
                                      "train_reward": train_curve}
            log(f"{method} seed {seed}: {time.perf_counter() - t0:.0f} s")
    summary = write_report(out, cfg=cfg, runs=runs, eval_rows=eval_rows,
                           proxy_ids=[p.id for p in used], seconds=time.perf_counter() - start)
    summary["config"] = asdict(cfg)
    return summary


def _best_of_n_run(result: Any, recorder: EvalRecorder, prompts: list[str]) -> dict[str, Any]:
    """Best-of-n: judge each prompt's first sample (the base model) and the reward's pick."""
    from PIL import Image

    folder = Path(result.output_dir)

    def load(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(Image.open(folder / name).convert("RGB"))).permute(2, 0, 1).float() / 255

    base = torch.stack([load(f"all/{i:05d}-000.png") for i in range(len(prompts))])
    best = torch.stack([load(f"best/{i:05d}.png") for i in range(len(prompts))])
    recorder(base, prompts)
    recorder(best, prompts)
    rows, images = recorder.split(len(prompts))
    n = max(r["sample"] for r in result.samples) + 1
    return {"steps": [1, n], "evals": rows, "images": images, "train_reward": []}


def quick_config(**overrides: Any) -> DemoConfig:
    """The `QUICK` preset with some fields replaced."""
    return replace(QUICK, **overrides)

