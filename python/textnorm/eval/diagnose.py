"""The nuisance diagnostic: how much of a reward's spread over one prompt's images is shared by
the whole prompt list (what TextNorm removes), and how much of it is looks (what the reward gives
an image whatever it is asked)? No labels needed.

Score every image of a prompt group against the group's prompt list ``[target, *contrast]``: an
(M images) x (N = 1 + K prompts) matrix ``S`` per group, target in column 0. Groups may differ in
M and K (ragged). Within one group, the two-way (ANOVA-style) decomposition is exact::

    S[i, j] = mu + a[i] + b[j] + e[i, j]
    mu      = mean of S
    a[i]    = mean_j S[i, j] - mu           image-only term (row effect)
    b[j]    = mean_i S[i, j] - mu           prompt-only term (column effect)
    e[i, j] = S[i, j] - mu - a[i] - b[j]    interaction

so ``sum_i a = sum_j b = 0`` and every row and column of ``e`` sums to zero. TextNorm's min-max
and softmax over one image's row cannot see a term shared by the whole row: they cancel ``a[i]``
(and, being monotone in one row, keep the order that ``b[0] + e[i, 0]`` sets against the row's
other entries). Adding a constant to one row changes ``a`` only; adding one to a column changes
``b`` only.

Reported quantities:

- **image-only share** (the headline): over the target column, ``S[i, 0] - mean_i S[i, 0] =
  a[i] + e[i, 0]``. With ``V_img = sum_i a[i]^2`` and ``V_int = sum_i e[i, 0]^2`` pooled over
  groups, the share is ``sum_g V_img / sum_g (V_img + V_int)``, in [0, 1]. It equals the share of
  the within-prompt variance of the target score that is image-only when the two parts are
  uncorrelated; their pooled correlation ``sum_g C / sqrt(sum_g V_img * sum_g V_int)``, with
  ``C = sum_i a[i] e[i, 0]``, is reported beside it (``correlation``), and so is the covariance
  attribution ``variance_share = sum_g (V_img + C) / sum_g (V_img + V_int + 2 C)``: the image-only
  part's share of the target score's variance itself (it and the interaction's share add up to 1;
  it can leave [0, 1] when the parts are strongly anti-correlated).
- **matrix shares**: the whole matrices' sums of squares, ``N sum a^2`` (image), ``M sum b^2``
  (prompt) and ``sum e^2`` (interaction), pooled over groups, each over their total (these add
  up to 1 exactly: the three parts are orthogonal).
- **ranking** (with labels): per-group AUROC of each part alone against the binary labels,
  macro-averaged over groups with both label classes (`textnorm.eval.metrics.auroc`): ``raw``
  ranks by ``S[i, 0]``, ``image`` by ``a[i]``, ``interaction`` by ``e[i, 0]`` (and ``looks`` by
  ``l[i]`` below, when given).
- **looks share** (optional, no labels either): score the same images against R prompts unrelated
  to the target (other groups' prompts: `reference_lists`), ``l[i]`` = the image's mean over them,
  centred in its group. That is an image-only term in the strict sense: what the reward gives the
  image whatever it is asked. The looks share is the pooled squared correlation of ``l`` with the
  centred target score ``s[i] = S[i, 0] - mean_i S[i, 0]``: ``(sum_g sum_i l s)^2 / (sum_g sum_i
  l^2 * sum_g sum_i s^2)``, the share of the target's spread that looks explain.

Reading it: the image-only term is relative to the prompt list (the looks share is not). ``a[i]``
holds what an image scores on every prompt of the list alike: its looks (what a
preference-trained reward likes whatever the prompt), but also how well it fits what the target
and its near-misses share (the right objects at all, when only the count differs). A high
image-only share says TextNorm will change the ranking a lot; the looks share says how much of
that is looks, without labels; with labels, the ranking by parts says in which direction: when
``image`` ranks aligned images as well as ``raw`` does, the row term is signal and calibration
loses it; when it ranks them near chance and ``interaction`` ranks them well, it is nuisance and
calibration removes it. On the shipped contrastively trained world proxies the image-only share
is 75-94% and the looks share 1-22%: the row term is mostly signal.

Intervals are percentile bootstraps over groups (prompts are the unit, as in
`textnorm.eval.bootstrap`): ratios are recomputed on each resample of groups.

Example:
    >>> import numpy as np
    >>> rows = np.array([[0.0], [2.0], [4.0]])          # an image-only term
    >>> inter = np.array([[1.0, -1.0], [-1.0, 1.0], [0.0, 0.0]])
    >>> d = diagnose([rows + inter], n_boot=10)
    >>> round(d.image_share.mean, 4)                    # 8 / (8 + 2)
    0.8
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from textnorm._core import LayoutError, NonFiniteError, ParameterError
from textnorm.eval.bootstrap import Interval, bootstrap_ci
from textnorm.eval.cache import RawScores, _to_numpy
from textnorm.eval.metrics import auroc

__all__ = [
    "PARTS", "Diagnosis", "Split", "decompose", "diagnose", "diagnosis_markdown", "groups_from_raw",
    "reference_lists", "score_groups",
]

#: The parts the ranking reports, in order.
PARTS: tuple[str, ...] = ("raw", "image", "interaction")


@dataclass(frozen=True)
class Split:
    """The two-way decomposition of one group's (M, N) score matrix (see the module docstring).

    Attributes:
        mean: the grand mean ``mu``.
        image: (M,) the image-only term ``a``.
        prompt: (N,) the prompt-only term ``b``.
        interaction: (M, N) the interaction ``e``.
    """

    mean: float
    image: NDArray[np.float64]
    prompt: NDArray[np.float64]
    interaction: NDArray[np.float64]

    def sums(self) -> dict[str, float]:
        """Sums of squares: ``v_image`` / ``v_interaction`` / ``cov`` over the target column, and
        ``ss_image`` / ``ss_prompt`` / ``ss_interaction`` over the whole matrix."""
        m, n = self.interaction.shape
        e0 = self.interaction[:, 0]
        return {
            "v_image": float(self.image @ self.image),
            "v_interaction": float(e0 @ e0),
            "cov": float(self.image @ e0),
            "ss_image": float(n * (self.image @ self.image)),
            "ss_prompt": float(m * (self.prompt @ self.prompt)),
            "ss_interaction": float(np.sum(self.interaction**2)),
        }


def _matrix(scores: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        s = np.asarray(_to_numpy(scores), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LayoutError(
            f"{name}: expected an (images, prompts) array of numbers, got {type(scores).__name__}"
        ) from exc
    if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 2:
        raise LayoutError(f"{name}: expected shape (images >= 1, 1 + K >= 2 prompts), got {s.shape}")
    if not np.all(np.isfinite(s)):
        raise NonFiniteError(f"{name}: expected finite scores, got {int(np.sum(~np.isfinite(s)))} non-finite")
    return s


def decompose(scores: ArrayLike) -> Split:
    """Split one group's score matrix into mean, image-only, prompt-only and interaction terms.

    Args:
        scores: (M images, 1 + K prompts), the target prompt in column 0.

    Raises:
        LayoutError: not a 2-D matrix with at least two columns.
        NonFiniteError: a score is NaN or infinite.

    Example:
        >>> s = decompose([[1.0, 2.0], [3.0, 6.0]])
        >>> s.mean, s.image.tolist(), s.prompt.tolist(), s.interaction.tolist()
        (3.0, [-1.5, 1.5], [-1.0, 1.0], [[0.5, -0.5], [-0.5, 0.5]])
    """
    s = _matrix(scores, "scores")
    mu = float(s.mean())
    a = s.mean(axis=1) - mu
    b = s.mean(axis=0) - mu
    e = s - mu - a[:, None] - b[None, :]
    return Split(mu, a, b, e)


@dataclass(frozen=True)
class Diagnosis:
    """What the diagnostic found on one scorer (see the module docstring for the definitions).

    Attributes:
        n_groups: prompt groups.
        n_images: images over all groups.
        image_share: pooled image-only share of the within-prompt spread of the target score.
        correlation: pooled correlation of the image-only and interaction parts of that spread.
        variance_share: the image-only part's covariance share of the target score's variance.
        looks_share: share of the target's spread explained by the image's mean score over
            unrelated prompts, when `reference` scores were given.
        matrix_shares: {"image", "prompt", "interaction"}: shares of the whole matrices' sums of
            squares (they add up to 1).
        ranking: {part: macro AUROC over groups} for `PARTS`, when labels were given.
        per_group: one dict of sums of squares per group (`Split.sums`), plus ``share``.
    """

    n_groups: int
    n_images: int
    image_share: Interval
    correlation: float
    matrix_shares: dict[str, Interval]
    ranking: dict[str, Interval] | None = None
    per_group: list[dict[str, float]] = field(default_factory=list, repr=False)
    variance_share: Interval | None = None
    looks_share: Interval | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (per-group sums included)."""
        return {
            "n_groups": self.n_groups,
            "n_images": self.n_images,
            "image_share": self.image_share.as_dict(),
            "correlation": self.correlation,
            "variance_share": None if self.variance_share is None else self.variance_share.as_dict(),
            "looks_share": None if self.looks_share is None else self.looks_share.as_dict(),
            "matrix_shares": {k: v.as_dict() for k, v in self.matrix_shares.items()},
            "ranking": None if self.ranking is None else {k: v.as_dict() for k, v in self.ranking.items()},
            "per_group": self.per_group,
        }


