"""The nuisance diagnostic (textnorm.eval.diagnose): exact two-way split, recovery of a known
split, invariances, ranking by parts, and the `textnorm diagnose` command."""

import doctest
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from textnorm import LayoutError, NonFiniteError, ParameterError
from textnorm.eval.cache import RawScores
from textnorm.eval.diagnose import decompose, diagnose, diagnosis_markdown, groups_from_raw, score_groups

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
matrices = st.tuples(st.integers(1, 7), st.integers(2, 7)).flatmap(
    lambda s: hnp.arrays(np.float64, s, elements=finite)
)


def _centred(rng: np.random.Generator, m: int, n: int, sd: float) -> np.ndarray:
    """A random (m, n) matrix whose rows and columns all sum to zero."""
    x = rng.normal(0.0, sd, (m, n))
    return x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()


@given(matrices)
def test_decomposition_is_exact_and_orthogonal(s: np.ndarray) -> None:
    d = decompose(s)
    m, n = s.shape
    rebuilt = d.mean + d.image[:, None] + d.prompt[None, :] + d.interaction
    scale = 1.0 + np.abs(s).max()
    np.testing.assert_allclose(rebuilt, s, atol=1e-9 * scale)
    assert abs(d.image.sum()) < 1e-9 * scale * m and abs(d.prompt.sum()) < 1e-9 * scale * n
    np.testing.assert_allclose(d.interaction.sum(axis=0), 0.0, atol=1e-9 * scale * m)
    np.testing.assert_allclose(d.interaction.sum(axis=1), 0.0, atol=1e-9 * scale * n)
    sums = d.sums()
    total = float(np.sum((s - s.mean()) ** 2))
    parts = sums["ss_image"] + sums["ss_prompt"] + sums["ss_interaction"]
    assert parts == pytest.approx(total, rel=1e-9, abs=1e-9 * scale**2)


@given(matrices, st.data())
def test_row_constants_change_only_the_image_part(s: np.ndarray, data: st.DataObject) -> None:
    m, n = s.shape
    c_row = data.draw(hnp.arrays(np.float64, m, elements=finite))
    c_col = data.draw(hnp.arrays(np.float64, n, elements=finite))
    d = decompose(s)
    r = decompose(s + c_row[:, None])
    tol = 1e-9 * (1.0 + np.abs(s).max() + np.abs(c_row).max() + np.abs(c_col).max())
    np.testing.assert_allclose(r.prompt, d.prompt, atol=tol)
    np.testing.assert_allclose(r.interaction, d.interaction, atol=tol)
    np.testing.assert_allclose(r.image, d.image + c_row - c_row.mean(), atol=tol)
    c = decompose(s + c_col[None, :])
    np.testing.assert_allclose(c.image, d.image, atol=tol)
    np.testing.assert_allclose(c.interaction, d.interaction, atol=tol)
    np.testing.assert_allclose(c.prompt, d.prompt + c_col - c_col.mean(), atol=tol)


def test_recovers_a_planted_split_exactly() -> None:
    """Parts built to be a two-way split (zero-sum image and prompt terms, doubly centred
    interaction) come back exactly, and the shares are their sums of squares."""
    rng = np.random.default_rng(0)
    groups, v_img, v_int, ss = [], 0.0, 0.0, np.zeros(3)
    for g in range(30):
        m, n = int(rng.integers(3, 20)), int(rng.integers(2, 12))  # ragged
        a = rng.normal(0, 2.0, m)
        a -= a.mean()
        b = rng.normal(0, 1.0, n)
        b -= b.mean()
        e = _centred(rng, m, n, 1.5)
        s = 5.0 * g + a[:, None] + b[None, :] + e
        d = decompose(s)
        np.testing.assert_allclose(d.image, a, atol=1e-10)
        np.testing.assert_allclose(d.prompt, b, atol=1e-10)
        np.testing.assert_allclose(d.interaction, e, atol=1e-10)
        groups.append(s)
        v_img += float(a @ a)
        v_int += float(e[:, 0] @ e[:, 0])
        ss += [n * (a @ a), m * (b @ b), np.sum(e**2)]
    out = diagnose(groups, n_boot=200)
    assert out.image_share.mean == pytest.approx(v_img / (v_img + v_int), rel=1e-10)
    # covariance attribution: the image part's share of the target column's variance itself
    cov = sum(float(decompose(s).image @ decompose(s).interaction[:, 0]) for s in groups)
    var_target = sum(float(np.sum((s[:, 0] - s[:, 0].mean()) ** 2)) for s in groups)
    assert out.variance_share is not None
    assert out.variance_share.mean == pytest.approx((v_img + cov) / var_target, rel=1e-9)
    for part, want in zip(("image", "prompt", "interaction"), ss / ss.sum()):
        assert out.matrix_shares[part].mean == pytest.approx(want, rel=1e-10)
    assert sum(out.matrix_shares[p].mean for p in ("image", "prompt", "interaction")) == pytest.approx(1.0)
    assert out.n_groups == 30 and out.n_images == sum(s.shape[0] for s in groups)


