"""Rebuild this excerpt from the authors' full TIA2 files (run from the repository root):

    python tests/data/tia2/make_excerpt.py ../shared/tia2 tests/data/tia2

Keeps every counting prompt set, the first 45 composition and the first 15 comprehensive prompt
sets (plus the first left-out prompt when none of those is left out); human labels and alignment scores for 10 of the kept prompts per category (evenly spaced,
including at least one prompt whose images all share one majority label, which the metric files
leave out). Values are copied unchanged; only the JSON whitespace is more compact.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CATEGORIES = {"counting": 150, "composition": 45, "comprehensive": 15}
N_ANNOTATED = 10


def _majority(labels: list[int]) -> bool:
    return sum(1 for v in labels if v == 1) >= 2


def main(src: Path, dst: Path) -> None:
    for sub in ("prompts", "human_annotations", "alignment_scores"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    for cat, n_sets in CATEGORIES.items():
        prompts = json.loads((src / f"prompts/prompt_set_{cat}.json").read_text())
        labels = json.loads((src / f"human_annotations/human_labels_{cat}.json").read_text())
        scores = json.loads((src / f"alignment_scores/alignment_scores_{cat}.json").read_text())
        kept = list(prompts)[:n_sets]
        if all(p in scores for p in kept):  # keep one left-out prompt to test the exclusion
            kept.append(next(p for p in prompts if p not in scores))
        unscored = [p for p in kept if p not in scores]
        scored = [p for p in kept if p in scores]
        step = len(scored) / (N_ANNOTATED - len(unscored[:1]))
        chosen = set(unscored[:1]) | {scored[int(i * step)] for i in range(N_ANNOTATED - len(unscored[:1]))}
        out_prompts = {p: prompts[p] for p in kept}
        out_labels = {k: v for k, v in labels.items() if v["caption"] in chosen}
        out_scores = {p: v for p, v in scores.items() if p in chosen}
        (dst / f"prompts/prompt_set_{cat}.json").write_text(json.dumps(out_prompts, indent=1) + "\n")
        (dst / f"human_annotations/human_labels_{cat}.json").write_text(
            "{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in out_labels.items()) + "\n}\n"
        )
        (dst / f"alignment_scores/alignment_scores_{cat}.json").write_text(
            "{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in out_scores.items()) + "\n}\n"
        )
        print(cat, len(out_prompts), "prompt sets,", len(chosen), "annotated,", len(out_scores), "scored")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
