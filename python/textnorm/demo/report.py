"""The demo's report: results.json, summary.md and curves.png, each written atomically.

Every file is written to a temporary name in the same folder and renamed into place, so a killed
run never leaves a half-written file; the ``COMPLETE`` marker is written last (and removed when a
run starts), so a folder without it holds an interrupted run, whatever else it contains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from textnorm._atomic import atomic_file, atomic_write

__all__ = ["COMPLETE", "interval", "summarise", "write_report"]

COMPLETE = "COMPLETE"
METHOD_LABELS = {"raw": "raw proxy", "textnorm": "TextNorm", "ensemble": "TextNorm ensemble"}


def interval(values: list[float] | np.ndarray) -> tuple[float, float | None]:
    """Mean and the half-width of a normal 95% interval over seeds (None for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), None
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(v.size))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers: per proxy, raw best-of-n's peak and each method's gold there and at
    the largest n; per RL method, final gold and proxy over seeds."""
    bon = results["best_of_n"]
    ns = bon["ns"]
    proxies = {}
    for pid, entry in bon["proxies"].items():
        raw = np.asarray(entry["raw"]["gold"])
        peak = int(raw.argmax())
        row: dict[str, Any] = {"image_share": entry["diagnosis"]["image_share"]["mean"],
                               "raw_peak_n": ns[peak], "overoptimizes": bool(raw[-1] < raw[peak] - 0.02)}
        for method in ("raw", "textnorm", "ensemble"):
            g = entry[method]["gold"]
            row[method] = {"at_raw_peak": g[peak], "at_max_n": g[-1], "best": max(g)}
        row["textnorm_gain_at_raw_peak"] = row["textnorm"]["at_raw_peak"] - row["raw"]["at_raw_peak"]
        row["textnorm_gain_at_max_n"] = row["textnorm"]["at_max_n"] - row["raw"]["at_max_n"]
        proxies[pid] = row
    out: dict[str, Any] = {"base_aligned": bon["base_aligned"], "max_n": ns[-1], "proxies": proxies}
    if "rl" in results:
        rl: dict[str, dict[str, Any]] = {}
        for method, seeds in results["rl"]["runs"].items():
            finals = {k: [run[k][-1] for run in seeds.values()] for k in
                      ("gold_train", "gold_heldout", "proxy_train", "proxy_heldout", "kl")}
            rl[method] = {k: interval(v) for k, v in finals.items()}
            rl[method]["start"] = {k: float(np.mean([run[k][0] for run in seeds.values()]))
                                   for k in ("gold_train", "proxy_train")}
        out["rl"] = rl
    out["seconds"] = results.get("seconds")
    return out


def _markdown(results: dict[str, Any], summary: dict[str, Any]) -> str:
    bon = results["best_of_n"]
    lines = [
        "# textnorm demo", "",
        f"Best-of-n on {len(bon['prompts'])} held-out prompts x {bon['ns'][-1]} base samples "
        f"(base alignment {_pct(bon['base_aligned'])}%). Judge alignment (%) of the pick:", "",
        "| proxy | image-only share | raw peak n | raw @peak | TextNorm @peak | ensemble @peak "
        f"| raw @{bon['ns'][-1]} | TextNorm @{bon['ns'][-1]} | ensemble @{bon['ns'][-1]} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pid, row in summary["proxies"].items():
        name = pid.split(":")[-1]
        lines.append(
            f"| {name} | {row['image_share']:.2f} | {row['raw_peak_n']} | {_pct(row['raw']['at_raw_peak'])} "
            f"| {_pct(row['textnorm']['at_raw_peak'])} | {_pct(row['ensemble']['at_raw_peak'])} "
            f"| {_pct(row['raw']['at_max_n'])} | {_pct(row['textnorm']['at_max_n'])} "
            f"| {_pct(row['ensemble']['at_max_n'])} |")
    if "rl" in summary:
        rl = results["rl"]
        lines += ["", f"RL ({rl['mode']}) on {rl['proxy'].split(':')[-1]}, {len(rl['train_prompts'])} training "
                  f"prompts, seeds {', '.join(next(iter(rl['runs'].values())).keys())}; final values, mean "
                  "± 95% interval over seeds (judge alignment %, raw proxy score, path KL in nats):", "",
                  "| reward | gold (train) | gold (held-out) | proxy (train) | KL |", "|---|---|---|---|---|"]
        for method, row in summary["rl"].items():
            def f(key: str, pct: bool = True) -> str:
                m, h = row[key]
                s = _pct(m) if pct else f"{m:.2f}"
                return s if h is None else s + " ± " + (_pct(h) if pct else f"{h:.2f}")
            lines.append(f"| {METHOD_LABELS[method]} | {f('gold_train')} (from {_pct(row['start']['gold_train'])}) "
                         f"| {f('gold_heldout')} | {f('proxy_train', False)} (from {row['start']['proxy_train']:.2f}) "
                         f"| {f('kl', False)} |")
    lines += ["", f"Wall time: {summary['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def _plot(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bon = results["best_of_n"]
    proxies = list(bon["proxies"])
    cols = len(proxies) + (1 if "rl" in results else 0)
    fig, axes = plt.subplots(2, cols, figsize=(3.2 * cols, 6), squeeze=False)
    kl = np.asarray(bon["kl"])
    for c, pid in enumerate(proxies):
        entry = bon["proxies"][pid]
        for method in ("raw", "textnorm", "ensemble"):
            m = entry[method]
            axes[0, c].plot(kl, 100 * np.asarray(m["gold"]), marker=".", label=METHOD_LABELS[method])
            lo, hi = m["gold_ci"]
            axes[0, c].fill_between(kl, 100 * np.asarray(lo), 100 * np.asarray(hi), alpha=0.15)
            axes[1, c].plot(kl, m["proxy"], marker=".", label=METHOD_LABELS[method])
        axes[0, c].set_title(f"{pid.split(':')[-1]} (img-only {entry['diagnosis']['image_share']['mean']:.2f})",
                             fontsize=9)
        axes[1, c].set_xlabel("KL (nats), best-of-n")
    axes[0, 0].set_ylabel("judge alignment of pick (%)")
    axes[1, 0].set_ylabel("raw proxy score of pick")
    axes[0, 0].legend(fontsize=7)
    if "rl" in results:
        rl = results["rl"]
        for method, seeds in rl["runs"].items():
            runs = list(seeds.values())
            kls = np.mean([r["kl"] for r in runs], axis=0)
            gold = np.mean([r["gold_train"] for r in runs], axis=0)
            proxy = np.mean([r["proxy_train"] for r in runs], axis=0)
            axes[0, -1].plot(kls, 100 * gold, marker="o", label=METHOD_LABELS[method])
            axes[1, -1].plot(kls, proxy, marker="o", label=METHOD_LABELS[method])
        axes[0, -1].set_title(f"RL {rl['mode']} on {rl['proxy'].split(':')[-1]} (train prompts)", fontsize=9)
        axes[1, -1].set_xlabel("path KL (nats), RL")
    fig.tight_layout()
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


def write_report(out: Path, results: dict[str, Any]) -> dict[str, Any]:
    """Write results.json, summary.md, curves.png and then the ``COMPLETE`` marker; return the summary."""
    summary = summarise(results)
    atomic_write(out / "results.json", json.dumps({**results, "summary": summary}, indent=1))
    atomic_write(out / "summary.md", _markdown(results, summary))
    _plot(out / "curves.png", results)
    atomic_write(out / COMPLETE, "")
    return summary