@pytest.mark.parametrize("sd_image", [0.0, 0.5, 1.0, 2.0])
def test_recovers_the_share_of_a_random_image_term(sd_image: float) -> None:
    """Score = image-only term of known variance + independent interaction noise. The estimated
    row term also holds the row mean of the noise (variance sd_e^2 / N), so the expected share is
    (sd_a^2 + sd_e^2 / N) / (sd_a^2 + sd_e^2); the estimate is within 0.02 and its interval covers it."""
    rng = np.random.default_rng(1)
    m, n, sd_e = 32, 17, 1.0
    groups = [
        rng.normal(0, sd_image, (m, 1)) + rng.normal(0, sd_e, (m, n)) + rng.normal(0, 3.0, (1, n))
        for _ in range(300)
    ]
    want = (sd_image**2 + sd_e**2 / n) / (sd_image**2 + sd_e**2)
    out = diagnose(groups, n_boot=500, seed=2)
    assert out.image_share.mean == pytest.approx(want, abs=0.02)
    assert out.image_share.lo <= want <= out.image_share.hi
    assert abs(out.correlation) < 0.05
    # the prompt term (sd 3 per column) lands in the matrix's prompt share, not in the image share
    assert out.matrix_shares["prompt"].mean > 0.5


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> float:
    pos, neg = x[y == 1], x[y == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def test_ranking_by_parts_against_an_independent_reference() -> None:
    """Labels carried by the interaction: ranking by it is near perfect, by the image term a coin
    flip, by the raw score in between; each equals a direct Mann-Whitney count."""
    rng = np.random.default_rng(3)
    groups, labels = [], []
    for _ in range(40):
        y = rng.random(24) < 0.4
        y[:2] = [True, False]
        s = rng.normal(0, 2.0, (24, 1)) + rng.normal(0, 0.3, (24, 9))
        s[:, 0] += 1.5 * y  # aligned images score higher on the target prompt only
        groups.append(s)
        labels.append(y.astype(int))
    out = diagnose(groups, labels=labels, n_boot=300)
    assert out.ranking is not None
    for part in ("raw", "image", "interaction"):
        ref = []
        for s, y in zip(groups, labels):
            d = decompose(s)
            x = {"raw": s[:, 0], "image": d.image, "interaction": d.interaction[:, 0]}[part]
            ref.append(_mann_whitney(x, y))
        assert out.ranking[part].mean == pytest.approx(float(np.mean(ref)), abs=1e-12)
    assert out.ranking["interaction"].mean > 0.95
    assert 0.35 < out.ranking["image"].mean < 0.7
    assert out.ranking["image"].mean < out.ranking["raw"].mean < out.ranking["interaction"].mean
    # one-class groups are left out of the macro average
    labels[0] = np.ones(24, dtype=int)
    assert diagnose(groups, labels=labels, n_boot=10).ranking["raw"].n == 39  # type: ignore[index]


def test_bootstrap_interval_is_seeded_and_covers_the_mean() -> None:
    rng = np.random.default_rng(4)
    groups = [rng.normal(0, 1, (8, 1)) + rng.normal(0, 1, (8, 5)) for _ in range(25)]
    a, b = diagnose(groups, seed=7), diagnose(groups, seed=7)
    assert a.image_share == b.image_share
    assert a.image_share.lo <= a.image_share.mean <= a.image_share.hi
    assert a.image_share.n == 25
    one = diagnose(groups[:1], n_boot=50)
    assert one.image_share.lo == one.image_share.hi == pytest.approx(one.image_share.mean)


def test_groups_from_raw_and_score_groups() -> None:
    rng = np.random.default_rng(5)
    mats = [rng.normal(size=(3, 4)), rng.normal(size=(2, 6))]
    values = np.concatenate([m.reshape(-1) for m in mats])
    lengths = [4, 4, 4, 6, 6]
    raw = RawScores(["p", "q"], values, np.r_[0, np.cumsum(lengths)].astype(np.int64), np.array([0, 3, 5]))
    got = groups_from_raw(raw)
    for g, m in zip(got, mats):
        np.testing.assert_array_equal(g, m)

    class Fake:
        def score(self, images: np.ndarray, texts: list[str]) -> np.ndarray:
            return images[:, :1] * np.arange(1, len(texts) + 1)[None, :]

    class SetsOnly:
        def score_sets(self, images: np.ndarray, lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
            full = Fake().score(images, lists[0])
            return full.reshape(-1), np.arange(len(images) + 1) * len(lists[0])

    imgs = [np.arange(5.0)[:, None], np.arange(3.0)[:, None]]
    lists = [["a", "b", "c"], ["d", "e"]]
    for scorer in (Fake(), SetsOnly()):
        out = score_groups(scorer, imgs, lists, batch_size=2)
        np.testing.assert_array_equal(out[0], np.arange(5.0)[:, None] * [1, 2, 3])
        np.testing.assert_array_equal(out[1], np.arange(3.0)[:, None] * [1, 2])


def test_errors() -> None:
    with pytest.raises(LayoutError, match="groups"):
        diagnose([])
    with pytest.raises(LayoutError, match="wrap it"):
        diagnose(np.zeros((3, 4)))
    with pytest.raises(LayoutError, match=r"groups\[1\]"):
        diagnose([np.zeros((3, 4)), np.zeros((3, 1))])
    with pytest.raises(NonFiniteError, match="finite"):
        diagnose([np.array([[0.0, np.nan]])])
    with pytest.raises(LayoutError, match=r"labels\[0\]"):
        diagnose([np.zeros((3, 2))], labels=[[1, 0]])
    with pytest.raises(LayoutError, match="labels"):
        diagnose([np.zeros((3, 2))], labels=[])
    with pytest.raises(ParameterError, match="n_boot"):
        diagnose([np.zeros((3, 2))], n_boot=0)
    with pytest.raises(LayoutError, match="prompt_lists"):
        score_groups(object(), [np.zeros((1, 1))], [])


def test_markdown_lists_each_scorer() -> None:
    rng = np.random.default_rng(6)
    groups = [rng.normal(size=(6, 3)) for _ in range(5)]
    labels = [np.array([1, 0, 1, 0, 1, 0])] * 5
    md = diagnosis_markdown({"a": diagnose(groups, labels=labels, n_boot=20), "b": diagnose(groups, n_boot=20)})
    assert md.count("\n") == 4 and "| a | 5 |" in md and "AUROC by interaction" in md
    assert json.loads(json.dumps(diagnose(groups, labels=labels, n_boot=20).as_dict()))["n_groups"] == 5


def test_docstring_examples_run() -> None:
    import textnorm.eval.diagnose as module

    result = doctest.testmod(module)
    assert result.attempted >= 3 and result.failed == 0


def test_looks_share_recovers_a_planted_look_term_and_ignores_the_contrast_family() -> None:
    """Target score = looks (shared with unrelated prompts) + signal; reference scores = looks +
    independent noise. The looks share is the pooled squared correlation (checked against a
    direct float64 computation) and lands near var_looks / (var_looks + var_signal)."""
    rng = np.random.default_rng(8)
    groups, refs = [], []
    for _ in range(200):
        looks = rng.normal(0, 1.0, 24)
        signal = rng.normal(0, 2.0, 24)
        family = rng.normal(0, 3.0, (24, 1))  # shared by the target and its near-misses only
        groups.append(np.c_[looks + signal, looks[:, None] + rng.normal(0, 2.0, (24, 6))] + family)
        refs.append(looks[:, None] + rng.normal(0, 0.3, (24, 8)))
    out = diagnose(groups, reference=refs, n_boot=300)
    assert out.looks_share is not None
    lc = [r.mean(axis=1) - r.mean(axis=1).mean() for r in refs]
    tc = [g[:, 0] - g[:, 0].mean() for g in groups]
    cross = sum(float(x @ y) for x, y in zip(lc, tc))
    want = cross**2 / (sum(float(x @ x) for x in lc) * sum(float(y @ y) for y in tc))
    assert out.looks_share.mean == pytest.approx(want, rel=1e-10)
    # the family term (variance 9) is far from the looks (variance 1) in this signal-rich set
    assert out.looks_share.mean == pytest.approx(1.0 / (1.0 + 4.0 + 9.0), abs=0.03)
    assert out.looks_share.lo <= out.looks_share.mean <= out.looks_share.hi
    # the contrast-set share sees the family as image-only too: it cannot tell the two apart
    assert out.image_share.mean > 0.5
    labels = [(g[:, 0] > np.median(g[:, 0])).astype(int) for g in groups]
    ranked = diagnose(groups, reference=refs, labels=labels, n_boot=20).ranking
    assert ranked is not None and set(ranked) == {"raw", "image", "interaction", "looks"}
    assert "looks share" in diagnosis_markdown({"x": out})
    with pytest.raises(LayoutError, match=r"reference\[0\]"):
        diagnose(groups[:1], reference=[np.zeros((3, 2))])
    with pytest.raises(LayoutError, match="reference"):
        diagnose(groups[:1], reference=[])


def test_reference_lists_exclude_the_target_and_its_contrast() -> None:
    from textnorm.eval.diagnose import reference_lists

    prompts = [f"p{i}" for i in range(10)]
    excl = [[f"p{(i + 1) % 10}"] for i in range(10)]
    lists = reference_lists(prompts, 4, seed=3, exclude=excl)
    assert lists == reference_lists(prompts, 4, seed=3, exclude=excl)
    for p, e, lst in zip(prompts, excl, lists):
        assert len(lst) == len(set(lst)) == 4 and p not in lst and e[0] not in lst
    assert all(len(x) == 8 for x in reference_lists(prompts, 50, exclude=excl))
    with pytest.raises(ParameterError, match="r:"):
        reference_lists(prompts, 0)
