"""A JSONL cache of model answers keyed by (backend, model, instruction, prompt): nothing is
asked twice, and an interrupted run resumes where it stopped (each answer is appended and
flushed as soon as it arrives; a truncated last line from a crash is ignored)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_key(backend: str, model: str, instruction: str, prompt: str) -> str:
    """A stable key for one request."""
    blob = json.dumps([backend, model, instruction, prompt], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JsonlCache:
    """Answers stored one JSON object a line: ``{"key", "backend", "model", "prompt", "answer"}``.

    Args:
        path: the cache file (created with its folder on first write).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._answers: dict[str, str] = {}
        self.skipped_lines = 0
        if self.path.is_file():
            with self.path.open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        self._answers[str(rec["key"])] = str(rec["answer"])
                    except (json.JSONDecodeError, KeyError, TypeError):
                        self.skipped_lines += 1  # e.g. the half-written line of a killed run

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: str) -> str | None:
        return self._answers.get(key)

    def put(self, key: str, answer: str, *, backend: str, model: str, prompt: str) -> None:
        self._answers[key] = answer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rec = {"key": key, "backend": backend, "model": model, "prompt": prompt, "answer": answer}
        with self.path.open("a", encoding="utf-8") as f:
            if f.tell() > 0 and not self._ends_with_newline():
                f.write("\n")  # keep a truncated line from swallowing this record
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"
