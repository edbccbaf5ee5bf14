"""The demo's report: overoptimization curves, before/after grids, and the summary table.

Inputs are the runs of `textnorm.demo.experiment.run_demo`: per method ("raw", "textnorm") and seed,
the evaluation steps, one list of judged rows per evaluation (prompt, category, aligned, unknown,
raw proxy score; every held-out prompt at the same fixed noise keys) and the first and last
evaluation's images. Written files:

- ``curves.png``: held-out raw proxy reward and judge alignment over steps (mean over seeds, the
  band spans the seeds' minimum to maximum);
- ``grids.png`` (and ``before.png``, ``after_raw.png``, ``after_textnorm.png``): held-out prompts,
  one row per prompt, base samples next to each method's final samples, same noise;
- ``summary.md`` and ``summary.json``: judge alignment per category (base, raw, TextNorm, with a
  95% t-interval over seeds), raw proxy reward, and the per-prompt win/tie/loss of TextNorm against
  raw at fixed seeds (a prompt's score is its share of aligned images at the final evaluation),
  with a 95% t-interval over seeds of the net win rate ``(wins - losses) / prompts``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["interval", "write_report"]

LABELS = {"raw": "raw proxy", "textnorm": "TextNorm"}
COLOURS = {"raw": "C3", "textnorm": "C0"}


def interval(values: list[float] | np.ndarray) -> tuple[float, float | None]:
    """Mean and the half-width of its 95% t-interval (None with fewer than two values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return math.nan, None
    if v.size < 2:
        return float(v.mean()), None
    from scipy import stats  # type: ignore[import-untyped]

    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return float(v.mean()), half


def _fmt(mean: float, half: float | None, *, pct: bool = True) -> str:
    if math.isnan(mean):
        return "n/a"
    if pct:
        return f"{100 * mean:.1f}%" + ("" if half is None else f" ± {100 * half:.1f}")
    return f"{mean:.3f}" + ("" if half is None else f" ± {half:.3f}")


def _aligned(rows: list[dict[str, Any]], category: str | None = None) -> float:
    sel = [r["aligned"] for r in rows if category is None or r["category"] == category]
    return float(np.mean(sel)) if sel else math.nan


def _proxy(rows: list[dict[str, Any]]) -> float:
    return float(np.mean([r["proxy"] for r in rows])) if rows else math.nan


def _per_prompt(rows: list[dict[str, Any]]) -> dict[str, float]:
    by: dict[str, list[bool]] = {}
    for r in rows:
        by.setdefault(r["prompt"], []).append(r["aligned"])
    return {p: float(np.mean(v)) for p, v in by.items()}


def _curves(out: Path, runs: dict[str, dict[int, dict[str, Any]]], mode: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for method, seeds in runs.items():
        if not seeds:
            continue
        steps = next(iter(seeds.values()))["steps"]
        for ax, fn in zip(axes, (_proxy, _aligned)):
            vals = np.array([[fn(rows) for rows in run["evals"]] for run in seeds.values()])
            mean = vals.mean(0)
            ax.plot(steps, mean, "o-", color=COLOURS[method], label=f"trained on {LABELS[method]}")
            if vals.shape[0] > 1:
                ax.fill_between(steps, vals.min(0), vals.max(0), color=COLOURS[method], alpha=0.2)
    x_label = "samples per prompt (n)" if mode == "best-of-n" else "step"
    axes[0].set(title="raw proxy reward (held-out prompts)", xlabel=x_label, ylabel="proxy score")
    axes[1].set(title="judge alignment (held-out prompts)", xlabel=x_label, ylabel="share aligned",
                ylim=(-0.02, 1.02))
    axes[1].legend(loc="best")
    fig.suptitle(f"{mode}: optimising the raw proxy vs its TextNorm calibration")
    fig.tight_layout()
    path = out / "curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _tile(images: torch.Tensor, n_rows: int) -> np.ndarray:
    """(n_rows * k, 3, H, W) images -> uint8 grid with n_rows rows of k images."""
    from textnorm.train.logs import image_grid

    k = max(1, images.shape[0] // max(n_rows, 1))
    return image_grid(images[: n_rows * k], columns=k)


def _grids(out: Path, runs: dict[str, dict[int, dict[str, Any]]], eval_rows: list[dict[str, str]],
           per_prompt: int) -> dict[str, Path]:
    from PIL import Image, ImageDraw

    seed = min(runs["raw"])
    panels = {"before": runs["raw"][seed]["images"][0], "after_raw": runs["raw"][seed]["images"][-1],
              "after_textnorm": runs["textnorm"][seed]["images"][-1]}
    n_rows = len(eval_rows)
    paths: dict[str, Path] = {}
    tiles = {}
    for name, imgs in panels.items():
        tiles[name] = _tile(imgs, n_rows)
        paths[name] = out / f"{name}.png"
        Image.fromarray(tiles[name]).save(paths[name])
    gap, head, text_w = 8, 18, 300
    h, w = tiles["before"].shape[:2]
    canvas = Image.new("RGB", (text_w + 3 * (w + gap), h + head), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, (name, title) in enumerate((("before", "base model"), ("after_raw", "after: raw proxy"),
                                       ("after_textnorm", "after: TextNorm"))):
        x = text_w + j * (w + gap)
        canvas.paste(Image.fromarray(tiles[name]), (x, head))
        draw.text((x + 2, 3), title, fill=(0, 0, 0))
    row_h = h / max(n_rows, 1)
    for i, r in enumerate(eval_rows):
        draw.text((4, head + int(i * row_h + row_h / 2) - 6), r["prompt"][:48], fill=(0, 0, 0))
    paths["grids"] = out / "grids.png"
    canvas.save(paths["grids"])
    return paths


def write_report(out: Path, *, cfg: Any, runs: dict[str, dict[int, dict[str, Any]]], eval_rows: list[dict[str, str]],
                 proxy_ids: list[str], seconds: float) -> dict[str, Any]:
    """Write curves, grids and the summary; returns the summary (also in ``summary.json``)."""
    seeds = sorted(runs["raw"])
    cats = list(dict.fromkeys(r["category"] for r in eval_rows))
    table: dict[str, dict[str, Any]] = {}
    for cat in [*cats, "all"]:
        c = None if cat == "all" else cat
        row: dict[str, Any] = {}
        row["base"] = interval([_aligned(runs["raw"][s]["evals"][0], c) for s in seeds])
        for m in ("raw", "textnorm"):
            row[m] = interval([_aligned(runs[m][s]["evals"][-1], c) for s in seeds])
            row[f"{m}_best"] = interval([max(_aligned(e, c) for e in runs[m][s]["evals"]) for s in seeds])
        table[cat] = row
    proxy = {"base": interval([_proxy(runs["raw"][s]["evals"][0]) for s in seeds])}
    for m in ("raw", "textnorm"):
        proxy[m] = interval([_proxy(runs[m][s]["evals"][-1]) for s in seeds])
    wtl_seeds, per_prompt = [], []
    for s in seeds:
        a_raw, a_tn = _per_prompt(runs["raw"][s]["evals"][-1]), _per_prompt(runs["textnorm"][s]["evals"][-1])
        w = sum(a_tn[p] > a_raw[p] for p in a_raw)
        t = sum(a_tn[p] == a_raw[p] for p in a_raw)
        los = sum(a_tn[p] < a_raw[p] for p in a_raw)
        wtl_seeds.append({"seed": s, "win": w, "tie": t, "loss": los, "net": (w - los) / max(len(a_raw), 1)})
        per_prompt += [{"seed": s, "prompt": p, "raw": a_raw[p], "textnorm": a_tn[p]} for p in a_raw]
    net = interval([x["net"] for x in wtl_seeds])
    diff = interval([_aligned(runs["textnorm"][s]["evals"][-1]) - _aligned(runs["raw"][s]["evals"][-1]) for s in seeds])
    curves = _curves(out, runs, cfg.mode)
    grids = _grids(out, runs, eval_rows if cfg.mode != "best-of-n" else
                   [r for r in eval_rows for _ in range(cfg.eval_images)], cfg.eval_images)
    totals = {k: int(sum(x[k] for x in wtl_seeds)) for k in ("win", "tie", "loss")}
    summary: dict[str, Any] = {
        "mode": cfg.mode, "seeds": seeds, "proxies": proxy_ids, "seconds": round(seconds, 1),
        "judge_alignment": {c: {k: {"mean": v[0], "ci95": v[1]} for k, v in row.items()} for c, row in table.items()},
        "proxy_reward": {k: {"mean": v[0], "ci95": v[1]} for k, v in proxy.items()},
        "win_tie_loss": {"per_seed": wtl_seeds, "total": totals, "net_rate": {"mean": net[0], "ci95": net[1]}},
        "alignment_difference": {"mean": diff[0], "ci95": diff[1]},
        "per_prompt": per_prompt,
        "files": {"curves": str(curves), **{k: str(v) for k, v in grids.items()}},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(_markdown(summary, cfg, table, proxy, totals, net, diff), encoding="utf-8")
    summary["files"]["summary_md"] = str(out / "summary.md")
    summary["files"]["summary_json"] = str(out / "summary.json")
    return summary


def _markdown(summary: dict[str, Any], cfg: Any, table: dict[str, dict[str, Any]], proxy: dict[str, Any],
              totals: dict[str, int], net: tuple[float, float | None], diff: tuple[float, float | None]) -> str:
    n = len(summary["seeds"])
    ci = "95% t-interval over seeds" if n > 1 else "one seed: no interval"
    lines = [
        f"# textnorm demo: {cfg.mode}, raw proxy vs TextNorm",
        "",
        f"Proxy: {', '.join(summary['proxies'])}; seeds {summary['seeds']}; {cfg.steps} steps; "
        f"held-out prompts: {cfg.eval_prompts} per category x {cfg.eval_images} images; {summary['seconds']:.0f} s.",
        "",
        f"Judge alignment on held-out prompts at the final step (mean, {ci}; best over steps in brackets):",
        "",
        "| category | base | raw proxy | TextNorm |",
        "|---|---|---|---|",
    ]
    for cat, row in table.items():
        cells = [_fmt(*row["base"])]
        for m in ("raw", "textnorm"):
            cells.append(f"{_fmt(*row[m])} ({_fmt(row[m + '_best'][0], None)})")
        lines.append(f"| {cat} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Raw proxy reward on held-out prompts: base {_fmt(*proxy['base'], pct=False)}, after raw "
        f"{_fmt(*proxy['raw'], pct=False)}, after TextNorm {_fmt(*proxy['textnorm'], pct=False)}.",
        "",
        f"Per prompt (final share aligned, same noise), TextNorm vs raw: {totals['win']} wins, "
        f"{totals['tie']} ties, {totals['loss']} losses; net win rate {_fmt(*net)}; "
        f"alignment difference {_fmt(*diff)} ({ci}).",
        "",
    ]
    return "\n".join(lines)
