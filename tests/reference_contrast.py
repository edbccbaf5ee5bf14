"""Pure-Python reference of the rule-based contrastive generator (``rust/contrast``): the same
grammar, rules, order, dedup and seeded sampling, written plainly. The tests use it as an
oracle for the Rust core and the benchmark as the baseline (test code: not in the wheel)."""

from __future__ import annotations

import json
from typing import Any

from reference_contrast_lexicon import (
    NUMBER_WORDS,
    RefLexicon,
    article,
    compile_lexicon,
    dedup_key,
    lower,
    sample,
    transfer_case,
)
from reference_contrast_parse import (
    ARTICLE,
    COLOR,
    DIGIT,
    MATERIAL,
    MAX_ATTRIBUTE_WORDS,
    MAX_JOINT_COUNTS,
    ONE,
    SIZE,
    TEXTURE,
    Np,
    Parsed,
    parse,
)

# Every rule in run order, and those rules=None runs (joint_count changes several counts).
RULES = ("drop", "count", "joint_count", "hybrid", "object", "color", "attribute", "binding", "relation", "swap")
DEFAULT_RULES = tuple(r for r in RULES if r != "joint_count")
_RANK = {SIZE: 0, TEXTURE: 1, COLOR: 2, MATERIAL: 3}


def count_text(n: int, style: int, next_word: str) -> str:
    if style == DIGIT:
        return str(n)
    if n == 1:
        return "one" if style == ONE else article(next_word)
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def render_np(
    text: str,
    np_: Np,
    lex: RefLexicon,
    *,
    count: int | None = None,
    noun: int | None = None,
    mods: list[str] | None = None,
) -> str:
    """The text of ``np_`` with a new count, noun or modifier list (articles agree)."""
    hs, he, hnoun, hplural = np_.head
    orig_head = text[hs:he]
    is_plural = count != 1 if count is not None else hplural
    if noun is not None or count is not None:
        entry = lex.nouns[noun if noun is not None else hnoun]
        form = entry.plural if is_plural else entry.singular
        same = noun is None and lower(form) == lower(orig_head)
        head = orig_head if same else transfer_case(orig_head, form)
    else:
        head = orig_head
    if mods is None:
        mods = [text[a:b] for a, b, _ in np_.mods]
    parts = []
    if np_.det is not None:
        ds, de, dcount = np_.det
        orig_det = text[ds:de]
        next_word = (mods[0] if mods else head).split(" ")[0]
        if dcount is not None and count is not None and count != dcount[0]:
            parts.append(transfer_case(orig_det, count_text(count, dcount[1], next_word)))
        elif dcount is not None and dcount[1] == ARTICLE:
            parts.append(transfer_case(orig_det, article(next_word)))
        else:
            parts.append(orig_det)
    parts.extend(mods)
    parts.append(head)
    return transfer_case(text[np_.start : np_.end], " ".join(parts))


def apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    out, pos = [], 0
    for s, e, r in sorted(edits, key=lambda x: x[0]):
        out.append(text[pos:s])
        out.append(r)
        pos = e
    out.append(text[pos:])
    return "".join(out)


