"""PNG plots of an evaluation (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_bars", "plot_reliability"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bars(category: dict[str, Any], path: Path, *, metric: str = "auroc") -> Path:
    """Bar chart of one metric per system with its bootstrap interval."""
    plt = _pyplot()
    names = list(category["systems"])
    stats = [category["systems"][n]["metrics"][metric] for n in names]
    means = [100 * s["mean"] for s in stats]
    err = [[100 * (s["mean"] - s["lo"]) for s in stats], [100 * (s["hi"] - s["mean"]) for s in stats]]
    colors = {"raw": "#9aa5b1", "textnorm": "#3b82f6", "ensemble": "#d97706"}
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(names) + 1.5), 3.6))
    ax.bar(range(len(names)), means, yerr=err, capsize=3,
           color=[colors.get(category["systems"][n]["kind"], "#666666") for n in names])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(f"{metric} x 100 (macro over prompts)")
    ax.set_title(f"{category['benchmark']} / {category['category']} ({category['n_prompts']} prompts)")
    lo = min((100 * s["lo"] for s in stats if s["lo"] == s["lo"]), default=0.0)
    ax.set_ylim(max(0.0, lo - 10), 100)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(category: dict[str, Any], path: Path) -> Path | None:
    """Reliability diagram (fraction aligned vs mean confidence per bin) of the calibrated systems."""
    systems = {n: s for n, s in category["systems"].items() if "reliability" in s}
    if not systems:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--")
    for name, s in systems.items():
        r = s["reliability"]
        pts = [(c, a) for c, a, n in zip(r["confidence"], r["accuracy"], r["count"]) if n > 0]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=f"{name} (ECE {r['ece']:.3f})")
    ax.set_xlabel("confidence (held-out scale)")
    ax.set_ylabel("fraction aligned (majority vote)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"{category['benchmark']} / {category['category']}")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
