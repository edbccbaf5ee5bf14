"""Checkpoints: one safetensors file per step, written atomically, plus SIGTERM handling.

A checkpoint holds the trainable denoiser weights, the optimizer state, the LR schedule state,
the trainer's own state (e.g. the DDPO stat tracker) and the RNG states of torch, numpy and
``random``. It is written to a temporary file in the same folder, flushed, fsync'ed and renamed,
so a run killed at any moment leaves either the previous checkpoint or the new one, never half of
one (the killed writer's ``.tmp-*`` file is removed by the next save or resume). No pickles.

Every checkpoint carries a SHA-256 of its metadata and of every tensor (name, dtype, shape,
bytes). Resuming (:func:`find_resumable`) verifies the newest checkpoint fully (readable, checksum,
and every trainable weight and optimizer tensor present with this model's shapes) before using
it; a damaged one is skipped with a :class:`DamagedCheckpointWarning` naming the file, and the
newest intact one is used; when none is intact, :class:`CheckpointError` says why for each.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from textnorm._core import TextnormError

_NAME = re.compile(r"^step-(\d{8})\.safetensors$")
_META, _DIGEST = "textnorm", "textnorm.sha256"


class CheckpointError(TextnormError):
    """No usable checkpoint: each one found is damaged or belongs to another model."""


class DamagedCheckpointWarning(UserWarning):
    """A checkpoint was skipped because it is damaged or does not fit the model."""


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


def checksum(tensors: Mapping[str, torch.Tensor], meta_json: str) -> str:
    """SHA-256 of the metadata text and of each tensor's name, dtype, shape and bytes (by name)."""
    h = hashlib.sha256(meta_json.encode("utf-8"))
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete ``.tmp-*`` files a killed writer left in ``folder``; returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(".tmp-") and p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


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
    remove_temporaries(folder)
    meta_json = json.dumps(meta)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=folder)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={_META: meta_json, _DIGEST: checksum(tensors, meta_json)})
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


def load_checkpoint(path: str | Path, *, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint: ``(tensors by full name, metadata dict)``.

    Raises:
        CheckpointError: the file is empty, unreadable, lacks textnorm's metadata, or (with
            ``verify``) its checksum does not match its content. Checkpoints written before
            checksums existed are read with a :class:`DamagedCheckpointWarning`.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise CheckpointError(f"{path}: the file is empty")
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        tensors = load_file(str(path))
    except CheckpointError:
        raise
    except Exception as err:  # safetensors' errors for truncated or random bytes vary by version
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(err).__name__}: "
                              f"{str(err)[:200]})") from err
    meta_json = header.get(_META)
    if meta_json is None:
        raise CheckpointError(f"{path}: no textnorm metadata (not a textnorm checkpoint)")
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: its textnorm metadata is not valid JSON ({err})") from err
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int) or meta["step"] < 0:
        raise CheckpointError(f"{path}: its metadata holds no step count")
    if verify:
        digest = header.get(_DIGEST)
        if digest is None:
            warnings.warn(f"{path}: no checksum (written before textnorm checksummed checkpoints); "
                          "checked for completeness only", DamagedCheckpointWarning, stacklevel=2)
        elif digest != checksum(tensors, meta_json):
            raise CheckpointError(f"{path}: checksum mismatch: its tensors or metadata changed "
                                  "after it was written")
    return tensors, meta


def check_fits(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
               params: Mapping[str, torch.Tensor], *, optimizer: torch.optim.Optimizer | None = None,
               ) -> None:
    """Raise CheckpointError unless the checkpoint holds every trainable weight in ``params``
    (and nothing else), each of its shape, optimizer state shaped like them, and RNG states."""
    weights = {k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")}
    missing = [n for n in params if n not in weights]
    unknown = [n for n in weights if n not in params]
    if missing:
        raise CheckpointError(f"holds {len(params) - len(missing)} of the model's {len(params)} "
                              f"trainable weights (missing {missing[0]!r})")
    if unknown:
        raise CheckpointError(f"holds weights this model does not train, such as {unknown[0]!r} "
                              "(another model, or another LoRA or fine-tuning setting)")
    for name, p in params.items():
        if tuple(weights[name].shape) != tuple(p.shape):
            raise CheckpointError(f"weight {name!r} has shape {tuple(weights[name].shape)}, the model "
                                  f"{tuple(p.shape)}")
    if "rng.torch" not in tensors or "rng" not in meta:
        raise CheckpointError("holds no random-number-generator state")
    if optimizer is not None:
        order = [p for g in optimizer.param_groups for p in g["params"]]
        groups = meta.get("optimizer", {}).get("param_groups")
        if not isinstance(groups, list) or sum(len(g.get("params", [])) for g in groups) != len(order):
            raise CheckpointError(f"its optimizer state covers another number of parameters than "
                                  f"this run's {len(order)}")
        for name, value in tensors.items():
            if not name.startswith("optim."):
                continue
            _, idx, key = name.split(".", 2)
            if not idx.isdigit() or int(idx) >= len(order):
                raise CheckpointError(f"optimizer tensor {name!r} names no parameter of this run")
            if value.ndim and tuple(value.shape) != tuple(order[int(idx)].shape):
                raise CheckpointError(f"optimizer tensor {name!r} has shape {tuple(value.shape)}, "
                                      f"its parameter {tuple(order[int(idx)].shape)}")


def find_resumable(folder: str | Path, *,
                   check: Callable[[dict[str, torch.Tensor], dict[str, Any]], None] | None = None,
                   ) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]] | None:
    """The newest checkpoint in ``folder`` that is intact and passes ``check``, loaded.

    Damaged ones are skipped with a :class:`DamagedCheckpointWarning` naming the file.

    Returns:
        ``(path, tensors, metadata)``, or None when ``folder`` holds no checkpoint at all.

    Raises:
        CheckpointError: checkpoints exist but none is usable (each one's reason is given).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))),
                   reverse=True)
    reasons: list[str] = []
    for _, path in found:
        try:
            tensors, meta = load_checkpoint(path)
            if check is not None:
                try:
                    check(tensors, meta)
                except CheckpointError as err:
                    raise CheckpointError(f"{path}: {err}") from err
        except CheckpointError as err:
            reasons.append(str(err))
            warnings.warn(f"resume: skipping checkpoint {err}", DamagedCheckpointWarning, stacklevel=2)
            continue
        return path, tensors, meta
    if not reasons:
        return None
    raise CheckpointError(f"resume: no intact checkpoint in {folder}: " + "; ".join(reasons) +
                          ". Remove them (or set resume = false with a new run.output_dir) to start "
                          "afresh")


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
