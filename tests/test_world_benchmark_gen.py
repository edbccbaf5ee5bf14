"""The TIA2-like world benchmark on generator samples (textnorm.eval.worldbench) and the
`textnorm worldbench` / `textnorm diagnose` commands: small configurations, real shipped models."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from reference_norm import row_probs  # noqa: E402

from textnorm import ParameterError  # noqa: E402
from textnorm.eval.calibrate import kfold  # noqa: E402
from textnorm.eval.diagnose import diagnose, groups_from_raw  # noqa: E402
from textnorm.eval.evaluate import evaluate_category  # noqa: E402
from textnorm.eval.worldbench import (  # noqa: E402
    WorldBenchConfig,
    generate_samples,
    run_world_benchmark,
    world_systems,
)

SMALL = WorldBenchConfig(categories=("counting", "spatial"), n_prompts=5, n_samples=8, num_steps=4, n_boot=50,
                         folds=2, render_images=4, contrast_k=6, seed=1)


@pytest.fixture(scope="module")
def proxies() -> list:
    from textnorm.proxies import load_proxies

    return load_proxies(["count-blind", "relation-blind"])


@pytest.fixture(scope="module")
def small(proxies: list):
    return run_world_benchmark(proxies, SMALL)


def test_samples_are_held_out_judged_and_cached() -> None:
    from textnorm.world import judge, parse, split_of

    a = generate_samples("counting", 4, 6, seed=1, num_steps=4)
    assert a is generate_samples("counting", 4, 6, seed=1, num_steps=4)  # the in-memory cache
    assert len(set(a.prompts)) == 4 and all(split_of(parse(p)) == "test" for p in a.prompts)
    assert a.images.shape == (4, 6, 64, 64, 3) and a.images.dtype == np.uint8
    res = judge(a.images.reshape(-1, 64, 64, 3), [p for p in a.prompts for _ in range(6)])
    np.testing.assert_array_equal(a.labels.reshape(-1), [bool(r.aligned) for r in res])
    np.testing.assert_array_equal(a.unknown.reshape(-1), [r.unknown for r in res])
    from textnorm.generator import load_generator

    fresh = generate_samples("counting", 4, 6, seed=1, num_steps=4, generator=load_generator())
    np.testing.assert_array_equal(fresh.images, a.images)  # fixed seed: the same samples


def test_small_run_structure(small, proxies) -> None:
    assert set(small.sets) == {"generated", "renders"}
    names = [s.name for s in world_systems(["count-blind", "relation-blind"])]
    assert small.systems() == names
    for set_name, cats in small.sets.items():
        assert list(cats) == ["counting", "spatial"]
        for cat, r in cats.items():
            assert 2 <= r.n_prompts <= 5 and r.bench.scored_prompts == list(r.raws["count-blind"].prompts)
            assert 0.0 < r.positive_rate < 1.0
            for system, metrics in r.metrics.items():
                for m in ("auroc", "auprc", "ap5", "ap10", "ap25"):
                    iv = metrics[m]
                    assert iv.lo <= iv.mean <= iv.hi and 0.0 <= iv.mean <= 1.0, (set_name, cat, system, m)
            assert set(r.delta_auroc) == {n for n in names if "textnorm" in n}
            # the contrast sets are the world's own
            from textnorm.world import contrast_sets

            for p, cs in zip(r.bench.prompts, contrast_sets(r.bench.prompts, k=6, seed=1)):
                assert r.bench.contrast(p) == list(cs.prompts)
    md = small.to_markdown()
    assert md.count("| count-blind: image-only share |") == 2 and "| ensemble-temperature |" in md
    assert md.count("| relation-blind: looks share |") == 2
    data = json.loads(json.dumps(small.as_dict()))
    assert data["settings"]["scorer_ids"]["count-blind"] == "textnorm-proxy:count-blind"


def _auroc_ref(s: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _ap_ref(s: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def test_metrics_equal_the_tia2_harness_and_an_independent_reference(small) -> None:
    """Same scores, same numbers: the harness (`evaluate_category`) gives the benchmark's results
    exactly; raw AUROC / AUPRC equal scikit-learn's; each TextNorm fold's scores equal a float64
    reference of the chosen setting."""
    for cats in small.sets.values():
        for r in cats.values():
            ev = evaluate_category(r.bench, r.raws, world_systems(list(r.raws)), k=2, seed=1, n_boot=50)
            np.testing.assert_equal(ev["systems"], r.evaluation["systems"])  # NaN == NaN here
            prompts = r.bench.scored_prompts
            for label, raw in r.raws.items():
                aur = [_auroc_ref(raw.raw(p), r.bench.majority(p)) for p in prompts]
                ap = [_ap_ref(raw.raw(p), r.bench.majority(p)) for p in prompts]
                assert r.metrics[f"{label} raw"]["auroc"].mean == pytest.approx(np.mean(aur), abs=1e-12)
                assert r.metrics[f"{label} raw"]["auprc"].mean == pytest.approx(np.mean(ap), abs=1e-12)
            name = "count-blind textnorm-temperature"
            raw = r.raws["count-blind"]
            chosen = r.evaluation["systems"][name]["chosen"]
            for f, fold in enumerate(kfold(prompts, 2, seed=1)):
                setting = chosen[f]
                for p in fold:
                    values, offsets = raw.segments(p)
                    conf = [row_probs(values[offsets[i]:offsets[i + 1]], setting["scale"], setting["mode"])[0]
                            for i in range(len(offsets) - 1)]
                    got = r.evaluation["per_prompt"][name][p]["auroc"]
                    assert got == pytest.approx(_auroc_ref(np.array(conf), r.bench.majority(p)), abs=1e-9)


def test_scores_equal_the_harness_scoring_and_feed_the_diagnostic(small, proxies) -> None:
    """One pass over [prompt, *contrast, *references] gives the harness's raw scores
    (`compute_raw_scores`), and the diagnostic in the result is `diagnose` on them."""
    from textnorm.eval.cache import compute_raw_scores
    from textnorm.eval.diagnose import reference_lists
    from textnorm.eval.worldbench import generate_samples

    r = small.sets["generated"]["counting"]
    prompts = r.bench.scored_prompts
    smp = generate_samples("counting", 5 + 2 + 10, 8, seed=1, num_steps=4)
    store = {p: smp.images[smp.prompts.index(p)] for p in prompts}
    harness = compute_raw_scores(proxies[0], r.bench, prompts=prompts, load_images=lambda b, p: store[p],
                                 progress=False)
    np.testing.assert_allclose(r.raws["count-blind"].values, harness.values, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(r.raws["count-blind"].offsets, harness.offsets)
    refs = reference_lists(prompts, 8, seed=1, exclude=[r.bench.contrast(p) for p in prompts])
    ref_scores = [proxies[0].score(store[p], lst).numpy() for p, lst in zip(prompts, refs)]
    labels = [r.bench.majority(p).astype(int) for p in prompts]
    want = diagnose(groups_from_raw(r.raws["count-blind"]), labels=labels, reference=ref_scores, n_boot=50, seed=1)
    got = r.diagnosis["count-blind"]
    assert got.image_share == want.image_share and got.ranking == want.ranking
    assert got.looks_share is not None and got.looks_share.mean == pytest.approx(want.looks_share.mean, rel=1e-5)


class _Looks:
    """A proxy plus a term of the image alone (its foreground area), as a rater's taste for looks."""

    def __init__(self, inner, weight: float) -> None:
        self.inner, self.weight, self.id = inner, weight, f"{inner.id}+looks{weight}"

    def score_sets(self, images, prompt_lists):
        values, offsets = self.inner.score_sets(images, prompt_lists)
        arr = np.asarray(images, dtype=np.float64)
        area = (np.abs(arr - 240.0).sum(axis=-1) > 60).mean(axis=(1, 2))
        bump = np.repeat(self.weight * area * 100.0, [len(p) for p in prompt_lists])
        return values.numpy().astype(np.float64) + bump, offsets.numpy()


