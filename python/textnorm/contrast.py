"""Contrastive prompt sets: near-misses of each target prompt for TextNorm's confidence.

``contrast(prompts)`` runs the rule-based generator of the Rust core (``rust/contrast``):
counts, dropped or hybrid objects, other objects, colours and attributes, swapped attribute
bindings, flipped or swapped spatial relations. ``ContrastiveSets`` holds the result in the
CSR layout ``textnorm.confidence`` takes and reads and writes the TIA2 JSON format.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textnorm import _core
from textnorm._core import LayoutError, ParameterError

RULES: tuple[str, ...] = tuple(_core.contrast_rule_names())
_LEXICON_KEYS = frozenset(
    ("nouns", "synonyms", "colors", "sizes", "materials", "textures", "relations", "symmetric_relations")
)


class Lexicon:
    """Words the rule-based generator knows: object nouns with supercategories, colours,
    sizes, materials, textures and spatial relations (JSON schema in ``rust/contrast/lexicon.rs``).

    Build it with :meth:`default`, :meth:`from_file` or :meth:`from_dict`; a lexicon made of
    several layers reads later layers as extensions of earlier ones. A file (TOML shown; JSON
    has the same keys, all optional)::

        colors = [["mauve", "lilac"]]            # a synonym group; the first word is written
        relations = [["atop", "beneath"], ["beneath", "atop"]]
        symmetric_relations = []                 # relations whose two sides can swap freely
        synonyms = [["drone", "quadcopter"]]     # nouns that never replace each other
        [nouns]
        animal = ["axolotl", ["octopus", "octopuses"]]   # singular, or [singular, plural]
    """

    def __init__(self, layers: Sequence[Mapping[str, Any]]) -> None:
        self._layers = [dict(layer) for layer in layers]
        for layer in self._layers:
            unknown = set(layer) - _LEXICON_KEYS
            if unknown:
                raise ParameterError(
                    f"lexicon: expected keys among {sorted(_LEXICON_KEYS)}, got {sorted(unknown)}"
                )
        texts = [json.dumps(layer) for layer in self._layers]
        self._compiled = _core.ContrastLexicon(texts)

    @classmethod
    def default(cls) -> Lexicon:
        """The built-in lexicon (about 200 nouns, 17 colours, sizes, materials, relations)."""
        return cls([json.loads(_core.CONTRAST_DEFAULT_LEXICON)])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, extend: bool = True) -> Lexicon:
        """A lexicon from a dict; ``extend=True`` adds it to the default, else replaces it."""
        if not isinstance(data, Mapping):
            raise ParameterError(f"data: expected a mapping, got {type(data).__name__}")
        base = cls.default()._layers if extend else []
        return cls([*base, data])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, extend: bool = True) -> Lexicon:
        """A lexicon from a ``.json`` or ``.toml`` file, extending (default) or replacing
        the built-in one."""
        p = Path(path)
        if not p.is_file():
            raise ParameterError(f"path: expected an existing JSON or TOML file, got {str(p)!r}")
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".toml":
            try:
                import tomllib
            except ImportError as e:  # Python 3.10
                raise ParameterError("path: TOML lexicons need Python >= 3.11; use JSON") from e
            try:
                data: Any = tomllib.loads(text)
            except tomllib.TOMLDecodeError as e:
                raise ParameterError(f"path: expected valid TOML in {str(p)!r}, got: {e}") from e
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ParameterError(f"path: expected valid JSON in {str(p)!r}, got: {e}") from e
        return cls.from_dict(data, extend=extend)

    @property
    def num_nouns(self) -> int:
        """Number of object nouns."""
        return int(self._compiled.num_nouns)

    def layers(self) -> list[dict[str, Any]]:
        """The JSON layers this lexicon was built from (copies)."""
        return json.loads(json.dumps(self._layers))  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"Lexicon(num_nouns={self.num_nouns}, layers={len(self._layers)})"


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
        targets = _str_list(targets, "targets")
        if len(sets) != len(targets):
            raise LayoutError(f"sets: expected {len(targets)} lists (one per target), got {len(sets)}")
        if rules is not None and len(rules) != len(targets):
            raise LayoutError(f"rules: expected {len(targets)} lists (one per target), got {len(rules)}")
        flat: list[str] = []
        labels: list[str] = []
        offsets = [0]
        for i, (t, s) in enumerate(zip(targets, sets)):
            s = _str_list(s, f"sets[{i}]")
            r = ["given"] * len(s) if rules is None else _str_list(rules[i], f"rules[{i}]")
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
        if not isinstance(data, dict):
            raise LayoutError(f"path: expected a JSON object {{target: [prompts]}}, got {type(data).__name__}")
        sets = list(data.values())
        return cls(list(data), sets, rules=[["json"] * len(s) if isinstance(s, list) else [] for s in sets])


def _str_list(x: Any, name: str) -> list[str]:
    if isinstance(x, str) or not isinstance(x, Iterable):
        raise LayoutError(f"{name}: expected a sequence of str, got {type(x).__name__}")
    out = list(x)
    for i, s in enumerate(out):
        if not isinstance(s, str):
            raise LayoutError(f"{name}: expected str items, got {type(s).__name__} at index {i}")
    return out


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


def _int_arg(x: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not lo <= int(x) <= hi:
        raise ParameterError(f"{name}: expected an integer in [{lo}, {hi}], got {x!r}")
    return int(x)


def contrast(
    prompts: Iterable[str],
    /,
    *,
    rules: str | Sequence[str] | None = None,
    k: int | None = None,
    seed: int = 0,
    lexicon: Lexicon | None = None,
) -> ContrastiveSets:
    """Rule-based contrastive sets of ``prompts`` (Rust core, parallel on large inputs).

    Args:
        prompts: target prompts (any iterable of str).
        rules: rule names (run and listed in this order) among ``drop, count, hybrid,
            object, color, attribute, binding, relation, swap``; None runs all.
        k: keep a seeded sample of at most ``k`` prompts per set (order kept); None keeps all.
        seed: sampling seed (0 <= seed < 2**64). A prompt's sample depends only on the seed
            and its text, never on its position or the number of threads.
        lexicon: words the rules know; None uses :meth:`Lexicon.default`.

    Returns:
        ContrastiveSets; a prompt no rule applies to gets an empty set (see ``empty()``).

    Raises:
        ParameterError: unknown rule names, a bad ``k``, ``seed`` or ``lexicon``, or a
            prompt that is not valid Unicode.
        LayoutError: ``prompts`` is a str or holds a non-str.
    """
    items = _str_list(prompts, "prompts")
    names = _rules_arg(rules)
    kk = None if k is None else _int_arg(k, "k", 1, 2**63 - 1)
    s = _int_arg(seed, "seed", 0, 2**64 - 1)
    if lexicon is not None and not isinstance(lexicon, Lexicon):
        raise ParameterError(f"lexicon: expected None or a textnorm.Lexicon, got {type(lexicon).__name__}")
    compiled = None if lexicon is None else lexicon._compiled
    flat, offsets, ids = _core.contrast_sets(items, rules=names, k=kk, seed=s, lexicon=compiled)
    return ContrastiveSets._from_flat(flat, offsets, ids, RULES)
