"""Contrastive sets written by a language model, for prompts no rule covers.

Backends: :class:`OpenAICompatible` (chat-completions over HTTP: vLLM, llama.cpp's server,
hosted APIs; standard library only) and :class:`Transformers` (a local causal LM). Answers
are parsed robustly, filtered (duplicates, copies of the target, paraphrases by
all-MiniLM-L6-v2 similarity) and cached in JSONL. Nothing here imports torch until a local
model or the paraphrase filter is used.
"""

from __future__ import annotations

from textnorm.llm.cache import JsonlCache, cache_key
from textnorm.llm.generate import Backend, contrast_llm
from textnorm.llm.local import Transformers
from textnorm.llm.openai import EndpointError, OpenAICompatible
from textnorm.llm.paraphrase import ParaphraseFilter, ParaphraseModelError, filter_paraphrases
from textnorm.llm.parse import instruction, parse_prompts

__all__ = [
    "Backend",
    "EndpointError",
    "JsonlCache",
    "OpenAICompatible",
    "ParaphraseFilter",
    "ParaphraseModelError",
    "Transformers",
    "cache_key",
    "contrast_llm",
    "filter_paraphrases",
    "instruction",
    "parse_prompts",
]
