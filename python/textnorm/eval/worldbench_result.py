"""What `textnorm.eval.worldbench` returns: per-category results and the run's report (Markdown and
JSON). Kept apart from the benchmark's sampling and scoring so each file reads on its own."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from textnorm.eval.benchmark import Benchmark
from textnorm.eval.bootstrap import Interval
from textnorm.eval.cache import RawScores
from textnorm.eval.diagnose import Diagnosis

__all__ = ["MD_METRICS", "CategoryResult", "WorldBenchResult", "interval_of"]

MD_METRICS: tuple[str, ...] = ("auroc", "auprc", "ap10")
_NAMES = {"auroc": "AUROC", "auprc": "AUPRC", "ap5": "AP@5", "ap10": "AP@10", "ap25": "AP@25",
          "spearman": "Spearman", "kendall": "Kendall", "pairwise_acc": "pairwise acc."}


@dataclass
class CategoryResult:
    """One category of one set.

    Attributes:
        set: "generated" or "renders".
        category: the prompt category.
        n_prompts: prompts scored (both labels present).
        n_candidates: prompts drawn (before one-label prompts were left out).
        n_images: images scored.
        positive_rate: share of scored images the judge calls aligned.
        unknown_rate: share of scored images the judge could not read.
        metrics: {system: {metric: Interval}} (macro mean over prompts, bootstrap interval).
        delta_auroc: {TextNorm system: paired AUROC difference to its scorer's raw reward}.
        usual_setting: {system: the setting chosen in most folds}.
        diagnosis: {scorer label: `Diagnosis`} on the same score matrices, labels included.
        evaluation: the harness's full output (`textnorm.eval.evaluate.evaluate_category`).
        bench: the labelled `Benchmark` (prompts, contrast sets, labels).
        raws: {scorer label: `RawScores`} behind every number here.
    """

    set: str
    category: str
    n_prompts: int
    n_candidates: int
    n_images: int
    positive_rate: float
    unknown_rate: float
    metrics: dict[str, dict[str, Interval]]
    delta_auroc: dict[str, Interval]
    usual_setting: dict[str, dict[str, Any]]
    diagnosis: dict[str, Diagnosis]
    evaluation: dict[str, Any] = field(repr=False)
    bench: Benchmark = field(repr=False)
    raws: dict[str, RawScores] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "set": self.set, "category": self.category, "n_prompts": self.n_prompts,
            "n_candidates": self.n_candidates, "n_images": self.n_images,
            "positive_rate": self.positive_rate, "unknown_rate": self.unknown_rate,
            "metrics": {s: {m: iv.as_dict() for m, iv in ms.items()} for s, ms in self.metrics.items()},
            "delta_auroc": {s: iv.as_dict() for s, iv in self.delta_auroc.items()},
            "usual_setting": self.usual_setting,
            "diagnosis": {s: {k: v for k, v in d.as_dict().items() if k != "per_group"}
                          for s, d in self.diagnosis.items()},
            "per_prompt": self.evaluation["per_prompt"],
        }


def interval_of(d: Mapping[str, Any]) -> Interval:
    return Interval(float(d["mean"]), float(d["lo"]), float(d["hi"]), int(d["n"]))


def _cell(iv: Interval | None) -> str:
    if iv is None or math.isnan(iv.mean):
        return "n/a"
    return f"{100 * iv.mean:.1f} [{100 * iv.lo:.1f}, {100 * iv.hi:.1f}]"


@dataclass
class WorldBenchResult:
    """Every set and category of a run, with the settings and timings.

    Attributes:
        settings: the configuration and scorer ids.
        sets: {set: {category: CategoryResult}}.
        seconds: wall time of each stage ("generate", "score", "evaluate").
    """

    settings: dict[str, Any]
    sets: dict[str, dict[str, CategoryResult]]
    seconds: dict[str, float]

    def systems(self) -> list[str]:
        """System names in report order."""
        for cats in self.sets.values():
            for res in cats.values():
                return list(res.metrics)
        return []

    def to_markdown(self, *, metrics: Sequence[str] = MD_METRICS) -> str:
        """Markdown tables: one per set and metric, systems x categories, "mean [95% interval]"
        in percent, then each scorer's image-only share from the diagnostic."""
        scorers = list(self.settings.get("scorers", []))
        lines: list[str] = []
        for set_name, cats in self.sets.items():
            if not cats:
                continue
            names = list(cats)
            sizes = ", ".join(f"{c} {r.n_prompts} prompts x {r.n_images // max(r.n_prompts, 1)} images "
                              f"({100 * r.positive_rate:.0f}% aligned)" for c, r in cats.items())
            title = ("Generator samples judged exactly" if set_name == "generated"
                     else "Renders and near-misses (easier)")
            lines += [f"#### {title}: {sizes}", ""]
            for metric in metrics:
                head = [_NAMES.get(metric, metric), *names]
                lines += ["| " + " | ".join(head) + " |", "|---" + "|---:" * len(names) + "|"]
                for system in cats[names[0]].metrics:
                    row = [system] + [_cell(cats[c].metrics.get(system, {}).get(metric)) for c in names]
                    lines.append("| " + " | ".join(row) + " |")
                if metric == metrics[0]:
                    for s in scorers:
                        row = [f"{s}: image-only share"] + [
                            _cell(cats[c].diagnosis[s].image_share) if s in cats[c].diagnosis else "n/a"
                            for c in names
                        ]
                        lines.append("| " + " | ".join(row) + " |")
                    for s in scorers:
                        if all(cats[c].diagnosis.get(s) is None or cats[c].diagnosis[s].looks_share is None
                               for c in names):
                            continue
                        row = [f"{s}: looks share"] + [
                            _cell(cats[c].diagnosis[s].looks_share) if s in cats[c].diagnosis else "n/a"
                            for c in names
                        ]
                        lines.append("| " + " | ".join(row) + " |")
                lines.append("")
        s = self.settings
        lines.append(
            f"Per-prompt metrics macro-averaged over held-out prompts with both labels; 95% bootstrap "
            f"intervals over prompts; scale, lambda and method chosen by {s['folds']}-fold cross-validation "
            f"over prompts; world contrast sets of {s['contrast_k']} prompts; seed {s['seed']}. "
            "Image-only share: the part of each prompt's score spread that its contrast set shares "
            "(the row term, which TextNorm removes); looks share: the part that the image's mean score "
            f"over {s['reference_k']} unrelated prompts explains (`textnorm diagnose`)."
        )
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready results (per-prompt metrics included)."""
        return {
            "settings": self.settings,
            "seconds": self.seconds,
            "sets": {k: {c: r.as_dict() for c, r in v.items()} for k, v in self.sets.items()},
        }