def test_an_image_only_term_moves_raw_and_the_share_but_not_textnorm(proxies) -> None:
    cfg = WorldBenchConfig(categories=("counting",), n_prompts=5, n_samples=8, num_steps=4, n_boot=50, folds=2,
                           render_images=0, contrast_k=6, seed=1)
    base = run_world_benchmark({"p": proxies[0]}, cfg).sets["generated"]["counting"]
    looks = run_world_benchmark({"p": _Looks(proxies[0], 1.0)}, cfg).sets["generated"]["counting"]
    for p in base.bench.scored_prompts:
        a = base.evaluation["per_prompt"]["p textnorm-minmax"][p]["auroc"]
        b = looks.evaluation["per_prompt"]["p textnorm-minmax"][p]["auroc"]
        assert a == pytest.approx(b, abs=1e-9)  # min-max over one image's row cancels the term
    assert looks.diagnosis["p"].image_share.mean > base.diagnosis["p"].image_share.mean
    assert looks.diagnosis["p"].looks_share.mean > base.diagnosis["p"].looks_share.mean + 0.1
    assert not math.isclose(looks.metrics["p raw"]["auroc"].mean, base.metrics["p raw"]["auroc"].mean)


def test_errors(proxies) -> None:
    with pytest.raises(ParameterError, match="categories"):
        WorldBenchConfig(categories=("dogs",))
    with pytest.raises(ParameterError, match="n_samples"):
        WorldBenchConfig(n_samples=1)
    with pytest.raises(ParameterError, match="render_images"):
        WorldBenchConfig(render_images=1)
    with pytest.raises(ParameterError, match="scorers"):
        run_world_benchmark([], SMALL)
    with pytest.raises(ParameterError, match="score_sets"):
        run_world_benchmark({"x": object()}, SMALL)
    with pytest.raises(ParameterError, match="sets"):
        run_world_benchmark(proxies, SMALL, sets=("tia2",))


