"""A local causal language model through transformers (imported on first use, never at
``import textnorm``). Loads from a local folder or the hub cache; offline by default."""

from __future__ import annotations

from typing import Any

from textnorm._core import ParameterError


class Transformers:
    """A causal LM (``AutoModelForCausalLM``) answering the instruction locally.

    Args:
        model_name_or_path: a local folder or hub id (read with ``local_files_only``).
        model, tokenizer: already-built objects instead of a path (tests, custom setups).
        device: torch device.
        max_new_tokens, temperature: generation options (temperature 0 means greedy).
        seed: generation seed, so an answer is reproducible.
        local_files_only: never reach the network when loading.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        device: str = "cpu",
        max_new_tokens: int = 256,
        temperature: float = 0.7,
        seed: int = 0,
        local_files_only: bool = True,
    ) -> None:
        if model_name_or_path is None and (model is None or tokenizer is None):
            raise ParameterError(
                "model_name_or_path: expected a model folder or hub id (or both model= and tokenizer=), got None"
            )
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ParameterError(f"max_new_tokens: expected an integer >= 1, got {max_new_tokens!r}")
        if not temperature >= 0:
            raise ParameterError(f"temperature: expected a number >= 0, got {temperature!r}")
        self.path = model_name_or_path
        self._model, self._tokenizer = model, tokenizer
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.local_files_only = local_files_only

    @property
    def model(self) -> str:
        if self.path is not None:
            return str(self.path)
        return str(getattr(getattr(self._model, "config", None), "_name_or_path", "") or type(self._model).__name__)

    @property
    def name(self) -> str:
        return "transformers"

    def __repr__(self) -> str:
        return f"Transformers({self.model!r}, device={self.device!r})"

    def _load(self) -> tuple[Any, Any]:
        if self._model is None or self._tokenizer is None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            assert self.path is not None  # checked in __init__
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=self.local_files_only)
                self._model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=self.local_files_only)
            except OSError as e:
                raise ParameterError(
                    f"model_name_or_path: expected a loadable causal LM (offline), got {self.path!r}: {e}"
                ) from e
            self._model.to(self.device).eval()
        return self._model, self._tokenizer

    def complete(self, system: str, user: str) -> str:
        """The model's continuation of the instruction (new tokens only, special tokens dropped)."""
        import torch

        model, tok = self._load()
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{system}\n\n{user}\n\n"
        enc = tok(text, return_tensors="pt").to(self.device)
        torch.manual_seed(self.seed)
        sample = self.temperature > 0
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=sample,
                temperature=self.temperature if sample else None,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            )
        new = out[0, enc["input_ids"].shape[1] :]
        return str(tok.decode(new, skip_special_tokens=True))
