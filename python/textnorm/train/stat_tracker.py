"""Per-prompt reward statistics for DDPO advantages.

For each prompt a buffer keeps its most recent ``buffer_size`` rewards. A sample's advantage is
``(r - mean) / (max(std, std_floor) + eps)`` over its prompt's buffer (after adding the current
batch) when the buffer holds at least ``min_count`` rewards, else over the whole current batch.
``std_floor`` (reward units, default 0) keeps a prompt whose rewards all but tie (saturated) from
having its rounding noise scaled up to unit-variance advantages. The state is plain data, saved
with every checkpoint.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence

import numpy as np

EPS = 1e-6


class PerPromptStatTracker:
    """Running per-prompt mean/std with a batch-statistics fallback.

    Args:
        buffer_size: rewards kept per prompt (oldest dropped first).
        min_count: rewards a prompt's buffer needs before its own statistics are used.
        std_floor: the smallest standard deviation divided by.
    """

    def __init__(self, *, buffer_size: int, min_count: int, std_floor: float = 0.0) -> None:
        self.buffer_size = buffer_size
        self.min_count = min_count
        self.std_floor = std_floor
        self.buffers: dict[str, deque[float]] = {}

    def update(self, prompts: Sequence[str], rewards: np.ndarray) -> np.ndarray:
        """Add a batch and return its advantages (float64, same order).

        Args:
            prompts: one prompt per reward.
            rewards: (N,) rewards of the whole (global) batch.
        """
        rewards = np.asarray(rewards, dtype=np.float64)
        advantages = np.empty_like(rewards)
        batch_mean, batch_std = rewards.mean(), rewards.std()
        order = list(dict.fromkeys(prompts))
        prompt_arr = np.asarray(prompts, dtype=object)
        for prompt in order:
            mask = prompt_arr == prompt
            buf = self.buffers.setdefault(prompt, deque(maxlen=self.buffer_size))
            buf.extend(rewards[mask].tolist())
            if len(buf) < self.min_count:
                mean, std = batch_mean, batch_std
            else:
                values = np.fromiter(buf, dtype=np.float64)
                mean, std = values.mean(), values.std()
            advantages[mask] = (rewards[mask] - mean) / (max(std, self.std_floor) + EPS)
        return advantages

    def stats(self) -> dict[str, float]:
        """Number of prompts tracked and mean buffer length (for logs)."""
        lengths = [len(b) for b in self.buffers.values()]
        return {"prompts": float(len(lengths)), "mean_buffer": float(np.mean(lengths)) if lengths else 0.0}

    def state_json(self) -> str:
        """The state as JSON (for checkpoint metadata)."""
        return json.dumps({"buffer_size": self.buffer_size, "min_count": self.min_count,
                           "buffers": {k: list(v) for k, v in self.buffers.items()}})

    def load_state_json(self, text: str) -> None:
        """Restore :meth:`state_json` output."""
        data = json.loads(text)
        self.buffer_size = int(data["buffer_size"])
        self.min_count = int(data["min_count"])
        self.buffers = {k: deque((float(x) for x in v), maxlen=self.buffer_size)
                        for k, v in data["buffers"].items()}