def test_worldbench_command_writes_its_report(tmp_path: Path) -> None:
    from textnorm.cli import main

    out = tmp_path / "wb"
    rc = main(["worldbench", "--quick", "--categories", "counting", "--prompts", "4", "--bootstrap", "20",
               "--scorers", "count-blind", "--scales", "1,30", "--out", str(out)])
    assert rc == 0
    md = (out / "report.md").read_text()
    assert "| count-blind raw |" in md and "| count-blind: image-only share |" in md
    data = json.loads((out / "results.json").read_text())
    cell = data["sets"]["generated"]["counting"]["metrics"]["count-blind raw"]["auroc"]
    assert all(math.isfinite(cell[k]) for k in ("mean", "lo", "hi"))
    assert data["settings"]["scales"] == [1.0, 30.0]
    assert main(["worldbench", "--quick", "--scorers", "count-blind", "--samples", "1"]) == 2


def test_diagnose_command_on_a_jsonl_and_on_the_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from textnorm.cli import main
    from textnorm.world import render, render_near_misses

    lines = []
    for i, prompt in enumerate(["three red circles", "a blue square to the left of a green star"]):
        good = render([prompt] * 3, seed=[10 * i, 10 * i + 1, 10 * i + 2])
        bad, _, _ = render_near_misses([prompt] * 3, seed=[5, 6, 7])
        for j, (img, lab) in enumerate([(x, 1) for x in good] + [(x, 0) for x in bad]):
            name = f"{i}_{j}.png"
            Image.fromarray(img).save(tmp_path / name)
            lines.append(json.dumps({"prompt": prompt, "image": name, "label": lab}))
    (tmp_path / "set.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "diag.json"
    rc = main(["diagnose", "--scorers", "cb@count-blind", "--prompts", str(tmp_path / "set.jsonl"),
               "--bootstrap", "20", "--json", str(out)])
    assert rc == 0
    assert "| cb | 2 |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["labels"] is True and data["scorers"]["cb"]["n_images"] == 12
    assert 0.0 <= data["scorers"]["cb"]["image_share"]["mean"] <= 1.0
    assert len(data["contrast"][0]) == 16  # the world's contrast sets (auto)
    assert data["reference"] == [["a blue square to the left of a green star"], ["three red circles"]]
    assert data["scorers"]["cb"]["looks_share"]["n"] == 2
    rc = main(["diagnose", "--scorers", "relation-blind", "--categories", "spatial", "--world-prompts", "3",
               "--world-samples", "6", "--steps", "4", "--bootstrap", "20", "--no-labels"])
    assert rc == 0 and "| relation-blind | 3 |" in capsys.readouterr().out
    assert main(["diagnose", "--images", str(tmp_path)]) == 2
