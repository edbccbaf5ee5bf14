"""Loading weights and tokenizers by hub id or local path, with one clear error when it fails.

Offline (HF_HUB_OFFLINE=1), with missing files or a missing package, every loader raises
`ModelLoadError` naming the model and the id or path it tried, instead of the library's own
error (or, for transformers' CLIP tokenizer offline, a silently broken tokenizer).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from textnorm.scorers.base import ModelLoadError

__all__ = ["check_tokenizer", "clip_tokenizer", "hub_file", "loading", "looks_like_path"]

T = TypeVar("T")

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def looks_like_path(name: str) -> bool:
    """True when `name` is meant as a local file or folder rather than a hub id ("org/name")."""
    if name.startswith((".", "/", "~")) or name.endswith(_WEIGHT_SUFFIXES):
        return True
    if name.count("/") > 1 or "\\" in name:
        return True
    return Path(name).expanduser().exists()


def resolve_source(name: str) -> str:
    """An absolute path for local files and folders, the hub id unchanged otherwise."""
    return str(Path(name).expanduser().resolve()) if looks_like_path(name) else name


def hf_tokenizer(tokenizer: Any, model: str, source: str) -> Any:
    """`tokenizer` when given, else transformers' tokenizer from `source`, checked."""
    if tokenizer is not None:
        return tokenizer
    from transformers import AutoTokenizer

    loaded = call_loader(model, source, lambda: AutoTokenizer.from_pretrained(source))
    return check_tokenizer(loaded, model, source)


def _offline_hint() -> str:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return " (HF_HUB_OFFLINE=1: nothing is downloaded; pass a local path to the weights)"
    return " (no network or no such repository: pass a local path to the weights)"


def require_local(model: str, path: str) -> Path:
    """The expanded path if it exists, else ModelLoadError naming `model` and `path`."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise ModelLoadError(f"{model}: weights not found at local path {str(resolved)!r}")
    return resolved


@contextmanager
def loading(model: str, source: str, *, local: bool | None = None, what: str | None = None) -> Iterator[None]:
    """Turn any failure while loading `source` into ModelLoadError naming model and source.

    `local` says whether `source` is a local path (None: guess from its form); `what` names
    a remote source other than a hub id (an open_clip pretrained tag).
    """
    try:
        yield
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise ModelLoadError(f"{model}: a package needed to load {source!r} is missing: {exc}") from exc
    except Exception as exc:  # the libraries raise OSError, ValueError, HTTP and hub errors
        local = looks_like_path(source) if local is None else local
        where = "local path" if local else what or "hub id"
        hint = "" if local else _offline_hint()
        raise ModelLoadError(
            f"{model}: could not load {where} {source!r}{hint}: {type(exc).__name__}: {exc}"
        ) from exc


def hub_file(model: str, repo_or_path: str, filename: str | None = None) -> Path:
    """A weights file: `repo_or_path` itself when local, else `filename` from that hub repo."""
    if looks_like_path(repo_or_path) or filename is None:
        return require_local(model, repo_or_path)
    with loading(model, f"{repo_or_path}/{filename}", local=False):
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_or_path, filename))


def call_loader(model: str, source: str, loader: Callable[[], T], *, what: str | None = None) -> T:
    """`loader()` with its errors mapped by `loading`; local paths are checked first."""
    if looks_like_path(source):
        require_local(model, source)
    with loading(model, source, what=what):
        return loader()


def check_tokenizer(tokenizer: Any, model: str, source: str) -> Any:
    """Reject tokenizers that map text to unknown tokens (transformers' offline CLIP trap).

    "a cat" must become two distinct non-special tokens (plus any special ones).
    """
    try:
        ids = list(tokenizer("a cat")["input_ids"])
    except Exception as exc:
        raise ModelLoadError(f"{model}: tokenizer from {source!r} failed on 'a cat': {exc}") from exc
    unk = getattr(tokenizer, "unk_token_id", None)
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    content = [i for i in ids if i not in special]
    if len(content) != 2 or content[0] == content[1] or unk in content:
        raise ModelLoadError(
            f"{model}: the tokenizer loaded from {source!r} is broken (it maps 'a cat' to {ids}); "
            "offline, transformers returns such a tokenizer instead of raising: pass a working "
            "tokenizer (for CLIP models: textnorm.scorers.clip_tokenizer())"
        )
    return tokenizer


def clip_tokenizer(*, context_length: int = 77) -> Any:
    """A transformers CLIPTokenizer built from open_clip's bundled BPE vocabulary (no download).

    Its ids equal open_clip's and the original CLIP tokenizer's ("a cat" ->
    [49406, 320, 2368, 49407]); it pads with the end token like transformers' CLIP.
    """
    import open_clip
    from transformers import CLIPTokenizer

    bpe = open_clip.tokenizer.SimpleTokenizer()
    vocab = dict(bpe.encoder)
    # open_clip names the special tokens differently from the original CLIP vocabulary
    vocab["<|startoftext|>"] = vocab.pop("<start_of_text>")
    vocab["<|endoftext|>"] = vocab.pop("<end_of_text>")
    merges = [pair for pair, _ in sorted(bpe.bpe_ranks.items(), key=lambda item: item[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=context_length)
