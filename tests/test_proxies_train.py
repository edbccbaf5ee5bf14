"""Proxy training: captions with the documented blind spots, batches, seeded determinism, the
`textnorm world train-proxy` action on a tiny budget, and the error paths."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from textnorm._core import ParameterError
from textnorm.cli import main
from textnorm.proxies.data import RECIPES, BlindSpots, caption, make_batch
from textnorm.proxies.model import ProxyCLIP, ProxyConfig, default_vocabulary, tokenize
from textnorm.proxies.training import save_proxy, train_proxy
from textnorm.world import parse, split_of


def _rate(prompt: str, blind: BlindSpots, n: int = 2000) -> float:
    rng = np.random.default_rng(0)
    p = parse(prompt)
    return float(np.mean([caption(p, blind, rng) == p.text for _ in range(n)]))


def test_caption_rates_match_the_documented_blind_spots() -> None:
    # Binomial sd at n=2000 is at most 0.011; 0.04 is more than 3.5 sd.
    cb, rb = RECIPES["count-blind"].blind, RECIPES["relation-blind"].blind
    # count-blind: a random 2..6, right by chance only (1/5).
    assert _rate("three red circles", cb) == pytest.approx(1 / 5, abs=0.04)
    assert _rate("a red circle", cb) == 1.0  # singular stays singular
    assert _rate("a red circle above a blue square", cb) == 1.0
    assert _rate("three red circles", rb) == 1.0
    # relation-blind: relation kept (25%) and not flipped (65%), colours not swapped (65%).
    assert _rate("a red circle above a blue square", rb) == pytest.approx(0.25 * 0.65 * 0.65, abs=0.04)
    assert _rate("a red circle and a blue square", rb) == pytest.approx(0.65, abs=0.04)


def test_captions_parse_and_dropped_relations_list_both_objects() -> None:
    rng = np.random.default_rng(1)
    p = parse("a red circle to the left of a blue square")
    texts = {caption(p, RECIPES["relation-blind"].blind, rng) for _ in range(300)}
    for t in texts:
        parsed = parse(t)
        assert sorted(o.shape for o in parsed.objects) == ["circle", "square"]
    assert "a blue square and a red circle" in texts and "a red circle to the right of a blue square" in texts


def test_make_batch_pairs_train_prompts_with_allowed_hard_negatives() -> None:
    rng = np.random.default_rng(2)
    images, captions, foreign = make_batch(RECIPES["count-blind"].blind, 8, rng)
    assert images.shape == (8, 64, 64, 3) and images.dtype == np.uint8
    assert len(captions) == 8 and len(foreign) == 4
    for t in captions:
        assert split_of(parse(t)) in ("train", "test")  # parses (a caption may be any text)
    for t in foreign:  # names a colour or shape the world never draws
        assert any(w in t.split() or w + "s" in t.split() for w in ("pink", "white", "brown", "gray", "magenta",
                                                                       "teal", "gold", "silver", "beige",
                                                                       "hexagon", "pentagon", "heart"))
    # The same rng state gives the same batch.
    a = make_batch(RECIPES["relation-blind"].blind, 4, np.random.default_rng(9))
    b = make_batch(RECIPES["relation-blind"].blind, 4, np.random.default_rng(9))
    assert np.array_equal(a[0], b[0]) and a[1:] == b[1:]


def test_hard_negative_partners_follow_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    from textnorm.proxies import data as proxy_data
    from textnorm.proxies.data import _partner

    p = parse("a red circle above a blue square")
    held_out = [_partner(p, RECIPES["relation-blind"].blind, np.random.default_rng(s)) for s in range(50)]
    assert all(split_of(q) == "train" for q in held_out)
    # Without the held-out filter, the kinds are drawn exactly as the recipe weights them.
    monkeypatch.setattr(proxy_data, "split_of", lambda prompt: "train")
    rng = np.random.default_rng(4)
    # count-blind: colour, shape, binding x4, relation x6, drop, extra apply -> relation 6/14.
    partners = [_partner(p, RECIPES["count-blind"].blind, rng) for _ in range(900)]
    flipped = np.mean([q.relation == "below" and q.objects == p.objects for q in partners])
    assert flipped == pytest.approx(6 / 14, abs=0.06)
    assert all(sum(o.count for o in q.objects) <= 3 for q in partners)  # never a count near-miss
    for q in (_partner(p, RECIPES["relation-blind"].blind, rng) for _ in range(300)):
        assert q.relation != "below"


def test_tokenize_maps_digits_unknowns_and_truncates() -> None:
    vocab = ("<pad>", "<unk>", *default_vocabulary())
    ids = tokenize(["3 red circles", "a zebra-like star", ""], vocab, max_tokens=24)
    index = {w: i for i, w in enumerate(vocab)}
    assert ids[0, :3].tolist() == [index["three"], index["red"], index["circles"]]
    assert ids[1, :4].tolist() == [index["a"], 1, index["like"], index["star"]]
    assert ids[2].tolist()[0] == 1 and ids.shape == (3, 4)
    assert tokenize(["a " * 40], vocab, max_tokens=5).shape == (1, 5)
    for word in ("hexagon", "pink", "wooden", "striped", "beside", "underneath"):
        assert word in index


def _state(model: ProxyCLIP) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_is_deterministic_from_a_seed() -> None:
    m1, info1 = train_proxy("count-blind", seed=5, steps=2, batch_size=6)
    m2, _ = train_proxy("count-blind", seed=5, steps=2, batch_size=6)
    m3, _ = train_proxy("count-blind", seed=6, steps=2, batch_size=6)
    s1, s2, s3 = _state(m1), _state(m2), _state(m3)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)
    assert info1["recipe"]["seed"] == 5 and info1["recipe"]["steps"] == 2
    assert not any(p.requires_grad for p in m1.parameters()) and not m1.training


def test_save_is_byte_identical_for_identical_runs(tmp_path) -> None:
    files = []
    for run in ("a", "b"):
        model, info = train_proxy("relation-blind", seed=3, steps=2, batch_size=4)
        files.append(save_proxy(model, info, tmp_path / run / "p"))
    for x, y in zip(files[0], files[1]):
        assert x.read_bytes() == y.read_bytes()
    meta = json.loads(files[0][1].read_text())
    assert meta["recipe"]["name"] == "relation-blind" and meta["config"]["vocab"][:2] == ["<pad>", "<unk>"]


def test_train_proxy_cli_tiny_budget(tmp_path, capsys) -> None:
    from textnorm.proxies.scorer import ProxyScorer

    stem = tmp_path / "out" / "tiny"
    rc = main(["world", "train-proxy", "--name", "count-blind", "--seed", "4", "--steps", "2",
               "--batch-size", "4", "--out", str(stem)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "step 2: loss" in out and "wrote" in out
    scorer = ProxyScorer.from_files(stem.with_suffix(".safetensors"), stem.with_suffix(".json"), id="tiny")
    assert scorer.score(np.zeros((1, 64, 64, 3), np.uint8), ["a red circle"]).shape == (1, 1)
    # The CLI writes what the library writes for the same seed and budget.
    model, info = train_proxy("count-blind", seed=4, steps=2, batch_size=4)
    lib = save_proxy(model, info, tmp_path / "lib")
    assert lib[0].read_bytes() == stem.with_suffix(".safetensors").read_bytes()


def test_train_proxy_cli_errors(capsys) -> None:
    assert main(["world", "train-proxy", "--name", "nope", "--steps", "1"]) == 2
    assert "name: expected one of count-blind, relation-blind" in capsys.readouterr().err
    assert main(["world", "train-proxy", "--name", "count-blind", "--steps", "0"]) == 2
    assert "steps: expected a positive int" in capsys.readouterr().err
    assert main(["world", "train-proxy", "--name", "count-blind", "--steps", "1", "--batch-size", "3"]) == 2
    assert "batch_size: expected an even int" in capsys.readouterr().err


def test_bad_blind_spot_proxy_and_training_options_raise_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="count_truth"):
        BlindSpots(count_truth=1.5)
    with pytest.raises(ParameterError, match="category_weights"):
        BlindSpots(category_weights=(1.0, 1.0))
    with pytest.raises(ParameterError, match="category_weights"):
        BlindSpots(category_weights=(0.0, 0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ParameterError, match="hard_kinds"):
        BlindSpots(hard_kinds=("teleport",))
    with pytest.raises(ParameterError, match="batch_size"):
        make_batch(BlindSpots(), 3, np.random.default_rng(0))
    with pytest.raises(ParameterError, match="seed"):
        train_proxy("count-blind", seed=-1, steps=1)
    with pytest.raises(ParameterError, match="threads"):
        train_proxy("count-blind", steps=1, threads=0)
    with pytest.raises(ParameterError, match="vocab"):
        ProxyConfig(vocab=("a", "b", "c"))
    with pytest.raises(ParameterError, match="image_size"):
        ProxyConfig(image_size=60)
    with pytest.raises(ParameterError, match="channels"):
        ProxyConfig(channels=(8, 8))  # type: ignore[arg-type]


def test_import_textnorm_and_proxy_data_stay_torch_free() -> None:
    code = (
        "import sys, textnorm, textnorm.proxies, textnorm.proxies.data; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
