"""A generic JSON Lines format for other human-label data, loaded into the same :class:`Benchmark`.

One line per image::

    {"prompt": "two red cubes", "image": "img/000.png", "labels": [1, 0, 1],
     "category": "counting", "contrast": ["one red cube", "three red cubes"]}

- ``prompt``, ``image`` and ``labels`` are required; labels are 1 (aligned), 0 (not aligned) or
  -1 (missing), JSON integers, any number per image (rows are padded with -1 to the widest).
- ``category`` is optional (``"default"`` when absent).
- Types are checked, never coerced (``"image": null`` is an error, not the path ``None``); every
  error names the file and line.
- ``contrast`` is optional; give it on at least one line of a prompt; lines of the same prompt
  that give it must agree. A prompt without one has an empty contrastive set (TextNorm then
  returns 1 for it, so such data suits only the raw rewards).
- Relative image paths are resolved against ``images_dir``, else the JSONL file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textnorm._core import LayoutError, ParameterError
from textnorm.eval._files import label_list, parse_json, read_text, str_list, string
from textnorm.eval.benchmark import Benchmark, from_records

__all__ = ["load_jsonl"]


def _field(row: dict[str, Any], key: str, where: str) -> Any:
    if key not in row:
        raise LayoutError(f"path: {where} lacks the required field {key!r}")
    return row[key]


def load_jsonl(
    path: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    require_images: bool = False,
    name: str = "jsonl",
) -> dict[str, Benchmark]:
    """Load a JSON Lines label file into one :class:`Benchmark` per category.

    Args:
        path: the ``.jsonl`` file.
        images_dir: base folder of relative image paths (default: the file's folder).
        require_images: raise one error naming how many image files are missing.
        name: benchmark name used in reports and in the score-cache key.

    Returns:
        {category: Benchmark}, categories and prompts in first-seen order.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"path: expected a JSON Lines file, got {path} (not a file)")
    base = Path(images_dir) if images_dir is not None else path.parent
    cats: dict[str, dict[str, tuple[list[str] | None, list[str], list[list[int]]]]] = {}
    for no, line in enumerate(read_text(path, name="path").split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        row = parse_json(line, name="path", where=where)
        if not isinstance(row, dict):
            raise LayoutError(f"path: {where}: expected a JSON object, got {type(row).__name__}")
        prompt = string(_field(row, "prompt", where), name="path", where=f"{where}: prompt")
        image = string(_field(row, "image", where), name="path", where=f"{where}: image")
        labels = label_list(_field(row, "labels", where), name="path", where=f"{where}: labels")
        contrast = row.get("contrast")
        if contrast is not None:
            contrast = str_list(contrast, name="path", where=f"{where}: contrast")
        category = string(row.get("category", "default"), name="path", where=f"{where}: category")
        prompts = cats.setdefault(category, {})
        old_contrast, images, rows = prompts.setdefault(prompt, (contrast, [], []))
        if contrast is not None and old_contrast is not None and contrast != old_contrast:
            raise LayoutError(f"path: {where}: contrast of {prompt!r} differs from an earlier line")
        if old_contrast is None and contrast is not None:
            prompts[prompt] = (contrast, images, rows)
        images.append(image)
        rows.append(list(labels))
    if not cats:
        raise LayoutError(f"path: {path} holds no records")
    out: dict[str, Benchmark] = {}
    for cat, prompts in cats.items():
        recs = {p: (c or [], imgs, rows) for p, (c, imgs, rows) in prompts.items()}
        out[cat] = from_records(name, cat, recs, images_dir=base)
        if require_images:
            out[cat].check_images()
    return out
