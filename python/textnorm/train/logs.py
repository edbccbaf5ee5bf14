"""Run logging: a JSONL of every metric, TensorBoard scalars, a progress bar, PNG image grids and
the overoptimization plot (training reward against evaluation reward over steps).

Only the main process writes (``enabled=False`` elsewhere).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def image_grid(images: torch.Tensor, *, columns: int | None = None) -> np.ndarray:
    """(N, 3, H, W) images in [0, 1] -> one uint8 (rows*H, columns*W, 3) grid."""
    imgs = images.detach().float().clamp(0, 1).cpu()
    n, _, h, w = imgs.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.zeros(3, rows * h, cols * w)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = imgs[i]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 HxWx3 array as PNG."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def overoptimization_plot(records: Sequence[Mapping[str, Any]], path: str | Path, *,
                          train_key: str = "eval/train_reward", eval_key: str = "eval/eval_reward",
                          title: str = "training reward vs evaluation reward") -> Path | None:
    """Plot both rewards on held-out prompts over steps (two y axes); None when nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_step: dict[int, dict[str, float]] = {}
    for rec in records:
        if train_key in rec or eval_key in rec:
            by_step.setdefault(int(rec["step"]), {}).update(
                {k: rec[k] for k in (train_key, eval_key) if k in rec})
    if not by_step:
        return None
    steps = sorted(by_step)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [by_step[s].get(train_key, np.nan) for s in steps], "o-", color="C0",
            label="training reward (held-out prompts)")
    ax.set_xlabel("step")
    ax.set_ylabel("training reward", color="C0")
    if any(eval_key in v for v in by_step.values()):
        ax2 = ax.twinx()
        ax2.plot(steps, [by_step[s].get(eval_key, np.nan) for s in steps], "s--", color="C1",
                 label="evaluation reward")
        ax2.set_ylabel("evaluation reward", color="C1")
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


class RunLogger:
    """Metrics to ``metrics.jsonl`` and TensorBoard, a tqdm bar, grids under ``images/``.

    Args:
        folder: the run folder.
        total: steps of the run (progress bar).
        initial: steps already done (resume).
        enabled: False on non-main processes.
        tensorboard: write TensorBoard event files.
        progress: show a progress bar.
    """

    def __init__(self, folder: str | Path, *, total: int, initial: int = 0, enabled: bool = True,
                 tensorboard: bool = True, progress: bool = True) -> None:
        self.folder = Path(folder)
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        self._tb: Any = None
        self._bar: Any = None
        if not enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.folder / "metrics.jsonl").open("a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.folder / "tensorboard"))
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record scalar metrics for ``step``."""
        if not self.enabled:
            return
        rec = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self.records.append(rec)
        self._jsonl.write(json.dumps(rec) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in metrics.items():
                self._tb.add_scalar(key, float(value), int(step))
        if self._bar is not None and "reward_mean" in metrics:
            self._bar.set_postfix(reward=f"{float(metrics['reward_mean']):.4g}")

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def images(self, step: int, images: torch.Tensor, *, tag: str = "samples") -> Path | None:
        """Save a PNG grid ``images/{tag}-{step}.png``."""
        if not self.enabled:
            return None
        return save_png(image_grid(images), self.folder / "images" / f"{tag}-{step:08d}.png")

    def all_records(self) -> list[dict[str, Any]]:
        """Every record in ``metrics.jsonl`` (including those of earlier, resumed runs)."""
        path = self.folder / "metrics.jsonl"
        if not path.is_file():
            return list(self.records)
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def close(self) -> None:
        if not self.enabled:
            return
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
        if self._bar is not None:
            self._bar.close()
