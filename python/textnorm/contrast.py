"""Contrastive prompt sets: near-misses of each target prompt for TextNorm's confidence.

``contrast(prompts)`` runs the rule-based generator of the Rust core (``rust/contrast``):
counts, dropped or hybrid objects, other objects, colours and attributes, swapped attribute
bindings, flipped or swapped spatial relations (the rules are listed in ``RULES``; those run
by default in ``DEFAULT_RULES``). ``ContrastiveSets`` holds the result in the CSR layout
``textnorm.confidence`` takes and reads and writes the TIA2 JSON format. ``vocabulary=``
(or ``Lexicon.restricted``) keeps every word a rule writes inside a given vocabulary.

Example:
    >>> import textnorm
    >>> sets = textnorm.contrast(["a realistic photo of two cats"], rules=["count"])
    >>> sets[0]
    ['a realistic photo of a cat', 'a realistic photo of three cats', 'a realistic photo of four cats']
    >>> sets.offsets.tolist(), sets.rules(0)
    ([0, 4], ['count', 'count', 'count'])
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textnorm import _core
from textnorm._contrast_args import int_arg, str_list
from textnorm._contrast_lexicon import Lexicon
from textnorm._core import LayoutError, ParameterError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_RULES", "RULES", "ContrastiveSets", "Lexicon", "contrast", "dedup_key"]

#: Every rule name, in the order rules run and are listed.
RULES: tuple[str, ...] = tuple(_core.contrast_rule_names())
#: The rules ``rules=None`` runs (all but ``joint_count``, whose prompts change two counts).
DEFAULT_RULES: tuple[str, ...] = tuple(_core.contrast_default_rule_names())
#: Default of ``max_bytes``: candidate text one ``contrast`` call may write (1 GiB).
DEFAULT_MAX_BYTES: int = _core.CONTRAST_DEFAULT_MAX_BYTES
_KEY_SPACE = re.compile("[ \t\n\r\x0b\x0c]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def dedup_key(text: str) -> str:
    r"""The key under which two prompts count as one in a contrastive set.

    ASCII letters are lower-cased and runs of ASCII whitespace become one space, trimmed at
    both ends; everything else is kept. ``contrast`` drops a candidate whose key equals the
    target's or an earlier candidate's (the Rust core applies the same rule).

    Example:
        >>> dedup_key("  A  Cat\tand\n a DOG ")
        'a cat and a dog'
    """
    return " ".join(w for w in _KEY_SPACE.split(text) if w).translate(_ASCII_LOWER)


class ContrastiveSets:
    """Targets and their contrastive prompts, in the CSR layout of ``textnorm.confidence``.

    ``sets[i]`` is the contrastive list of prompt ``i`` (target excluded); ``flat`` is every
    ``[target, *contrastive]`` concatenated and ``offsets`` (int64, B+1) its row bounds, so a
    reward computed per flat prompt goes to ``textnorm.confidence(values, offsets=sets.offsets)``.

    Args:
        targets: the target prompts.
        sets: one list of contrastive prompts per target.
        rules: optional label per contrastive prompt (same nesting as ``sets``); default
            ``"given"``.
    """

    def __init__(
        self,
        targets: Sequence[str],
        sets: Sequence[Sequence[str]],
        *,
        rules: Sequence[Sequence[str]] | None = None,
    ) -> None:
        targets = str_list(targets, "targets")
        if len(sets) != len(targets):
            raise LayoutError(f"sets: expected {len(targets)} lists (one per target), got {len(sets)}")
        if rules is not None and len(rules) != len(targets):
            raise LayoutError(f"rules: expected {len(targets)} lists (one per target), got {len(rules)}")
        flat: list[str] = []
        labels: list[str] = []
        offsets = [0]
        for i, (t, s) in enumerate(zip(targets, sets)):
            s = str_list(s, f"sets[{i}]")
            r = ["given"] * len(s) if rules is None else str_list(rules[i], f"rules[{i}]")
            if len(r) != len(s):
                raise LayoutError(f"rules[{i}]: expected {len(s)} labels, got {len(r)}")
            flat.append(t)
            labels.append("")
            flat.extend(s)
            labels.extend(r)
            offsets.append(len(flat))
        names = sorted(set(labels) - {""})
        index = {n: j for j, n in enumerate(names)}
        ids = np.array([index.get(lab, 255) for lab in labels], dtype=np.uint8)
        self._set(flat, np.asarray(offsets, dtype=np.int64), ids, tuple(names))

    @classmethod
    def _from_flat(
        cls, flat: list[str], offsets: np.ndarray, ids: np.ndarray, names: Sequence[str]
    ) -> ContrastiveSets:
        """The fast path from the core's output (no copies, no validation)."""
        self = cls.__new__(cls)
        self._set(flat, offsets, ids, tuple(names))
        return self

    def _set(self, flat: list[str], offsets: np.ndarray, ids: np.ndarray, names: tuple[str, ...]) -> None:
        offsets.setflags(write=False)
        self._flat, self._offsets, self._ids, self._names = flat, offsets, ids, names

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _row(self, i: int) -> tuple[int, int]:
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"index: expected an int, got {type(i).__name__}")
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"index: expected -{n} <= i < {n}, got {i}")
        return int(self._offsets[j]), int(self._offsets[j + 1])

    def __getitem__(self, i: int) -> list[str]:
        a, b = self._row(i)
        return self._flat[a + 1 : b]

    def __iter__(self) -> Iterator[list[str]]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        sizes = np.diff(self._offsets) - 1
        return f"ContrastiveSets(prompts={len(self)}, contrastive={int(sizes.sum())}, empty={int((sizes == 0).sum())})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ContrastiveSets):
            return NotImplemented
        return self._flat == other._flat and np.array_equal(self._offsets, other._offsets)

    __hash__ = None  # type: ignore[assignment]

    @property
    def targets(self) -> list[str]:
        """The target prompts."""
        return [self._flat[int(a)] for a in self._offsets[:-1]]

    @property
    def flat(self) -> list[str]:
        """Every ``[target, *contrastive]`` concatenated (the list itself: do not modify)."""
        return self._flat

    @property
    def offsets(self) -> np.ndarray:
        """Row bounds of ``flat`` (read-only int64, length B+1)."""
        return self._offsets

    def prompt_lists(self) -> list[list[str]]:
        """``[target, *contrastive]`` per prompt, for scoring."""
        f, o = self._flat, self._offsets.tolist()
        return [f[o[i] : o[i + 1]] for i in range(len(self))]

    def rules(self, i: int) -> list[str]:
        """The rule (or label) that produced each contrastive prompt of prompt ``i``."""
        a, b = self._row(i)
        return [self._names[j] for j in self._ids[a + 1 : b].tolist()]

    def empty(self) -> list[int]:
        """Indices of prompts with no contrastive prompt (no rule applied)."""
        return np.flatnonzero(np.diff(self._offsets) == 1).tolist()  # type: ignore[no-any-return]

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Writes the TIA2 format ``{target: [contrastive, ...]}`` (UTF-8, indented)."""
        out: dict[str, list[str]] = {}
        for i, (t, s) in enumerate(zip(self.targets, self)):
            if t in out and out[t] != s:
                raise LayoutError(
                    f"sets: expected equal sets for repeated targets (TIA2 keys are unique), "
                    f"got a different set for {t!r} at index {i}"
                )
            out[t] = s
        Path(path).write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> ContrastiveSets:
        """Reads the TIA2 format ``{target: [contrastive, ...]}``; rules are labelled ``"json"``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise LayoutError(f"path: expected TIA2 JSON {{target: [prompts]}}, got invalid JSON: {e}") from e
        except UnicodeDecodeError as e:
            raise LayoutError(f"path: expected UTF-8 text in {str(path)!r}, got invalid bytes ({e.reason} at byte {e.start})") from e
        except RecursionError as e:
            raise LayoutError(f"path: expected TIA2 JSON {{target: [prompts]}} in {str(path)!r}, got JSON nested too deeply") from e
        if not isinstance(data, dict):
            raise LayoutError(f"path: expected a JSON object {{target: [prompts]}}, got {type(data).__name__}")
        sets = list(data.values())
        return cls(list(data), sets, rules=[["json"] * len(s) if isinstance(s, list) else [] for s in sets])


