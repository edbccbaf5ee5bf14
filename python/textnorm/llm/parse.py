"""The instruction sent to a language model and a robust reader of its answer.

Models number their lines, bullet them, quote them, wrap them in code fences or JSON, and add
chatter ("Sure! Here are 5 prompts:"); :func:`parse_prompts` keeps only the prompts.

Example:
    >>> parse_prompts('Sure! Here are two:\\n1. "A dog on a cat."\\n2) two cats\\nHope this helps!')
    ['A dog on a cat.', 'two cats']
"""

from __future__ import annotations

import json
import re

SYSTEM = (
    "You write contrastive prompts for testing text-to-image models: near-miss descriptions "
    "that an image of the target prompt would NOT match."
)
USER = (
    'Target prompt: "{prompt}"\n\n'
    "Write {k} near-miss prompts. Each must describe a plausible image that differs from the "
    "target in exactly one detail an image model could get wrong: an object, a count, an "
    "attribute (colour, size, material, texture), a spatial relation, or written text. Keep "
    "everything else the same. Do not repeat or paraphrase the target and do not explain.\n"
    "Answer with one prompt per line, numbered 1 to {k}."
)

# A list marker at the start of a line: "1.", "1)", "(1)", "#1", "1:", "-", "*", "•", "Prompt 1:".
_MARKER = re.compile(
    r"^\s*(?:(?:prompt|option|near[- ]miss)\s*\d+\s*[:.)-]|\(?\d{1,3}\s*[.):\]]|#\d+[.:)]?|[-*•·–—]|>)\s*",
    re.IGNORECASE,
)
_CHATTER = re.compile(
    r"^(?:here (?:are|is)|sure|certainly|of course|okay|ok\b|note\b|i hope|hope this|these prompts|"
    r"let me know|as an ai|i can(?:not|'t)|below are|the following)",
    re.IGNORECASE,
)
_BOLD = re.compile(r"^\s*(?:\*\*|__)")
_QUOTES = "\"'“”‘’`«»"
MAX_PROMPT_CHARS = 300


def instruction(k: int) -> tuple[str, str]:
    """(system, user template with ``{prompt}`` left to fill) for ``k`` prompts."""
    return SYSTEM, USER.replace("{k}", str(k))


def _clean(line: str) -> str:
    s = line.strip()
    for _ in range(2):  # quotes inside a bold or quoted marker: **"..."**
        s = s.strip("*_ ").strip()
        if len(s) >= 2 and s[0] in _QUOTES and s[-1] in _QUOTES:
            s = s[1:-1].strip()
        elif len(s) >= 3 and s[0] in _QUOTES and s[-2] in _QUOTES and s[-1] in ".,;":
            s = s[1:-2].strip()
    return " ".join(s.split())


def _json_list(text: str) -> list[str] | None:
    start, end = text.find("["), text.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except (json.JSONDecodeError, RecursionError):
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def parse_prompts(text: str) -> list[str]:
    """Prompts in a model's answer, in order (duplicates kept; see ``contrast_llm``).

    A JSON list of strings anywhere in the answer wins. Otherwise, when some lines carry a
    list marker (number or bullet) only those lines count; else every line that is not
    chatter. Quotes and markers are stripped, whitespace collapsed; lines that end with a
    colon, code fences and lines longer than 300 characters are dropped.
    """
    if not isinstance(text, str) or not text.strip():
        return []
    found = _json_list(text)
    if found is not None:
        return [c for c in (_clean(v) for v in found) if c and len(c) <= MAX_PROMPT_CHARS]
    lines = [_BOLD.sub("", ln) for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("```")]
    marked = [(bool(_MARKER.match(ln)), _MARKER.sub("", ln, count=1)) for ln in lines]
    if any(m for m, _ in marked):
        candidates = [body for m, body in marked if m]
    else:
        candidates = [body for _, body in marked if not _CHATTER.match(body.strip())]
    out = []
    for body in candidates:
        c = _clean(body)
        if not c or c.endswith(":") or len(c) > MAX_PROMPT_CHARS or not any(ch.isalpha() for ch in c):
            continue
        out.append(c)
    return out
