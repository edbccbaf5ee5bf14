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

import os
from pathlib import Path
from typing import Any

from textnorm._core import LayoutError, ParameterError
from textnorm.eval._files import label_list, read_json, str_list, string
from textnorm.eval.benchmark import Benchmark, from_records

__all__ = ["CATEGORIES", "authors_reference", "load_tia2", "load_tia2_prompt_sets", "load_tia2_scores"]

CATEGORIES: tuple[str, ...] = ("counting", "composition", "comprehensive")


def _read(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ParameterError(f"root: expected the TIA2 {what} file at {path}, but it does not exist")
    data = read_json(path, name="root")
    if not isinstance(data, dict):
        raise LayoutError(f"root: {path}: expected a JSON object, got {type(data).__name__}")
    return data


def _prompt_sets(path: Path) -> dict[str, list[str]]:
    """{target: [contrastive prompts]}, every value checked to be a list of strings."""
    data = _read(path, "prompt set")
    return {k: str_list(v, name="root", where=f"{path}: [{k!r}]") for k, v in data.items()}


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
    prompt_sets = _prompt_sets(root / "prompts" / f"prompt_set_{category}.json")
    labels_path = root / "human_annotations" / f"human_labels_{category}.json"
    annotations = _read(labels_path, "human label")
    per_prompt: dict[str, tuple[list[str], list[list[int]]]] = {}
    for name, entry in annotations.items():
        where = f"{labels_path}: [{name!r}]"
        if not isinstance(entry, dict):
            raise LayoutError(f"root: {where}: expected an object with caption and human_labels, "
                              f"got {type(entry).__name__}")
        for key in ("caption", "human_labels"):
            if key not in entry:
                raise LayoutError(f"root: {where}: lacks the required field {key!r}")
        caption = string(entry["caption"], name="root", where=f"{where}.caption")
        labels = label_list(entry["human_labels"], name="root", where=f"{where}.human_labels")
        image = string(entry.get("image", name), name="root", where=f"{where}.image")
        if caption not in prompt_sets:
            raise LayoutError(
                f"root: annotation {name!r} has caption {caption!r}, absent from the {category} prompt set"
            )
        images, rows = per_prompt.setdefault(caption, ([], []))
        images.append(image)
        rows.append(list(labels))
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
    return _prompt_sets(Path(root) / "prompts" / f"prompt_set_{_category(category)}.json")


def load_tia2_scores(root: str | os.PathLike[str], category: str) -> dict[str, dict[str, Any]]:
    """The authors' per-prompt metrics ``alignment_scores_{category}.json``:
    {prompt: {"human": float, model: {metric: value}}}.

    Every prompt must carry the same models, each with a number for every metric of
    :data:`~textnorm.eval.metrics.METRICS` (JSON null, the authors' NaN, is read as NaN)."""
    from textnorm.eval.metrics import METRICS

    path = Path(root) / "alignment_scores" / f"alignment_scores_{_category(category)}.json"
    rows = _read(path, "alignment score")
    if not rows:
        raise LayoutError(f"root: {path}: expected per-prompt scores, got an empty object")
    models: list[str] | None = None
    for prompt, row in rows.items():
        where = f"{path}: [{prompt!r}]"
        if not isinstance(row, dict):
            raise LayoutError(f"root: {where}: expected an object {{model: {{metric: value}}}}, "
                              f"got {type(row).__name__}")
        found = [m for m, v in row.items() if isinstance(v, dict)]
        if models is None:
            models = found
        elif found != models:
            raise LayoutError(f"root: {where}: expected the models {models} of the first prompt, got {found}")
        for model in found:
            for metric in METRICS:
                value = row[model].get(metric, "absent")
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise LayoutError(f"root: {where}[{model!r}][{metric!r}]: expected a number, got {value!r}")
    return dict(rows)


def authors_reference(root: str | os.PathLike[str], category: str) -> dict[str, Any] | None:
    """Macro means of the authors' released per-prompt metrics, per model (their scores, their
    per-prompt TextNorm settings); None when the file is absent."""
    path = Path(root) / "alignment_scores" / f"alignment_scores_{_category(category)}.json"
    if not path.is_file():
        return None
    from textnorm.eval.metrics import METRICS, macro_average

    rows = load_tia2_scores(root, category)
    models = [m for m, v in next(iter(rows.values())).items() if isinstance(v, dict)]
    nan = float("nan")
    return {
        "metrics": list(METRICS),
        "models": {
            m: macro_average({p: {k: nan if r[m][k] is None else float(r[m][k]) for k in METRICS} for p, r in rows.items()})
            for m in models
        },
        "n_prompts": len(rows),
    }
