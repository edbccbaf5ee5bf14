"""A generic JSON Lines format for other human-label data, loaded into the same :class:`Benchmark`.

One line per image::

    {"prompt": "two red cubes", "image": "img/000.png", "labels": [1, 0, 1],
     "category": "counting", "contrast": ["one red cube", "three red cubes"]}

- ``prompt``, ``image`` and ``labels`` are required; labels are 1 (aligned), 0 (not aligned) or
  -1 (missing), any number per image (rows are padded with -1 to the widest).
- ``category`` is optional (``"default"`` when absent).
- ``contrast`` is optional; give it on at least one line of a prompt; lines of the same prompt
  that give it must agree. A prompt without one has an empty contrastive set (TextNorm then
  returns 1 for it, so such data suits only the raw rewards).
- Relative image paths are resolved against ``images_dir``, else the JSONL file's folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from textnorm._core import LayoutError, ParameterError
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
    with path.open(encoding="utf-8") as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise LayoutError(f"path: {where} is not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise LayoutError(f"path: {where}: expected a JSON object, got {type(row).__name__}")
            prompt = str(_field(row, "prompt", where))
            image = str(_field(row, "image", where))
            labels = _field(row, "labels", where)
            if not isinstance(labels, list) or not all(v in (-1, 0, 1) and not isinstance(v, bool) for v in labels):
                raise ParameterError(f"path: {where}: labels must be a list of -1/0/1, got {labels!r}")
            contrast = row.get("contrast")
            bad_contrast = not isinstance(contrast, list) or not all(isinstance(c, str) for c in contrast)
            if contrast is not None and bad_contrast:
                raise LayoutError(f"path: {where}: contrast must be a list of strings, got {contrast!r}")
            prompts = cats.setdefault(str(row.get("category", "default")), {})
            old_contrast, images, rows = prompts.setdefault(prompt, (contrast, [], []))
            if contrast is not None and old_contrast is not None and contrast != old_contrast:
                raise LayoutError(f"path: {where}: contrast of {prompt!r} differs from an earlier line")
            if old_contrast is None and contrast is not None:
                prompts[prompt] = (contrast, images, rows)
            images.append(image)
            rows.append([int(v) for v in labels])
    if not cats:
        raise LayoutError(f"path: {path} holds no records")
    out: dict[str, Benchmark] = {}
    for cat, prompts in cats.items():
        recs = {p: (c or [], imgs, rows) for p, (c, imgs, rows) in prompts.items()}
        out[cat] = from_records(name, cat, recs, images_dir=base)
        if require_images:
            out[cat].check_images()
    return out