def _rules_arg(rules: Any) -> list[str] | None:
    if rules is None:
        return None
    names = [rules] if isinstance(rules, str) else rules
    if not isinstance(names, Iterable):
        raise ParameterError(f"rules: expected None, a rule name or a list of names, got {type(rules).__name__}")
    names = list(names)
    bad = [r for r in names if not isinstance(r, str) or r not in RULES]
    if bad or not names:
        raise ParameterError(f"rules: expected names among {', '.join(RULES)}, got {bad or 'an empty list'!r}")
    return names


def contrast(
    prompts: Iterable[str],
    /,
    *,
    rules: str | Sequence[str] | None = None,
    k: int | None = None,
    seed: int = 0,
    lexicon: Lexicon | None = None,
    vocabulary: Mapping[str, Iterable[str]] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ContrastiveSets:
    """Rule-based contrastive sets of ``prompts`` (Rust core, parallel on large inputs).

    Args:
        prompts: target prompts (any iterable of str).
        rules: rule names among ``RULES`` (run and listed in this order); None runs
            ``DEFAULT_RULES``. ``count`` changes one count at a time; ``joint_count``
            (not a default) changes several at once, as the authors' TIA2 composition
            sets do.
        k: keep a seeded sample of at most ``k`` prompts per set (order kept); None keeps all.
        seed: sampling seed (0 <= seed < 2**64). A prompt's sample depends only on the seed
            and its text, never on its position or the number of threads.
        lexicon: words the rules know; None uses :meth:`Lexicon.default`.
        vocabulary: word lists the rules may write (see :meth:`Lexicon.restricted`);
            shorthand for ``lexicon=(lexicon or Lexicon.default()).restricted(vocabulary)``.
        max_bytes: the most bytes of candidate text (before duplicates are dropped and ``k``
            sampled) the call may write, over all prompts; default 1 GiB. The cost of a call
            is linear in its prompts and its lexicon.

    Returns:
        ContrastiveSets; a prompt no rule applies to gets an empty set (see ``empty()``).

    Raises:
        ParameterError: unknown rule names, a bad ``k``, ``seed``, ``lexicon``,
            ``vocabulary`` or ``max_bytes``, a prompt that is not valid Unicode, or
            ``prompts`` whose candidates pass ``max_bytes`` (the message names ``prompts``).
        LayoutError: ``prompts`` is a str or holds a non-str.
    """
    items = str_list(prompts, "prompts")
    names = _rules_arg(rules)
    kk = None if k is None else int_arg(k, "k", 1, 2**63 - 1)
    s = int_arg(seed, "seed", 0, 2**64 - 1)
    cap = int_arg(max_bytes, "max_bytes", 1, 2**63 - 1)
    if lexicon is not None and not isinstance(lexicon, Lexicon):
        raise ParameterError(f"lexicon: expected None or a textnorm.Lexicon, got {type(lexicon).__name__}")
    if vocabulary is not None:
        lexicon = (lexicon or Lexicon.default()).restricted(vocabulary)
    compiled = None if lexicon is None else lexicon._compiled
    flat, offsets, ids = _core.contrast_sets(items, rules=names, k=kk, seed=s, lexicon=compiled, max_bytes=cap)
    return ContrastiveSets._from_flat(flat, offsets, ids, RULES)
