"""The world adapter of `textnorm eval --benchmark world` (textnorm.eval.world): contrast sets in
the world's words by default, the rule-based generator on request."""

import pytest

from textnorm import ParameterError, contrast
from textnorm.eval.world import load_world
from textnorm.world import contrast_sets, parse


def test_world_contrast_by_default_rules_on_request() -> None:
    benches, _ = load_world(["binding"], n_prompts=3, n_images=4, seed=2, contrast_k=7)
    bench = benches["binding"]
    want = contrast_sets(bench.prompts, k=7, seed=2)
    for p, cs in zip(bench.prompts, want):
        assert bench.contrast(p) == list(cs.prompts) and len(cs.prompts) == 7
        assert all(parse(c) for c in bench.contrast(p))  # every one a world prompt
    rules, _ = load_world(["binding"], n_prompts=3, n_images=4, seed=2, contrast_k=7, contrast="rules")
    made = contrast(rules["binding"].prompts, k=7, seed=2)
    for i, p in enumerate(rules["binding"].prompts):
        assert rules["binding"].contrast(p) == list(made[i])
    with pytest.raises(ParameterError, match="contrast"):
        load_world(["binding"], n_prompts=3, n_images=4, seed=2, contrast="llm")
