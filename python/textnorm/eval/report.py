"""Markdown + JSON report of an evaluation, with PNG plots beside it.

Files written into the output folder: ``report.md``, ``report.json`` (everything but per-prompt
rows), ``per_prompt.json``, ``{category}_{metric}.png`` and ``{category}_reliability.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textnorm.eval.evaluate import REPORT_METRICS

__all__ = ["render_markdown", "write_report"]

_HEAD = {"auroc": "AUROC", "auprc": "AUPRC", "ap5": "AP@5", "ap10": "AP@10", "ap25": "AP@25",
         "spearman": "Spearman", "kendall": "Kendall", "pairwise_acc": "Pair acc."}


def _cell(stat: Mapping[str, float]) -> str:
    if stat["mean"] != stat["mean"]:
        return "n/a"
    return f"{100 * stat['mean']:.1f} [{100 * stat['lo']:.1f}, {100 * stat['hi']:.1f}]"


def _setting(s: Mapping[str, Any]) -> str:
    u = s["usual_setting"]
    parts = [f"{k}={v}" for k, v in u.items() if k not in ("folds", "of", "mode")]
    return (", ".join(parts) + f" ({u['folds']}/{u['of']} folds)") if parts else "-"


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def render_markdown(results: Mapping[str, Any]) -> str:
    """The report as Markdown: settings, then one table per category (x100, 95% CIs over prompts)."""
    st = results["settings"]
    lines = [
        f"# textnorm eval: {results['benchmark']}",
        "",
        f"Scorers: {', '.join(st['scorers'])}. Settings (scale, lambda, ensemble method) chosen by "
        f"{st['folds']}-fold cross-validation over prompts, maximising {st['select']} on the training folds; "
        f"every number below is measured on held-out prompts. Values x100, macro-averaged over prompts, "
        f"[{100 * st['level']:.0f}% bootstrap interval over prompts, {st['n_boot']} resamples]. "
        "Spearman, Kendall and the pairwise accuracy use the mean of the labels (missing = 0.5); the "
        "others the majority vote. Pair acc.: tie threshold chosen on the training folds.",
        "",
    ]
    for cat, res in results["categories"].items():
        lines += [f"## {cat} ({res['n_prompts']} scored prompts, {res['n_images']} images)", ""]
        cols = [*REPORT_METRICS, "ece"]
        lines.append("| system | " + " | ".join(_HEAD.get(c, c.upper()) for c in cols) + " | setting |")
        lines.append("|---" * (len(cols) + 2) + "|")
        for name, s in res["systems"].items():
            cells = [_cell(s["metrics"][m]) for m in REPORT_METRICS]
            cells.append(f"{s['reliability']['ece']:.3f}" if "reliability" in s else "-")
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {_setting(s)} |")
        lines.append("")
        notes = []
        for name, s in res["systems"].items():
            sel = st["select"]
            if f"delta_{sel}_vs_raw" in s:
                notes.append(f"- {name} vs raw: {sel} {_cell(s[f'delta_{sel}_vs_raw'])} (paired, x100)")
            if f"oracle_{sel}" in s:
                notes.append(f"- {name}: per-prompt oracle {sel} {100 * s[f'oracle_{sel}']:.1f} "
                             "(settings chosen on the test labels, as in the released files: optimistic)")
        lines += notes
        if res.get("reference"):
            ref = res["reference"]
            lines += ["", "Released per-prompt metrics of the authors (macro over their scored prompts, x100, "
                      "their scores, not recomputed):", "",
                      "| model | " + " | ".join(_HEAD[m] for m in ref["metrics"]) + " |",
                      "|---" * (len(ref["metrics"]) + 1) + "|"]
            for model, vals in ref["models"].items():
                lines.append(f"| {model} | " + " | ".join(f"{100 * vals[m]:.1f}" for m in ref["metrics"]) + " |")
        for plot in res.get("plots", []):
            lines += ["", f"![{plot}]({plot})"]
        lines.append("")
    return "\n".join(lines)


def write_report(results: Mapping[str, Any], out_dir: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write report.md, report.json, per_prompt.json and the PNG plots; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = dict(results)
    results["categories"] = {c: dict(r) for c, r in results["categories"].items()}
    paths: dict[str, Path] = {}
    if plots:
        from textnorm.eval.plots import plot_bars, plot_reliability

        for cat, res in results["categories"].items():
            made = [plot_bars(res, out / f"{cat}_{results['settings']['select']}.png",
                              metric=results["settings"]["select"]),
                    plot_reliability(res, out / f"{cat}_reliability.png")]
            res["plots"] = [p.name for p in made if p is not None]
            for p in made:
                if p is not None:
                    paths[p.stem] = p
    per_prompt = {c: r.pop("per_prompt", {}) for c, r in results["categories"].items()}
    paths["per_prompt.json"] = out / "per_prompt.json"
    paths["per_prompt.json"].write_text(json.dumps(_json_safe(per_prompt), indent=1) + "\n")
    paths["report.json"] = out / "report.json"
    paths["report.json"].write_text(json.dumps(_json_safe(results), indent=1) + "\n")
    paths["report.md"] = out / "report.md"
    paths["report.md"].write_text(render_markdown(results))
    return paths