def _fmt(iv: Interval, *, percent: bool = True) -> str:
    if math.isnan(iv.mean):
        return "n/a"
    f = 100.0 if percent else 1.0
    return f"{f * iv.mean:.1f} [{f * iv.lo:.1f}, {f * iv.hi:.1f}]"


def diagnosis_markdown(results: Mapping[str, Diagnosis]) -> str:
    """A Markdown table of several scorers' diagnoses (percentages, 95% intervals)."""
    has_rank = any(d.ranking is not None for d in results.values())
    has_looks = any(d.looks_share is not None for d in results.values())
    parts = [*PARTS, "looks"] if has_looks else list(PARTS)
    head = ["scorer", "groups", "image-only share of within-prompt spread", "matrix: image / prompt / interaction"]
    if has_looks:
        head.append("looks share")
    if has_rank:
        head += [f"AUROC by {p}" for p in parts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, d in results.items():
        ms = " / ".join(f"{100 * d.matrix_shares[k].mean:.1f}" for k in ("image", "prompt", "interaction"))
        row = [name, str(d.n_groups), _fmt(d.image_share), ms]
        if has_looks:
            row.append(_fmt(d.looks_share) if d.looks_share is not None else "")
        if has_rank:
            row += [_fmt(d.ranking[p]) if d.ranking and p in d.ranking else "" for p in parts]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _ratio_interval(
    num: NDArray[np.float64], den: NDArray[np.float64], n_boot: int, level: float, seed: int
) -> Interval:
    g = num.size
    total = float(den.sum())
    if g == 0 or total <= 0.0:
        return Interval(math.nan, math.nan, math.nan, int(g))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, g, size=(n_boot, g))
    counts = np.zeros((n_boot, g))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    nb, db = counts @ num, counts @ den
    ok = db > 0
    ratios = nb[ok] / db[ok]
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(ratios, [a, 1.0 - a]) if ratios.size else (math.nan, math.nan)
    return Interval(float(num.sum()) / total, float(lo), float(hi), int(g))


