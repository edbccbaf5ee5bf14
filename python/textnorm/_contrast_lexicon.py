"""The lexicon of the rule-based contrast generator (re-exported as ``textnorm.Lexicon``):
JSON or TOML layers compiled by the Rust core, and restrictions to a vocabulary."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from textnorm import _core
from textnorm._contrast_args import str_list
from textnorm._core import LayoutError, ParameterError

_LEXICON_KEYS = frozenset(
    ("nouns", "synonyms", "colors", "sizes", "materials", "textures", "relations", "symmetric_relations")
)
_VOCABULARY_KEYS = ("nouns", "colors", "sizes", "materials", "textures", "relations")


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
        self._vocabularies: list[dict[str, list[str]]] = []
        for layer in self._layers:
            unknown = set(layer) - _LEXICON_KEYS
            if unknown:
                raise ParameterError(
                    f"lexicon: expected keys among {sorted(_LEXICON_KEYS)}, got {sorted(unknown)}"
                )
        texts = [_to_json(layer, "lexicon") for layer in self._layers]
        self._compiled = _core.ContrastLexicon(texts)

    @classmethod
    def default(cls) -> Lexicon:
        """The built-in lexicon (about 200 nouns, 17 colours, sizes, materials, relations)."""
        return _default_lexicon()

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
        toml = p.suffix.lower() == ".toml"
        fmt = "TOML" if toml else "JSON"
        try:
            text = p.read_text(encoding="utf-8")
            if toml:
                try:
                    import tomllib
                except ImportError as e:  # Python 3.10
                    raise ParameterError("path: TOML lexicons need Python >= 3.11; use JSON") from e
                data: Any = tomllib.loads(text)
            else:
                data = json.loads(text)
        except UnicodeDecodeError as e:
            raise ParameterError(f"path: expected UTF-8 text in {str(p)!r}, got invalid bytes ({e.reason} at byte {e.start})") from e
        except RecursionError as e:
            raise ParameterError(f"path: expected a lexicon in {str(p)!r}, got {fmt} nested too deeply to read") from e
        except (ValueError, OSError) as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            if isinstance(e, ParameterError):
                raise
            raise ParameterError(f"path: expected valid {fmt} in {str(p)!r}, got: {e}") from e
        return cls.from_dict(data, extend=extend)

    def restricted(self, vocabulary: Mapping[str, Iterable[str]]) -> Lexicon:
        """This lexicon, with the words the rules may write narrowed to ``vocabulary``.

        Prompts are read as before (every known word still parses), but ``object`` writes
        only the vocabulary's nouns, ``color`` and ``attribute`` only its colours, sizes,
        materials and textures, and ``relation`` only opposites it lists; the other rules
        write no new word. A kind the vocabulary leaves out gets no replacement, and
        restricting twice keeps the words both allow.

        Args:
            vocabulary: word lists under keys among ``nouns`` (either number), ``colors``,
                ``sizes``, ``materials``, ``textures`` and ``relations``. An attribute word
                stands for its synonym group and is the spelling written.

        Raises:
            ParameterError: an unknown key, a value that is not a list of str, or a word
                the lexicon does not know (extend the lexicon first with ``from_dict``).

        Example:
            >>> import textnorm
            >>> shapes = Lexicon.default().restricted({"nouns": ["circle", "square"], "colors": ["red", "blue"]})
            >>> textnorm.contrast(["a red circle"], rules=["object", "color"], lexicon=shapes)[0]
            ['a red square', 'a blue circle']
        """
        if not isinstance(vocabulary, Mapping):
            raise ParameterError(f"vocabulary: expected a mapping of word lists, got {type(vocabulary).__name__}")
        unknown = sorted(str(k) for k in set(vocabulary) - set(_VOCABULARY_KEYS))
        if unknown:
            raise ParameterError(f"vocabulary: expected keys among {list(_VOCABULARY_KEYS)}, got {unknown}")
        try:
            voc = {k: str_list(v, f"vocabulary[{k!r}]") for k, v in vocabulary.items()}
        except LayoutError as e:
            raise ParameterError(str(e)) from None
        out = Lexicon.__new__(Lexicon)
        out._layers = self._layers
        out._vocabularies = [*self._vocabularies, voc]
        out._compiled = self._compiled.restricted(json.dumps(voc))
        return out

    @property
    def num_nouns(self) -> int:
        """Number of object nouns."""
        return int(self._compiled.num_nouns)

    def layers(self) -> list[dict[str, Any]]:
        """The JSON layers this lexicon was built from (copies)."""
        return json.loads(json.dumps(self._layers))  # type: ignore[no-any-return]

    def vocabularies(self) -> list[dict[str, list[str]]]:
        """The vocabularies it was restricted to, in order (copies; empty when unrestricted)."""
        return json.loads(json.dumps(self._vocabularies))  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        restricted = f", restricted={len(self._vocabularies)}" if self._vocabularies else ""
        return f"Lexicon(num_nouns={self.num_nouns}, layers={len(self._layers)}{restricted})"


@functools.cache
def _default_lexicon() -> Lexicon:
    # Compiled once per process; a Lexicon never changes after it is built.
    return Lexicon([json.loads(_core.CONTRAST_DEFAULT_LEXICON)])


def _to_json(data: Any, name: str) -> str:
    try:
        return json.dumps(data)
    except RecursionError as e:
        raise ParameterError(f"{name}: expected JSON-like data, got data nested too deeply") from e
    except (TypeError, ValueError) as e:
        raise ParameterError(f"{name}: expected JSON-like data (dicts, lists, str), got: {e}") from e
