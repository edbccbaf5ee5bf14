"""Reading the label files of the benchmarks: JSON parsing and type checks with one error family.

Every failure (a missing or unreadable file, invalid UTF-8, invalid or too deeply nested JSON, a
value of the wrong type) raises a `TextnormError` that names the argument the file came from and
the file, line or key, so a command-line user sees one line saying what to fix. Values are
checked, never coerced: ``"101"`` is not a list of labels and ``null`` is not a path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textnorm._core import LayoutError, ParameterError

__all__ = ["LABELS", "label_list", "parse_json", "read_json", "read_text", "str_list", "string"]

#: The label values: 1 aligned, 0 not aligned, -1 missing.
LABELS = (-1, 0, 1)


def read_text(path: Path, *, name: str) -> str:
    """The UTF-8 text of `path`; `name` is the argument (or option) the path came from."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(f"{name}: {path} does not exist") from None
    except IsADirectoryError:
        raise ParameterError(f"{name}: expected a file, got the folder {path}") from None
    except UnicodeDecodeError as exc:
        raise LayoutError(f"{name}: {path} is not valid UTF-8 (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ParameterError(f"{name}: cannot read {path} ({exc.strerror or exc})") from None


def parse_json(text: str, *, name: str, where: str) -> Any:
    """JSON from `text`; `where` names the file (and line) in errors."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LayoutError(
            f"{name}: {where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise LayoutError(f"{name}: {where} nests JSON arrays or objects too deeply to read") from None


def read_json(path: Path, *, name: str) -> Any:
    """Parse the JSON file `path` (UTF-8)."""
    return parse_json(read_text(path, name=name), name=name, where=str(path))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def string(value: Any, *, name: str, where: str) -> str:
    """`value` if it is a str, else a LayoutError naming `where`."""
    if not isinstance(value, str):
        raise LayoutError(f"{name}: {where}: expected a string, got {type(value).__name__} {_show(value)}")
    return value


def str_list(value: Any, *, name: str, where: str) -> list[str]:
    """`value` if it is a JSON array of strings."""
    if not isinstance(value, list):
        raise LayoutError(f"{name}: {where}: expected a list of strings, got {type(value).__name__} {_show(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise LayoutError(
                f"{name}: {where}[{i}]: expected a string, got {type(item).__name__} {_show(item)}"
            )
    return value


def label_list(value: Any, *, name: str, where: str) -> list[int]:
    """`value` if it is a JSON array of integer labels in {-1, 0, 1} (booleans and floats refused)."""
    if not isinstance(value, list):
        raise ParameterError(
            f"{name}: {where}: expected a list of labels -1/0/1, got {type(value).__name__} {_show(value)}"
        )
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or item not in LABELS:
            raise ParameterError(f"{name}: {where}[{i}]: expected a label -1, 0 or 1, got {_show(item)}")
    return value