def _r2_interval(
    cross: NDArray[np.float64], ll: NDArray[np.float64], ss: NDArray[np.float64], n_boot: int, level: float,
    seed: int,
) -> Interval:
    """Pooled squared correlation (sum cross)^2 / (sum ll * sum ss), bootstrapped over groups."""
    g = cross.size
    den = float(ll.sum()) * float(ss.sum())
    if g == 0 or den <= 0.0:
        return Interval(math.nan, math.nan, math.nan, int(g))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, g, size=(n_boot, g))
    counts = np.zeros((n_boot, g))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    c, a, b = counts @ cross, counts @ ll, counts @ ss
    ok = (a > 0) & (b > 0)
    r2 = c[ok] ** 2 / (a[ok] * b[ok])
    q = (1.0 - level) / 2.0
    lo, hi = np.quantile(r2, [q, 1.0 - q]) if r2.size else (math.nan, math.nan)
    return Interval(float(cross.sum()) ** 2 / den, float(lo), float(hi), int(g))


def reference_lists(
    prompts: Sequence[str], r: int, *, seed: int = 0, exclude: Sequence[Sequence[str]] | None = None
) -> list[list[str]]:
    """For each prompt, `r` other prompts of the list (seeded draw without replacement), never
    the prompt itself nor one of its `exclude` prompts (its contrast set): unrelated prompts
    for the looks share. Fewer when the list has fewer candidates.

    Example:
        >>> reference_lists(["a", "b", "c"], 5)
        [['b', 'c'], ['a', 'c'], ['a', 'b']]
    """
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ParameterError(f"r: expected a positive int, got {r!r}")
    distinct = list(dict.fromkeys(prompts))
    rng = np.random.default_rng(seed)
    out = []
    for i, p in enumerate(prompts):
        banned = {p, *(exclude[i] if exclude is not None else ())}
        pool = [q for q in distinct if q not in banned]
        pick = rng.permutation(len(pool))[:r]
        out.append([pool[j] for j in pick])
    return out


