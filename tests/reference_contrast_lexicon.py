"""Pure-Python twin of the Rust lexicon compiler and inflection (``rust/contrast/lexicon.rs``,
``inflection.rs``, ``sampling.rs``): the oracle the tests compare the Rust core against and the
benchmark's baseline. ASCII-only case rules, so both sides agree on any text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = set("abcdefghijklmnopqrstuvwxyz")
_UPPER = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_WS = re.compile("[ \t\n\x0c\r]+")
_KEY_WS = re.compile("[ \t\n\r\x0b\x0c]+")

KINDS = ("color", "size", "material", "texture")
_KIND_KEYS = ("colors", "sizes", "materials", "textures")

IRREGULAR = {
    "mouse": "mice", "louse": "lice", "person": "people", "child": "children", "ox": "oxen",
    "goose": "geese", "tooth": "teeth", "foot": "feet", "man": "men", "woman": "women",
    "wolf": "wolves", "knife": "knives", "leaf": "leaves", "loaf": "loaves", "calf": "calves",
    "half": "halves", "shelf": "shelves", "thief": "thieves", "wife": "wives", "life": "lives",
    "elf": "elves", "scarf": "scarves", "hoof": "hooves", "cactus": "cacti", "fungus": "fungi",
    "nucleus": "nuclei", "potato": "potatoes", "tomato": "tomatoes", "hero": "heroes",
    "echo": "echoes", "volcano": "volcanoes", "mosquito": "mosquitoes", "torpedo": "torpedoes",
    "bus": "buses", "die": "dice",
}  # fmt: skip
INVARIANT = {
    "fish", "sheep", "deer", "moose", "bison", "salmon", "trout", "shrimp", "aircraft",
    "spacecraft", "species", "series", "swine", "squid", "cod",
}  # fmt: skip
NOT_MAN_COMPOUNDS = {"human", "german", "roman", "shaman", "talisman", "caiman", "ottoman", "walkman"}
NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()
A_PREFIXES = ("uni", "use", "usu", "uti", "ura", "ure", "uro", "eu", "ewe", "one", "once", "ufo", "uk")
AN_PREFIXES = ("hour", "honest", "honor", "honour", "heir")


def lower(s: str) -> str:
    """ASCII-only lower case (non-ASCII letters kept)."""
    return s.translate(_ASCII_LOWER)


def plural(noun: str) -> str:
    """Plural of a lowercase singular noun; a multiword noun inflects its last word."""
    i = noun.rfind(" ")
    return noun[: i + 1] + _plural_word(noun[i + 1 :]) if i >= 0 else _plural_word(noun)


def _plural_word(w: str) -> str:
    if w in IRREGULAR:
        return IRREGULAR[w]
    if w in INVARIANT:
        return w
    if len(w) > 5 and w.endswith("woman"):
        return w[:-5] + "women"
    if len(w) > 3 and w.endswith("man") and w not in NOT_MAN_COMPOUNDS:
        return w[:-3] + "men"
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return w + "es"
    if len(w) >= 2 and w[-1] == "y" and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    return w + "s"


def article(next_word: str) -> str:
    """'a' or 'an' before ``next_word``."""
    w = lower(next_word)
    if w.startswith(AN_PREFIXES):
        return "an"
    if w.startswith(A_PREFIXES):
        return "a"
    return "an" if w[:1] in ("a", "e", "i", "o", "u") else "a"


def transfer_case(orig: str, new: str) -> str:
    """``new`` with the case of ``orig`` at its first letter (see inflection.rs)."""
    letters = [c for c in orig if c in _LOWER or c in _UPPER]
    if len(letters) >= 2 and all(c in _UPPER for c in letters):
        return new.translate(_ASCII_UPPER)
    if not orig or not new:
        return new
    o, n = orig[0], new[0]
    if o in _UPPER and n in _LOWER:
        return n.upper() + new[1:]
    if o in _LOWER and n in _UPPER and not (len(new) > 1 and new[1] in _UPPER):
        return n.lower() + new[1:]
    return new


def number_word_value(w: str) -> int | None:
    return NUMBER_WORDS.index(w) if w in NUMBER_WORDS[1:] else None


def dedup_key(text: str) -> str:
    """ASCII case folded, ASCII whitespace runs collapsed, trimmed."""
    return lower(" ".join(p for p in _KEY_WS.split(text) if p))


_M64 = (1 << 64) - 1


def fnv1a(text: str) -> int:
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & _M64
    return h


def sample(n: int, k: int, seed: int, text: str) -> list[int]:
    """Ascending indices of a seeded k-of-n sample (splitmix64, partial Fisher-Yates)."""
    idx = list(range(n))
    if k >= n:
        return idx
    state = (seed ^ fnv1a(text)) & _M64
    for i in range(k):
        state = (state + 0x9E3779B97F4A7C15) & _M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31
        j = i + z % (n - i)
        idx[i], idx[j] = idx[j], idx[i]
    return sorted(idx[:k])


@dataclass
class Noun:
    singular: str
    plural: str
    category: int
    synonym_group: int


@dataclass
class RefLexicon:
    nouns: list[Noun] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    by_category: list[list[int]] = field(default_factory=list)
    forms: dict[str, tuple[int, bool]] = field(default_factory=dict)
    max_noun_words: int = 0
    attrs: dict[str, tuple[int, int]] = field(default_factory=dict)
    groups: tuple[list[str], ...] = field(default_factory=lambda: ([], [], [], []))
    relations: dict[str, tuple[str, bool]] = field(default_factory=dict)
    max_relation_words: int = 0
    relation_words: set[str] = field(default_factory=set)


def _norm(s: str) -> str:
    return lower(" ".join(p for p in _ASCII_WS.split(s) if p))


def compile_lexicon(layers: list[dict[str, Any]]) -> RefLexicon:
    """The lexicon of JSON-like ``layers`` (later ones extend earlier ones)."""
    lex = RefLexicon()
    syn_of: dict[str, int] = {}
    for spec in layers:
        for group in spec.get("synonyms", []):
            gid = _next_id(syn_of)
            for w in group:
                syn_of[_norm(w)] = gid
    counter = [_next_id(syn_of)]
    for spec in layers:
        for cat, nouns in spec.get("nouns", {}).items():
            cat = _norm(cat)
            if cat not in lex.categories:
                lex.categories.append(cat)
                lex.by_category.append([])
            ci = lex.categories.index(cat)
            for entry in nouns:
                if isinstance(entry, str):
                    s = _norm(entry)
                    p = plural(s)
                else:
                    s, p = _norm(entry[0]), _norm(entry[1])
                _add_noun(lex, s, p, ci, syn_of, counter)
    for spec in layers:
        for kind, key in enumerate(_KIND_KEYS):
            for group in spec.get(key, []):
                words = [_norm(w) for w in group]
                if all(w in lex.attrs for w in words):
                    continue
                g = len(lex.groups[kind])
                lex.groups[kind].append(words[0])
                for w in words:
                    lex.attrs.setdefault(w, (kind, g))
        for a, b in spec.get("relations", []):
            a, b = _norm(a), _norm(b)
            sym = lex.relations[a][1] if a in lex.relations else False
            lex.max_relation_words = max(lex.max_relation_words, len(a.split(" ")))
            lex.relation_words.update(a.split(" "))
            lex.relations[a] = (b, sym)
        for r in spec.get("symmetric_relations", []):
            r = _norm(r)
            if r in lex.relations:
                lex.relations[r] = (lex.relations[r][0], True)
    return lex


def _next_id(syn_of: dict[str, int]) -> int:
    return max(syn_of.values(), default=-1) + 1


def _add_noun(
    lex: RefLexicon, s: str, p: str, ci: int, syn_of: dict[str, int], counter: list[int]
) -> None:
    if s in lex.forms and lex.nouns[lex.forms[s][0]].singular == s:
        return
    if s not in syn_of:
        syn_of[s] = counter[0]
        counter[0] += 1
    nid = len(lex.nouns)
    for form, is_plural in ((p, True), (s, False)):
        lex.max_noun_words = max(lex.max_noun_words, len(form.split(" ")))
        lex.forms[form] = (nid, is_plural and p != s)
    lex.nouns.append(Noun(s, p, ci, syn_of[s]))
    lex.by_category[ci].append(nid)
