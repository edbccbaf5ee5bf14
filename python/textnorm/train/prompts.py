"""Prompt sources for training: a file, the TIA2 prompt sets, a callable, or an inline list, each
split into training prompts and held-out evaluation prompts.

Each prompt carries a metadata dict passed to the reward (for example its contrastive prompts
when the source provides them: TIA2 JSON files and ``{prompt: [contrastive...]}`` files do).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textnorm._core import ParameterError
from textnorm.train.config import PromptConfig


@dataclass
class PromptSet:
    """Training and evaluation prompts with one metadata dict per prompt."""

    train: list[str]
    eval: list[str]
    train_meta: list[dict[str, Any]] = field(default_factory=list)
    eval_meta: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.train_meta = self.train_meta or [{} for _ in self.train]
        self.eval_meta = self.eval_meta or [{} for _ in self.eval]


def resolve_target(spec: str, *, option: str) -> Any:
    """Import ``module:attr`` or ``path/to/file.py:attr``."""
    if ":" not in spec:
        raise ParameterError(f"{option}: expected 'module:attr' or 'file.py:attr', received {spec!r}")
    where, attr = spec.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where)
            if not path.is_file():
                raise ParameterError(f"{option}: expected an existing Python file, received {where!r}")
            mod_spec = importlib.util.spec_from_file_location(f"_textnorm_user_{path.stem}", path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
        return getattr(module, attr)
    except ParameterError:
        raise
    except (ImportError, AttributeError) as err:
        raise ParameterError(f"{option}: could not import {spec!r}: {err}") from err


def _entries(obj: Any, *, option: str) -> list[tuple[str, dict[str, Any]]]:
    """Normalise a list of prompts / dicts / (prompt, meta) pairs or a {prompt: contrastive} dict."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(obj, dict):
        for prompt, contrastive in obj.items():
            out.append((str(prompt), {"contrastive": list(contrastive)} if contrastive else {}))
        return out
    for item in obj:
        if isinstance(item, str):
            out.append((item, {}))
        elif isinstance(item, dict) and isinstance(item.get("prompt"), str):
            out.append((item["prompt"], {k: v for k, v in item.items() if k != "prompt"}))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
            out.append((item[0], dict(item[1])))
        else:
            raise ParameterError(f"{option}: expected prompts as strings, {{'prompt': ...}} dicts "
                                 f"or (prompt, metadata) pairs, received {item!r}")
    return out


def read_prompt_file(path: str | Path, *, option: str = "prompts.path") -> list[tuple[str, dict[str, Any]]]:
    """Read ``.txt`` (one prompt a line, ``#`` comments), ``.json`` or ``.jsonl`` prompts."""
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"{option}: expected an existing prompt file, received {str(p)!r}")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".json":
        entries = _entries(json.loads(text), option=option)
    elif p.suffix == ".jsonl":
        entries = _entries([json.loads(line) for line in text.splitlines() if line.strip()], option=option)
    else:
        entries = [(line.strip(), {}) for line in text.splitlines()
                   if line.strip() and not line.strip().startswith("#")]
    entries = [(s, m) for s, m in entries if s.strip()]
    if not entries:
        raise ParameterError(f"{option}: expected at least one prompt, received the empty file {str(p)!r}")
    return entries


def tia2_prompts(root: str | Path, sets: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """TIA2 target prompts with their contrastive prompts and category as metadata."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name in sets:
        path = Path(root) / "prompts" / f"prompt_set_{name}.json"
        if not path.is_file():
            raise ParameterError(f"prompts.tia2_sets: expected {str(path)!r} (TIA2 root in "
                                 f"prompts.path), received a missing file for set {name!r}")
        for prompt, contrastive in json.loads(path.read_text(encoding="utf-8")).items():
            out.append((prompt, {"contrastive": list(contrastive), "category": name}))
    return out


def load_prompts(cfg: PromptConfig, *, seed: int,
                 source: Callable[[], Any] | None = None) -> PromptSet:
    """Build the prompt set described by ``cfg`` (``source`` overrides a callable target).

    Evaluation prompts come from ``cfg.eval_path`` when given, else a seeded ``eval_fraction``
    share of the prompts (at least one when there are two or more) is held out.
    """
    if source is not None or cfg.source == "callable":
        if source is None:
            if not cfg.target:
                raise ParameterError("prompts.target: expected 'module:attr' for source = "
                                     "'callable', received nothing")
            source = resolve_target(cfg.target, option="prompts.target")
        entries = _entries(source(), option="prompts.target")
    elif cfg.source == "file":
        if not cfg.path:
            raise ParameterError("prompts.path: expected a prompt file, received nothing")
        entries = read_prompt_file(cfg.path)
    elif cfg.source == "tia2":
        if not cfg.path:
            raise ParameterError("prompts.path: expected the TIA2 root folder, received nothing")
        entries = tia2_prompts(cfg.path, cfg.tia2_sets)
    else:
        entries = _entries(cfg.prompts, option="prompts.prompts")
    if not entries:
        raise ParameterError(f"prompts: expected at least one prompt from source {cfg.source!r}, "
                             "received none")
    if cfg.eval_path:
        evals = read_prompt_file(cfg.eval_path, option="prompts.eval_path")
        train = entries
    elif cfg.eval_prompts:
        evals = _entries(cfg.eval_prompts, option="prompts.eval_prompts")
        train = entries
    else:
        n_eval = int(round(cfg.eval_fraction * len(entries)))
        if cfg.eval_fraction > 0 and len(entries) >= 2:
            n_eval = max(1, min(n_eval, len(entries) - 1))
        order = np.random.default_rng(seed).permutation(len(entries))
        held = set(order[:n_eval].tolist())
        evals = [e for i, e in enumerate(entries) if i in held]
        train = [e for i, e in enumerate(entries) if i not in held]
    evals = evals[: cfg.max_eval_prompts]
    return PromptSet(train=[p for p, _ in train], eval=[p for p, _ in evals],
                     train_meta=[m for _, m in train], eval_meta=[m for _, m in evals])