class _Rules:
    """The rules over one parsed prompt (same order and output as rust/contrast/rules.rs)."""

    def __init__(self, text: str, parsed: Parsed, lex: RefLexicon) -> None:
        self.text, self.p, self.lex = text, parsed, lex

    def np_text(self, i: int) -> str:
        return self.text[self.p.nps[i].start : self.p.nps[i].end]

    def with_middle(self, mid: str) -> str:
        s, e = self.p.nps[0].start, self.p.nps[-1].end
        return self.text[:s] + transfer_case(self.text[s:e], mid) + self.text[e:]

    def edit_np(self, i: int, **change: Any) -> tuple[int, int, str]:
        n = self.p.nps[i]
        return (n.start, n.end, render_np(self.text, n, self.lex, **change))

    def drop(self) -> list[str]:
        nps = self.p.nps
        return [self.with_middle(self.np_text(i)) for i in range(len(nps))] if len(nps) >= 2 else []

    def _counted(self) -> tuple[list[int], list[int]]:
        nps = self.p.nps
        counted = [i for i, n in enumerate(nps) if n.det is not None and n.det[2] is not None]
        return counted, [nps[i].det[2][0] for i in counted]  # type: ignore[index]

    def _render_counts(self, counted: list[int], targets: list[int], values: list[int]) -> str:
        edits = [self.edit_np(i, count=v) for i, v, t in zip(counted, values, targets) if v != t]
        return apply(self.text, edits)

    def count(self) -> list[str]:
        """Each count alone through max(1, n-2)..n+2, phrase by phrase in text order."""
        counted, targets = self._counted()
        out = []
        for j, n in enumerate(targets):
            for v in range(max(n - 2, 1), n + 3):
                if v != n:
                    out.append(self._render_counts(counted, targets, targets[:j] + [v] + targets[j + 1 :]))
        return out

    def joint_count(self) -> list[str]:
        counted, targets = self._counted()
        if not counted:
            return []
        windows = [list(range(max(n - 2, 1), n + 3)) for n in targets]
        total = 1
        for w in windows:
            total *= len(w)
            if total > MAX_JOINT_COUNTS:
                break

        def render(values: list[int]) -> str:
            return self._render_counts(counted, targets, values)

        out = []
        if total <= MAX_JOINT_COUNTS:
            tuples = [[0] * len(windows)]
            for j, w in enumerate(windows):
                tuples = [t[:j] + [x] + t[j + 1 :] for t in tuples for x in range(len(w))]
            tuples.sort(key=lambda t: (max(t), sorted(t), [-x for x in t]))
            for t in tuples:
                values = [w[x] for x, w in zip(t, windows)]
                if values != targets:
                    out.append(render(values))
        else:
            for j, w in enumerate(windows):
                for v in w:
                    if v != targets[j]:
                        out.append(render(targets[:j] + [v] + targets[j + 1 :]))
        return out

    def hybrid(self) -> list[str]:
        nps = self.p.nps
        if len(nps) != 2 or nps[0].head[2] == nps[1].head[2]:
            return []
        out = []
        for x, y in ((0, 1), (1, 0)):
            mods = [self.text[a:b] for a, b, _ in nps[y].mods]
            mods.append(self.lex.nouns[nps[x].head[2]].singular + "-like")
            out.append(self.with_middle(render_np(self.text, nps[y], self.lex, mods=mods)))
        return out

    def alternatives(self, i: int) -> list[int]:
        lex = self.lex
        used = {lex.nouns[n.head[2]].synonym_group for n in self.p.nps}
        cat = lex.nouns[self.p.nps[i].head[2]].category
        same = [n for n in lex.by_category[cat] if lex.nouns[n].synonym_group not in used]
        if same:
            return same
        firsts = [lex.by_category[c][0] for c in range(len(lex.categories)) if c != cat and lex.by_category[c]]
        return [n for n in firsts if lex.nouns[n].synonym_group not in used]

    def object(self) -> list[str]:
        return [
            apply(self.text, [self.edit_np(i, noun=n)])
            for i in range(len(self.p.nps))
            for n in self.alternatives(i)
        ]

    def attributes(self, kinds: tuple[int, ...]) -> list[str]:
        p, lex, text = self.p, self.lex, self.text
        occ: list[tuple[int, int, int, int, tuple[int, int] | None]] = []
        for i, n in enumerate(p.nps):
            for j, (a, b, attr) in enumerate(n.mods):
                if attr is not None:
                    occ.append((a, b, attr[0], attr[1], (i, j)))
        for t in p.toks:
            inside = any(n.start <= t.start and t.end <= n.end for n in p.nps)
            if not inside and t.lower in lex.attrs:
                occ.append((t.start, t.end, *lex.attrs[t.lower], None))
        occ.sort(key=lambda o: o[0])
        del occ[MAX_ATTRIBUTE_WORDS:]
        out = []
        for s, e, kind, g, at in occ:
            if kind not in kinds:
                continue
            for g2, word in enumerate(lex.groups[kind]):
                if g2 == g:
                    continue
                new = transfer_case(text[s:e], word)
                if at is None:
                    edit = (s, e, new)
                else:
                    i, j = at
                    mods = [text[a:b] for a, b, _ in p.nps[i].mods]
                    mods[j] = new
                    edit = self.edit_np(i, mods=mods)
                out.append(apply(text, [edit]))
        return out

    def _swapped(self, np_: Np, other: Np, swap: list[int]) -> list[str]:
        cur = [(self.text[a:b], attr[0] if attr else None) for a, b, attr in np_.mods]
        for k in swap:
            slot = next((q for q, m in enumerate(cur) if m[1] == k), None)
            cur = [m for m in cur if m[1] != k]
            incoming = [(self.text[a:b], k) for a, b, attr in other.mods if attr and attr[0] == k]
            if slot is None:
                slot = next(
                    (q for q, m in enumerate(cur) if m[1] is not None and _RANK[m[1]] > _RANK[k]),
                    len(cur),
                )
            cur[slot:slot] = incoming
        return [m[0] for m in cur]

    def binding(self) -> list[str]:
        nps = self.p.nps

        def groups(n: Np, k: int) -> list[int]:
            return [attr[1] for _, _, attr in n.mods if attr and attr[0] == k]

        out = []
        for a in range(len(nps)):
            for b in range(a + 1, len(nps)):
                differ = [k for k in range(4) if groups(nps[a], k) != groups(nps[b], k)]
                swaps = [[k] for k in differ] + ([differ] if len(differ) >= 2 else [])
                for sw in swaps:
                    ea = self.edit_np(a, mods=self._swapped(nps[a], nps[b], sw))
                    eb = self.edit_np(b, mods=self._swapped(nps[b], nps[a], sw))
                    out.append(apply(self.text, [ea, eb]))
        return out

    def relation(self) -> list[str]:
        return [
            apply(self.text, [(s, e, transfer_case(self.text[s:e], opp))])
            for _, s, e, opp, _ in self.p.relations
        ]

    def swap(self) -> list[str]:
        out = []
        for left, _, _, _, symmetric in self.p.relations:
            if symmetric:
                continue
            a, b = self.p.nps[left], self.p.nps[left + 1]
            ta, tb = self.np_text(left), self.np_text(left + 1)
            out.append(
                apply(self.text, [(a.start, a.end, transfer_case(ta, tb)), (b.start, b.end, transfer_case(tb, ta))])
            )
        return out


