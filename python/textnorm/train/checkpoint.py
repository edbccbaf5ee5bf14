"""Checkpoints: one safetensors file per step, written atomically, plus SIGTERM handling.

A checkpoint holds the trainable denoiser weights, the optimizer state, the LR schedule state,
the trainer's own state (e.g. the DDPO stat tracker) and the RNG states of torch, numpy and
``random``. It is written to a temporary file in the same folder, flushed, fsync'ed and renamed,
so a run killed at any moment leaves either the previous checkpoint or the new one, never half of
one; :func:`latest_checkpoint` only ever sees complete files. No pickles.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

_NAME = re.compile(r"^step-(\d{8})\.safetensors$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:08d}.safetensors"


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The newest complete checkpoint in ``folder``, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)))
    return found[-1][1] if found else None


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """RNG states of torch (CPU and CUDA), numpy and random."""
    tensors = {"rng.torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state: Any = np.random.get_state()
    meta = {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "random": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.random.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    r = meta["random"]
    random.setstate((r[0], tuple(r[1]), r[2]))


def save_checkpoint(folder: str | Path, *, step: int, weights: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer | None = None, extra: dict[str, Any] | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None, keep: int = 2) -> Path:
    """Write ``step-XXXXXXXX.safetensors`` atomically and prune older ones beyond ``keep``.

    Args:
        folder: checkpoint folder (created).
        step: completed steps.
        weights: trainable weights by name (saved under ``weights.``).
        optimizer: saved under ``optim.``; its param groups as JSON metadata.
        extra: JSON-serialisable trainer state (stat tracker, LR schedule, config...).
        extra_tensors: more tensors (saved under ``extra.``).
        keep: complete checkpoints kept.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"weights.{k}": v.detach().cpu().contiguous() for k, v in weights.items()}
    meta: dict[str, Any] = {"step": step, "extra": extra or {}}
    if optimizer is not None:
        opt_tensors, meta["optimizer"] = _flatten_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
    rng_tensors, meta["rng"] = rng_state()
    tensors.update(rng_tensors)
    tensors.update({f"extra.{k}": v.detach().cpu().contiguous() for k, v in (extra_tensors or {}).items()})
    final = checkpoint_path(folder, step)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=folder)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"textnorm": json.dumps(meta)})
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    old = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)))
    for _, path in old[:-keep]:
        path.unlink(missing_ok=True)
    return final


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint: ``(tensors by full name, metadata dict)``."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads((fh.metadata() or {})["textnorm"])
    return load_file(str(path)), meta


def restore(tensors: dict[str, torch.Tensor], meta: dict[str, Any], *,
            optimizer: torch.optim.Optimizer | None = None, restore_rng: bool = True) -> dict[str, torch.Tensor]:
    """Load optimizer and RNG states; returns the weights (prefix stripped)."""
    if optimizer is not None and "optimizer" in meta:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    if restore_rng:
        set_rng_state(tensors, meta["rng"])
    return {k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}


class StopRequested(Exception):
    """Raised at a step boundary after SIGTERM (or SIGINT) so the run can checkpoint and exit."""


class SignalFlag:
    """Records SIGTERM/SIGINT instead of dying mid-step; the loop checks :attr:`raised`."""

    def __init__(self) -> None:
        self.raised: int | None = None

    def _handler(self, signum: int, _frame: Any) -> None:
        self.raised = signum

    @contextmanager
    def installed(self) -> Iterator[SignalFlag]:
        """Install the handlers for the context (main thread only; elsewhere a no-op)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGTERM,)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
