"""Score cache and leakage-free calibration of textnorm.eval, on synthetic logits and tiny images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from textnorm import LayoutError, ParameterError
from textnorm.eval.benchmark import from_records
from textnorm.eval.cache import RawScores, ScoreCache, compute_raw_scores, scorer_id
from textnorm.eval.calibrate import (
    System,
    cross_validate,
    default_systems,
    kfold,
    reliability,
    system_scores,
)
from textnorm.eval.metrics import auroc, prompt_metrics


def ref_confidence(values: np.ndarray, offsets: np.ndarray, scale: float) -> np.ndarray:
    """float64 min-max TextNorm confidence of the target (first slot), one segment at a time."""
    out = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        seg = values[a:b]
        span = seg.max() - seg.min()
        z = np.zeros(seg.size) if span == 0 else scale * (seg - seg.min()) / span
        e = np.exp(z - z.max())
        out.append(e[0] / e.sum())
    return np.array(out)


def synthetic(n_prompts: int = 12, n_images: int = 20, k: int = 4, seed: int = 0):  # type: ignore[no-untyped-def]
    """A benchmark and two scorers' raw logits: the target logit is a weak signal, while the margin
    over the contrastive prompts carries the label (a proxy that is blind in absolute terms)."""
    rng = np.random.default_rng(seed)
    records, raws = {}, {"a": [], "b": []}
    for p in range(n_prompts):
        labels = rng.random(n_images) < 0.5
        labels[0], labels[1] = True, False
        rows = [[int(v)] * 2 + [int(rng.random() < 0.5)] for v in labels]
        names = [f"img{p}_{i}" for i in range(n_images)]
        records[f"prompt {p}"] = ([f"contrast {p}.{j}" for j in range(k)], names, rows)
        for name, noise in (("a", 0.5), ("b", 1.0)):
            base = rng.normal(size=(n_images, 1)) * 3.0
            seg = base + rng.normal(size=(n_images, k + 1)) * noise
            seg[:, 0] = base[:, 0] + np.where(labels, 1.0, -1.0) + rng.normal(size=n_images) * noise
            raws[name].append(seg)
    bench = from_records("synthetic", "cat", records)
    prompts = list(records)
    out = {}
    for name, segs in raws.items():
        vals = np.concatenate([s.reshape(-1) for s in segs])
        out[name] = RawScores(prompts, vals, np.arange(0, vals.size + 1, k + 1),
                              np.arange(0, n_prompts * n_images + 1, n_images))
    return bench, out


def test_kfold_partitions_prompts() -> None:
    prompts = [f"p{i}" for i in range(11)]
    folds = kfold(prompts, 3, seed=1)
    assert sorted(p for f in folds for p in f) == sorted(prompts)
    assert sorted(len(f) for f in folds) == [3, 4, 4]
    assert kfold(prompts, 3, seed=1) == folds and kfold(prompts, 3, seed=2) != folds
    for bad in (1, 12, 2.0):
        with pytest.raises(ParameterError, match="k"):
            kfold(prompts, bad)  # type: ignore[arg-type]


def test_system_scores_match_the_float64_reference() -> None:
    _, raws = synthetic()
    r = raws["a"]
    assert np.array_equal(system_scores(System("a", "raw", ("a",)), {}, raws), r.values[r.offsets[:-1]])
    for scale in (0.1, 3.0, 10.0):
        got = system_scores(System("t", "textnorm", ("a",)), {"scale": scale}, raws)
        np.testing.assert_allclose(got, ref_confidence(r.values, r.offsets, scale), rtol=1e-5, atol=1e-7)
        pa = ref_confidence(raws["a"].values, r.offsets, scale)
        pb = ref_confidence(raws["b"].values, r.offsets, scale)
        mean = (pa + pb) / 2
        ens = System("e", "ensemble", ("a", "b"))
        np.testing.assert_allclose(system_scores(ens, {"scale": scale, "method": "mean", "lam": 0.0}, raws),
                                   mean, rtol=1e-5, atol=1e-7)
        var = ((pa - mean) ** 2 + (pb - mean) ** 2) / 2
        np.testing.assert_allclose(system_scores(ens, {"scale": scale, "method": "ur", "lam": 0.5}, raws),
                                   mean - 0.5 * var, rtol=1e-5, atol=1e-7)
    with pytest.raises(ParameterError, match="scorer 'c'"):
        system_scores(System("c", "raw", ("c",)), {}, raws)
    with pytest.raises(ParameterError, match="kind"):
        system_scores(System("c", "other", ("a",)), {}, raws)


def test_cross_validation_chooses_on_training_folds_only() -> None:
    bench, raws = synthetic()
    system = [s for s in default_systems(["a", "b"]) if s.kind == "ensemble"][0]
    assert len(system.grid) == 5 + 5 * 4
    res = cross_validate(system, raws, bench, k=3, seed=0)
    folds = kfold(bench.prompts, 3, seed=0)
    tables = []
    for g in system.grid:
        sc = system_scores(system, g, raws)
        tables.append({p: auroc(sc[i * 20:(i + 1) * 20], bench.majority(p)) for i, p in enumerate(bench.prompts)})
    for f, test in enumerate(folds):
        train = [p for p in bench.prompts if p not in test]
        means = [np.mean([t[p] for p in train]) for t in tables]
        best = int(np.argmax(means))  # first maximum, as in the implementation
        chosen = {k: v for k, v in res.chosen[f].items() if k not in ("fold", "tie_threshold")}
        assert chosen == dict(system.grid[best])
        for p in test:
            assert res.per_prompt[p]["auroc"] == pytest.approx(tables[best][p])
    # The leaky per-prompt oracle can only be better than the held-out choice.
    assert all(res.oracle[p] >= res.per_prompt[p]["auroc"] - 1e-12 for p in bench.prompts)
    assert set(res.per_prompt) == set(bench.prompts)
    assert all(0 <= row["pairwise_acc"] <= 1 for row in res.per_prompt.values())


def test_textnorm_beats_the_blind_raw_reward_on_synthetic_data() -> None:
    bench, raws = synthetic(n_prompts=15, seed=3)
    systems = {s.name: s for s in default_systems(["a", "b"])}
    raw = cross_validate(systems["a"], raws, bench, k=5)
    tn = cross_validate(systems["a+textnorm"], raws, bench, k=5)
    mean = lambda r: np.mean([v["auroc"] for v in r.per_prompt.values()])  # noqa: E731
    assert mean(tn) > mean(raw) + 0.1
    assert raw.oracle == {} and len(raw.chosen) == 5


def test_cross_validate_rejects_mismatched_caches() -> None:
    bench, raws = synthetic()
    r = raws["b"]
    raws["b"] = RawScores(r.prompts[::-1], r.values, r.offsets, r.image_offsets)
    with pytest.raises(ParameterError, match="same prompts"):
        cross_validate(default_systems(["a", "b"])[-1], raws, bench, k=2)
    with pytest.raises(ParameterError, match="select"):
        cross_validate(default_systems(["a"])[0], raws, bench, k=2, select="accuracy")


def test_reliability_by_hand() -> None:
    conf = np.array([0.05, 0.15, 0.15, 0.95, 1.0])
    hit = np.array([0, 1, 0, 1, 1], dtype=bool)
    out = reliability(conf, hit, n_bins=10)
    assert out["count"] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert out["accuracy"][1] == 0.5 and math.isnan(out["accuracy"][2])
    expected = (1 * 0.05 + 2 * abs(0.5 - 0.15) + 2 * abs(1.0 - 0.975)) / 5
    assert out["ece"] == pytest.approx(expected)
    with pytest.raises(ParameterError, match="correct"):
        reliability(conf, hit[:2])
    with pytest.raises(ParameterError, match="n_bins"):
        reliability(conf, hit, n_bins=0)


class CountingScorer:
    """Deterministic stand-in for a reward model: logit = mean pixel / 255 + hash of the text."""

    def __init__(self, sid: str | None = "toy-v1") -> None:
        self.id = sid
        self.calls = 0

    def score_sets(self, images, prompt_lists):  # type: ignore[no-untyped-def]
        self.calls += 1
        vals, offs = [], [0]
        for im, plist in zip(images, prompt_lists):
            m = float(np.asarray(im, dtype=np.float64).mean()) / 255.0
            vals += [m + (sum(map(ord, t)) % 97) / 97.0 for t in plist]
            offs.append(len(vals))
        return np.array(vals), np.array(offs)


def tiny_images_bench(tmp_path: Path):  # type: ignore[no-untyped-def]
    from PIL import Image

    rng = np.random.default_rng(0)
    records = {}
    for p in range(3):
        names = []
        for i in range(5):
            name = f"p{p}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(tmp_path / name)
            names.append(name)
        records[f"prompt {p}"] = ([f"alt {p}", f"prompt {p}"], names, [[1, 1, 1], [0, 0, 0]] * 2 + [[1, 0, 1]])
    return from_records("tiny", "cat", records, images_dir=tmp_path)


def test_cache_computes_once_and_reloads_exactly(tmp_path: Path) -> None:
    bench = tiny_images_bench(tmp_path)
    scorer = CountingScorer()
    cache = ScoreCache(tmp_path / "cache")
    first = cache.get_or_compute(scorer, bench, batch_size=2, progress=False)
    assert scorer.calls == 3 * 3  # 5 images per prompt in batches of 2
    assert first.offsets.tolist() == list(range(0, 31, 2))  # duplicate of the target removed
    again = ScoreCache(tmp_path / "cache").get_or_compute(scorer, bench, progress=False)
    assert scorer.calls == 9
    assert np.array_equal(again.values, first.values) and again.prompts == first.prompts
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    (entry,) = index["entries"].values()
    assert entry["scorer"] == "toy-v1" and entry["n_images"] == 15
    # another scorer id, or changed data, is a miss
    ScoreCache(tmp_path / "cache").get_or_compute(CountingScorer("toy-v2"), bench, progress=False)
    assert len(json.loads((tmp_path / "cache" / "index.json").read_text())["entries"]) == 2
    changed = from_records("tiny", "cat", {p: (["other"], list(d.images), d.labels.tolist())
                                            for p, d in bench.data.items()}, images_dir=tmp_path)
    assert cache.get("toy-v1", changed) is None
    assert cache.get("toy-v1", bench, bench.prompts[:2]) is None
    assert cache.alias("toy") is None
    cache.set_alias("toy", "toy-v1")
    assert cache.alias("toy") == "toy-v1" and cache.get("toy-v1", bench) is not None
    # the per-prompt views agree with a direct computation
    direct = compute_raw_scores(scorer, bench, progress=False)
    np.testing.assert_array_equal(direct.raw("prompt 1"), direct.values[direct.offsets[5:10]])
    vals, offs = direct.segments("prompt 2")
    assert offs.tolist() == [0, 2, 4, 6, 8, 10] and vals.size == 10


def test_cache_and_scorer_errors(tmp_path: Path) -> None:
    bench = tiny_images_bench(tmp_path)
    with pytest.raises(ParameterError, match="'id'"):
        scorer_id(CountingScorer(None))

    class Broken(CountingScorer):
        def score_sets(self, images, prompt_lists):  # type: ignore[no-untyped-def]
            v, o = super().score_sets(images, prompt_lists)
            return v[:-1], o[:-1]

    with pytest.raises(LayoutError, match="offsets"):
        compute_raw_scores(Broken(), bench, progress=False)
    with pytest.raises(ParameterError, match="batch_size"):
        compute_raw_scores(CountingScorer(), bench, batch_size=0)
    with pytest.raises(LayoutError, match="image_offsets"):
        RawScores(["a"], np.zeros(2), np.array([0, 2]), np.array([0, 2]))
    with pytest.raises(LayoutError, match="offsets"):
        RawScores(["a"], np.zeros(2), np.array([0, 3]), np.array([0, 1]))
    raw = compute_raw_scores(CountingScorer(), bench, progress=False)
    with pytest.raises(ParameterError, match="prompt"):
        raw.raw("nope")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "index.json").write_text('{"version": 99}')
    with pytest.raises(LayoutError, match="version"):
        ScoreCache(tmp_path / "c").get("x", bench)


def test_metrics_of_cached_scores_are_the_per_prompt_metrics(tmp_path: Path) -> None:
    bench = tiny_images_bench(tmp_path)
    raw = compute_raw_scores(CountingScorer(), bench, progress=False)
    sys_raw = System("toy", "raw", ("toy",))
    res = cross_validate(sys_raw, {"toy": raw}, bench, k=3)
    for p in bench.prompts:
        want = prompt_metrics(raw.raw(p), bench.majority(p), bench.targets(p))
        got = {k: v for k, v in res.per_prompt[p].items() if k != "pairwise_acc"}
        assert got == pytest.approx(want, nan_ok=True)