# The rule table: name -> how to run it on one parsed prompt.
_RUN = {
    "drop": _Rules.drop,
    "count": _Rules.count,
    "joint_count": _Rules.joint_count,
    "hybrid": _Rules.hybrid,
    "object": _Rules.object,
    "color": lambda r: r.attributes((COLOR,)),
    "attribute": lambda r: r.attributes((SIZE, MATERIAL, TEXTURE)),
    "binding": _Rules.binding,
    "relation": _Rules.relation,
    "swap": _Rules.swap,
}
assert tuple(_RUN) == RULES


def contrast_one(
    text: str, rules: list[str], k: int | None, seed: int, lex: RefLexicon
) -> list[tuple[str, str]]:
    """(prompt, rule) pairs for one target: candidates in rule order, deduplicated, sampled."""
    r = _Rules(text, parse(text, lex), lex)
    seen = {dedup_key(text)}
    out: list[tuple[str, str]] = []
    for rule in rules:
        cands = _RUN[rule](r)
        for c in cands:
            key = dedup_key(c)
            if key not in seen:
                seen.add(key)
                out.append((c, rule))
    if k is not None and k < len(out):
        out = [out[i] for i in sample(len(out), k, seed, text)]
    return out


def default_layers() -> list[dict[str, Any]]:
    from textnorm._core import CONTRAST_DEFAULT_LEXICON

    return [json.loads(CONTRAST_DEFAULT_LEXICON)]


def contrast(
    prompts: list[str],
    rules: list[str] | None = None,
    k: int | None = None,
    seed: int = 0,
    layers: list[dict[str, Any]] | None = None,
) -> list[list[tuple[str, str]]]:
    """Reference sets of many prompts (one lexicon compile, then a plain loop)."""
    lex = compile_lexicon(layers if layers is not None else default_layers())
    names = list(dict.fromkeys(rules)) if rules is not None else list(DEFAULT_RULES)
    return [contrast_one(p, names, k, seed, lex) for p in prompts]
