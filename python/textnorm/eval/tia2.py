"""Loader for TIA2 (Kim et al., ICLR 2024): the authors' JSON files plus a folder of images.

Layout under ``root`` (the published files, unchanged)::

    prompts/prompt_set_{category}.json              {target prompt: [contrastive prompts]}
    human_annotations/human_labels_{category}.json  {image file: {"image", "caption", "human_labels"}}
    alignment_scores/alignment_scores_{category}.json  the authors' per-prompt metrics (optional)

Images are matched to prompts by their ``caption`` (the prompt), never by the prompt index in the
file name: in the comprehensive category the index does not follow the prompt file's order. The
images themselves are not in the release; ``images_dir`` points at the downloaded folder, either
flat or with one sub-folder per category.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from textnorm._core import LayoutError, ParameterError
from textnorm.eval.benchmark import Benchmark, from_records

__all__ = ["CATEGORIES", "authors_reference", "load_tia2", "load_tia2_prompt_sets", "load_tia2_scores"]

CATEGORIES: tuple[str, ...] = ("counting", "composition", "comprehensive")


def _read(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ParameterError(f"root: expected the TIA2 {what} file at {path}, but it does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LayoutError(f"root: {path} is not valid JSON ({exc})") from exc


def _category(category: str) -> str:
    if category not in CATEGORIES:
        raise ParameterError(f"category: expected one of {', '.join(CATEGORIES)}, got {category!r}")
    return category


def _images_dir(images_dir: str | os.PathLike[str] | None, category: str) -> Path | None:
    if images_dir is None:
        return None
    base = Path(images_dir)
    if not base.is_dir():
        raise ParameterError(f"images_dir: expected a folder of TIA2 images, got {base} (not a folder)")
    sub = base / category
    return sub if sub.is_dir() else base


def load_tia2(
    root: str | os.PathLike[str],
    category: str,
    images_dir: str | os.PathLike[str] | None = None,
    *,
    require_images: bool | None = None,
    label_missing: str = "half",
) -> Benchmark:
    """Load one TIA2 category.

    Args:
        root: folder with ``prompts/`` and ``human_annotations/``.
        category: ``"counting"``, ``"composition"`` or ``"comprehensive"``.
        images_dir: folder with the images (``{images_dir}/{category}/`` is used when it exists);
            None when only the annotations are needed.
        require_images: check that every image file exists and raise one error naming how many are
            missing and where it looked; default: True when ``images_dir`` is given.
        label_missing: how missing labels enter the mean-label target (see ``label_mean``).

    Returns:
        A :class:`Benchmark` with one entry per annotated prompt, in prompt-file order, images in
        annotation-file order.

    Example:
        >>> bench = load_tia2(tia2_root, "counting")
        >>> bench.labels(bench.prompts[0]).shape
        (50, 3)
    """
    category = _category(category)
    root = Path(root)
    prompt_sets = _read(root / "prompts" / f"prompt_set_{category}.json", "prompt set")
    annotations = _read(root / "human_annotations" / f"human_labels_{category}.json", "human label")
    if not isinstance(prompt_sets, dict) or not isinstance(annotations, dict):
        raise LayoutError(f"root: expected JSON objects in the TIA2 {category} files under {root}")
    per_prompt: dict[str, tuple[list[str], list[list[int]]]] = {}
    for name, entry in annotations.items():
        try:
            caption, labels = entry["caption"], [int(v) for v in entry["human_labels"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise LayoutError(f"root: annotation {name!r} of {category} lacks caption/human_labels") from exc
        if caption not in prompt_sets:
            raise LayoutError(
                f"root: annotation {name!r} has caption {caption!r}, absent from the {category} prompt set"
            )
        images, rows = per_prompt.setdefault(caption, ([], []))
        images.append(str(entry.get("image", name)))
        rows.append(labels)
    records = {p: (prompt_sets[p], *per_prompt[p]) for p in prompt_sets if p in per_prompt}
    bench = from_records("tia2", category, records, images_dir=_images_dir(images_dir, category))
    bench.label_missing = label_missing
    if require_images is None:
        require_images = images_dir is not None
    if require_images:
        bench.check_images()
    return bench


def load_tia2_prompt_sets(root: str | os.PathLike[str], category: str) -> dict[str, list[str]]:
    """The {target: [contrastive prompts]} file of a category (all prompts, annotated or not)."""
    data = _read(Path(root) / "prompts" / f"prompt_set_{_category(category)}.json", "prompt set")
    return {str(k): [str(x) for x in v] for k, v in data.items()}


def load_tia2_scores(root: str | os.PathLike[str], category: str) -> dict[str, dict[str, Any]]:
    """The authors' per-prompt metrics ``alignment_scores_{category}.json``:
    {prompt: {"human": float, model: {metric: value}}}."""
    data = _read(Path(root) / "alignment_scores" / f"alignment_scores_{_category(category)}.json", "alignment score")
    return dict(data)


def authors_reference(root: str | os.PathLike[str], category: str) -> dict[str, Any] | None:
    """Macro means of the authors' released per-prompt metrics, per model (their scores, their
    per-prompt TextNorm settings); None when the file is absent."""
    path = Path(root) / "alignment_scores" / f"alignment_scores_{_category(category)}.json"
    if not path.is_file():
        return None
    from textnorm.eval.metrics import METRICS, macro_average

    rows = load_tia2_scores(root, category)
    models = [m for m, v in next(iter(rows.values())).items() if isinstance(v, dict)]
    return {
        "metrics": list(METRICS),
        "models": {m: macro_average({p: {k: r[m][k] for k in METRICS} for p, r in rows.items()}) for m in models},
        "n_prompts": len(rows),
    }