def diagnose(
    groups: Sequence[ArrayLike],
    *,
    labels: Sequence[ArrayLike] | None = None,
    reference: Sequence[ArrayLike] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Diagnosis:
    """Decompose each group's score matrix and pool the parts over groups.

    Args:
        groups: one (M_g, 1 + K_g) score matrix per prompt group, target prompt in column 0
            (see `score_groups` and `groups_from_raw`).
        labels: optional (M_g,) binary labels per group (1 = aligned: the world judge, or
            majority-vote human labels) for the ranking of each part.
        reference: optional (M_g, R_g >= 1) scores of each group's images against prompts
            unrelated to its target (see `reference_lists`), for the looks share.
        n_boot: bootstrap resamples over groups.
        level: confidence level of the intervals.
        seed: bootstrap seed.

    Returns:
        A `Diagnosis`.

    Raises:
        LayoutError: no groups, a group that is not an (M, N >= 2) matrix, or labels that do not
            match the groups.
        NonFiniteError: a non-finite score.
        ParameterError: bad `n_boot` or `level`, or labels that are not 0/1.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ParameterError(f"n_boot: expected an integer >= 1, got {n_boot!r}")
    if not 0.0 < level < 1.0:
        raise ParameterError(f"level: expected a confidence level in (0, 1), got {level!r}")
    if isinstance(groups, np.ndarray) and groups.ndim == 2:
        raise LayoutError("groups: expected a list of (images, prompts) matrices, got one matrix (wrap it in a list)")
    gs = list(groups)
    if not gs:
        raise LayoutError("groups: expected at least one score matrix, got none")
    mats = [_matrix(g, f"groups[{i}]") for i, g in enumerate(gs)]
    splits = [decompose(m) for m in mats]
    sums = [s.sums() for s in splits]
    col = {k: np.array([d[k] for d in sums]) for k in sums[0]}
    share = _ratio_interval(col["v_image"], col["v_image"] + col["v_interaction"], n_boot, level, seed)
    den = math.sqrt(float(col["v_image"].sum()) * float(col["v_interaction"].sum()))
    corr = float(col["cov"].sum()) / den if den > 0 else math.nan
    var_share = _ratio_interval(col["v_image"] + col["cov"], col["v_image"] + col["v_interaction"] + 2 * col["cov"],
                                n_boot, level, seed)
    total = col["ss_image"] + col["ss_prompt"] + col["ss_interaction"]
    matrix = {
        part: _ratio_interval(col[f"ss_{part}"], total, n_boot, level, seed)
        for part in ("image", "prompt", "interaction")
    }
    per_group = []
    for d in sums:
        v = d["v_image"] + d["v_interaction"]
        per_group.append({**d, "share": d["v_image"] / v if v > 0 else math.nan})
    looks: list[NDArray[np.float64]] | None = None
    looks_share = None
    if reference is not None:
        refs = list(reference)
        if len(refs) != len(mats):
            raise LayoutError(f"reference: expected one score matrix per group ({len(mats)}), got {len(refs)}")
        looks = []
        for i, (m, r) in enumerate(zip(mats, refs)):
            rr = np.asarray(_to_numpy(r), dtype=np.float64)
            if rr.ndim != 2 or rr.shape[0] != m.shape[0] or rr.shape[1] < 1:
                raise LayoutError(f"reference[{i}]: expected shape ({m.shape[0]}, R >= 1), got {rr.shape}")
            if not np.all(np.isfinite(rr)):
                raise NonFiniteError(f"reference[{i}]: expected finite scores")
            row = rr.mean(axis=1)
            looks.append(row - row.mean())
        tgt = [m[:, 0] - m[:, 0].mean() for m in mats]
        cross = np.array([float(x @ y) for x, y in zip(looks, tgt)])
        ll = np.array([float(x @ x) for x in looks])
        ss = np.array([float(y @ y) for y in tgt])
        looks_share = _r2_interval(cross, ll, ss, n_boot, level, seed)
    ranking = None
    if labels is not None:
        labs = list(labels)
        if len(labs) != len(splits):
            raise LayoutError(f"labels: expected one label vector per group ({len(splits)}), got {len(labs)}")
        per: dict[str, list[float]] = {p: [] for p in (*PARTS, *(("looks",) if looks is not None else ()))}
        for i, (m, s, y) in enumerate(zip(mats, splits, labs)):
            yy = np.asarray(_to_numpy(y)).reshape(-1)
            if yy.size != s.image.size:
                raise LayoutError(f"labels[{i}]: expected {s.image.size} labels (one per image), got {yy.size}")
            per["raw"].append(auroc(m[:, 0], yy))
            per["image"].append(auroc(s.image, yy))
            per["interaction"].append(auroc(s.interaction[:, 0], yy))
            if looks is not None:
                per["looks"].append(auroc(looks[i], yy))
        ranking = {p: bootstrap_ci(v, n_boot=n_boot, level=level, seed=seed) for p, v in per.items()}
    n_images = int(sum(s.image.size for s in splits))
    return Diagnosis(len(splits), n_images, share, corr, matrix, ranking, per_group, var_share, looks_share)


def groups_from_raw(raw: RawScores) -> list[NDArray[np.float64]]:
    """The per-prompt score matrices of cached raw scores (`textnorm.eval.cache.RawScores`).

    Raises:
        LayoutError: a prompt's images were not all scored against the same number of prompts.
    """
    out = []
    for p in raw.prompts:
        values, offsets = raw.segments(p)
        lengths = np.diff(offsets)
        if lengths.size == 0 or np.any(lengths != lengths[0]):
            raise LayoutError(f"raw: images of {p!r} were scored against unequal prompt lists {lengths[:4].tolist()}")
        out.append(np.asarray(values, dtype=np.float64).reshape(lengths.size, int(lengths[0])))
    return out


def score_groups(
    scorer: Any, images: Sequence[Any], prompt_lists: Sequence[Sequence[str]], *, batch_size: int = 256
) -> list[NDArray[np.float64]]:
    """Score each group's images against its prompt list: one (M_g, len(list_g)) matrix per group.

    Args:
        scorer: a reward model with ``score(images, texts) -> (n_images, n_texts)`` (every
            `textnorm.scorers` scorer; each image is encoded once, texts are cached) or, failing
            that, ``score_sets``.
        images: per group, its images (a batch array or tensor, or a list of PIL images).
        prompt_lists: per group, ``[target, *contrast]``.
        batch_size: images per call.

    Raises:
        LayoutError: `images` and `prompt_lists` differ in length, or a prompt list is empty.
    """
    if len(images) != len(prompt_lists):
        raise LayoutError(f"prompt_lists: expected one list per image group ({len(images)}), got {len(prompt_lists)}")
    out: list[NDArray[np.float64]] = []
    for g, (imgs, plist) in enumerate(zip(images, prompt_lists)):
        plist = list(plist)
        if not plist:
            raise LayoutError(f"prompt_lists[{g}]: expected [target, *contrast], got an empty list")
        batch = imgs if hasattr(imgs, "shape") else list(imgs)
        parts = []
        for s in range(0, len(batch), batch_size):
            chunk = batch[s : s + batch_size]
            if hasattr(scorer, "score"):
                m = np.asarray(_to_numpy(scorer.score(chunk, plist)), dtype=np.float64)
            else:
                v, _ = scorer.score_sets(chunk, [plist] * len(chunk))
                m = np.asarray(_to_numpy(v), dtype=np.float64).reshape(len(chunk), len(plist))
            parts.append(m.reshape(len(chunk), len(plist)))
        out.append(np.concatenate(parts) if parts else np.zeros((0, len(plist))))
    return out
