"""``contrast_llm``: contrastive sets written by a language model, for prompts the rules do not
cover (the authors used a language model for TIA2's "comprehensive" sets)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from textnorm._contrast_args import int_arg, str_list
from textnorm._core import ParameterError
from textnorm.contrast import ContrastiveSets, dedup_key
from textnorm.llm.cache import JsonlCache, cache_key
from textnorm.llm.parse import instruction, parse_prompts


class Backend(Protocol):
    """What ``contrast_llm`` needs from a model: a name and model id (for the cache) and one
    chat exchange."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    def complete(self, system: str, user: str) -> str: ...


Filter = Callable[[str, Sequence[str]], Sequence[str]]


def contrast_llm(
    prompts: Iterable[str],
    /,
    *,
    backend: Backend,
    k: int = 10,
    cache: str | os.PathLike[str] | JsonlCache | None = None,
    filter: bool | Filter | None = True,  # noqa: A002 (the issue's name)
    progress: Callable[[int, int], Any] | None = None,
) -> ContrastiveSets:
    """Contrastive sets written by a language model.

    Each prompt is sent once with an instruction asking for ``k`` near-miss prompts that
    change one object, count, attribute, relation or text. The answer is parsed (numbering,
    bullets, quotes and chatter removed), copies of the target and duplicates dropped, then
    paraphrases (``filter``), and at most ``k`` kept in the model's order.

    Args:
        prompts: target prompts.
        backend: ``textnorm.llm.OpenAICompatible``, ``textnorm.llm.Transformers`` or any
            object with ``name``, ``model`` and ``complete(system, user) -> str``.
        k: prompts to ask for (and keep at most) per target.
        cache: a JSONL file (or ``JsonlCache``) of answers keyed by backend, model,
            instruction and prompt; answers found there are not asked again, so an
            interrupted run resumes.
        filter: True for :class:`ParaphraseFilter` with its defaults (loads
            all-MiniLM-L6-v2; raises ``ParaphraseModelError`` when it cannot), None/False
            for exact duplicates only, or a callable ``(target, candidates) -> kept``.
        progress: called as ``progress(done, total)`` after each prompt.

    Returns:
        ContrastiveSets whose rules are ``"llm"``; empty or whitespace-only prompts get an
        empty set without a request.

    Raises:
        ParameterError: bad ``k``, ``backend``, ``cache`` or ``filter``.
        EndpointError: the endpoint stays unreachable after its retries (answers received
            so far are in the cache).
    """
    items = str_list(prompts, "prompts")
    k = int_arg(k, "k", 1, 1000)
    if not all(hasattr(backend, a) for a in ("name", "model", "complete")):
        raise ParameterError(f"backend: expected an object with name, model and complete(), got {type(backend).__name__}")
    store = _cache(cache)
    check = _filter(filter)
    system, user = instruction(k)
    template = system + "\n\n" + user
    answers: dict[str, list[str]] = {}
    for done, p in enumerate(items, 1):
        if p not in answers:
            answers[p] = _ask(p, backend, store, system, user, template, k, check)
        if progress is not None:
            progress(done, len(items))
    sets = [answers[p] for p in items]
    return ContrastiveSets(items, sets, rules=[["llm"] * len(s) for s in sets])


def _ask(
    p: str, backend: Backend, store: JsonlCache | None, system: str, user: str, template: str, k: int,
    check: Filter | None,
) -> list[str]:
    if not p.strip():
        return []
    key = cache_key(backend.name, backend.model, template, p)
    answer = store.get(key) if store is not None else None
    if answer is None:
        answer = backend.complete(system, user.replace("{prompt}", p))
        if store is not None:
            store.put(key, answer, backend=backend.name, model=backend.model, prompt=p)
    seen = {dedup_key(p)}
    out = []
    for c in parse_prompts(answer):
        key_c = dedup_key(c)
        if key_c not in seen:
            seen.add(key_c)
            out.append(c)
    if check is not None and out:
        out = list(check(p, out))
    return out[:k]


def _cache(cache: Any) -> JsonlCache | None:
    if cache is None or isinstance(cache, JsonlCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return JsonlCache(cache)
    raise ParameterError(f"cache: expected None, a path or a JsonlCache, got {type(cache).__name__}")


def _filter(value: Any) -> Filter | None:
    if value is None or value is False:
        return None
    if value is True:
        from textnorm.llm.paraphrase import ParaphraseFilter

        return ParaphraseFilter()
    if callable(value):
        return value  # type: ignore[no-any-return]
    raise ParameterError(f"filter: expected True, None, False or a callable, got {type(value).__name__}")
