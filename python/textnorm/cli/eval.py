"""``textnorm eval``: how well do rewards, raw and with TextNorm, agree with human labels?

Scores every image once per scorer into a score cache, then cross-validates scale, lambda and
the ensemble method over prompts and writes a Markdown + JSON report with PNG plots.

Scorer specs (comma-separated): ``clip``, ``pickscore``, ``blip2``, ``imagereward``, ``hpsv2``,
each optionally ``=SOURCE`` (hub id, local folder or checkpoint), or ``package.module:factory``
(optionally ``=ARG``) for any object with ``score_sets`` and a string ``id``; ``LABEL@SPEC``
names it in the report.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path
from typing import Any

from textnorm._core import ParameterError, TextnormError
from textnorm.cli import non_negative_int, positive_int, writable_dir
from textnorm.eval.metrics import METRICS

_BUILTIN = ("clip", "pickscore", "blip2", "imagereward", "hpsv2")


def _grid(text: str, *, positive: bool) -> list[float]:
    """Comma-separated finite numbers, each > 0 (`positive`) or >= 0; at least one."""
    bound = "> 0" if positive else ">= 0"
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    bad = [v for v in values if not math.isfinite(v) or v < 0 or (positive and v == 0)]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers {bound}, got {text!r}")
    return values


def _scales(text: str) -> list[float]:
    return _grid(text, positive=True)


def _lambdas(text: str) -> list[float]:
    return _grid(text, positive=False)


def _folds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2 (k-fold needs two folds), got {value}")
    return value


# Library arguments whose errors the options below stand for: a loader's "root: ..." is "--root: ...".
_OPTION_OF = {"root": "--root", "path": "--root", "images_dir": "--images", "category": "--categories",
              "cache": "--cache"}


def _as_option(exc: TextnormError) -> TextnormError:
    """The same error with the library argument it names replaced by the command-line option."""
    name, sep, rest = str(exc).partition(": ")
    if sep and name in _OPTION_OF:
        return type(exc)(f"{_OPTION_OF[name]}: {rest}")
    return exc


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="agreement of rewards (raw, TextNorm, ensembles) with human labels",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--benchmark", choices=("tia2", "jsonl", "world"), default="tia2")
    p.add_argument("--root", type=Path, help="tia2: folder of the JSON files; jsonl: the .jsonl file")
    p.add_argument("--images", type=Path,
                   help="folder of the images (tia2: IMAGES/CATEGORY/image_*.jpg; flat only for one category)")
    p.add_argument("--categories", default=None, help="comma-separated categories (default: all)")
    p.add_argument("--scorers", required=True, help="comma-separated scorer specs (see above)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the report")
    p.add_argument("--cache", type=Path, default=None, help="score-cache folder (default: OUT/cache)")
    p.add_argument("--refresh-cache", action="store_true", help="recompute scores even when cached")
    p.add_argument("--folds", type=_folds, default=5, help="k of the k-fold over prompts (>= 2)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--select", default="auroc", choices=(*METRICS, "pairwise_acc"),
                   help="metric maximised on the training folds")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples for the intervals")
    p.add_argument("--scales", type=_scales, default=[0.1, 1.0, 3.0, 5.0, 10.0], help="finite numbers > 0")
    p.add_argument("--lambdas", type=_lambdas, default=[0.05, 0.1, 0.5, 1.0], help="finite numbers >= 0")
    p.add_argument("--mode", choices=("minmax", "temperature"), default="minmax")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--world-prompts", type=positive_int, default=40, help="world: prompts per category")
    p.add_argument("--world-images", type=positive_int, default=16, help="world: images per prompt")
    p.add_argument("--contrast-k", type=positive_int, default=16,
                   help="world: contrastive prompts per prompt from the world's near-misses (textnorm.world.contrast_set, seeded)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def _split_spec(spec: str) -> tuple[str, str]:
    """'label@spec' -> (label, spec); the default label is the spec's name part."""
    if "@" in spec.split("=", 1)[0]:
        label, spec = spec.split("@", 1)
        return label, spec
    name = spec.split("=", 1)[0]
    return name.rsplit(":", 1)[-1] if ":" in name else name, spec


def build_scorer(spec: str, *, device: str) -> Any:
    """A scorer from a spec: a built-in name (``=SOURCE`` optional) or ``module:factory[=ARG]``."""
    name, _, arg = spec.partition("=")
    if ":" in name and name.split(":", 1)[0] not in _BUILTIN:
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ParameterError(f"--scorers: cannot import {name!r} ({exc})") from exc
        return factory(arg) if arg else factory()
    if name not in _BUILTIN:
        raise ParameterError(f"--scorers: expected one of {', '.join(_BUILTIN)} or module:factory, got {name!r}")
    from textnorm import scorers

    kwargs: dict[str, Any] = {"device": device}
    if name == "clip":
        return scorers.CLIPScorer.from_pretrained(arg or "openai/clip-vit-large-patch14", **kwargs)
    if name == "pickscore":
        return scorers.PickScoreScorer.from_pretrained(*([arg] if arg else []), **kwargs)
    if name == "blip2":
        return scorers.BLIP2Scorer.from_pretrained(*([arg] if arg else []), **kwargs)
    if name == "imagereward":
        return scorers.ImageRewardScorer.from_pretrained(*([arg] if arg else []), **kwargs)
    return scorers.HPSv2Scorer.from_pretrained(arg or None, **kwargs)


def _load_benches(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """({category: Benchmark}, {category: loader of images or None})."""
    cats = [c for c in (args.categories or "").split(",") if c] or None
    if args.benchmark == "tia2":
        from textnorm.eval.tia2 import CATEGORIES, load_tia2

        if args.root is None:
            raise ParameterError("--root: expected the folder of the TIA2 JSON files, got none")
        cats = cats or list(CATEGORIES)
        if args.images is not None and len(cats) > 1:
            # file names repeat across categories (image_0_0_0.jpg is in all three): a flat folder
            # can hold only one category
            missing = [c for c in cats if not (args.images / c).is_dir()]
            if missing:
                raise ParameterError(
                    f"--images: expected one sub-folder per category under {args.images} when evaluating "
                    f"{len(cats)} categories, missing {', '.join(missing)} (or pass --categories with one)"
                )
        return {c: load_tia2(args.root, c, args.images, require_images=False) for c in cats}, {}
    if args.benchmark == "jsonl":
        from textnorm.eval.jsonl import load_jsonl

        if args.root is None:
            raise ParameterError("--root: expected the .jsonl label file, got none")
        benches = load_jsonl(args.root, images_dir=args.images)
        return {c: b for c, b in benches.items() if cats is None or c in cats}, {}
    from textnorm.eval.world import load_world

    return load_world(cats, n_prompts=args.world_prompts, n_images=args.world_images, seed=args.seed,
                      contrast_k=args.contrast_k)


def _check_folds(args: argparse.Namespace, benches: dict[str, Any]) -> None:
    data = "--world-images" if args.benchmark == "world" else "--root"
    for cat, bench in benches.items():
        n = len(bench.scored_prompts)
        if n == 0:
            raise ParameterError(
                f"{data}: no prompt of {cat} has images of both majority labels (aligned and not), so "
                "there is nothing to rank; every metric needs both classes within a prompt"
            )
        if n == 1:
            raise ParameterError(
                f"--folds: cross-validation over prompts needs at least 2 scored prompts, {cat} has 1"
            )
        if args.folds > n:
            raise ParameterError(f"--folds: expected 2 to {n} (the scored prompts of {cat}), got {args.folds}")


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ParameterError(f"--device: expected a torch device such as cpu or cuda:0, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"--device: {device!r} asked for, but torch sees no CUDA device")


def _build(spec: str, device: str) -> Any:
    try:
        return build_scorer(spec, device=device)
    except TextnormError as exc:
        if str(exc).startswith("--scorers"):
            raise
        raise type(exc)(f"--scorers: {spec}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    """Run ``textnorm eval``; library errors are reported against the option they came from."""
    try:
        return _run(args)
    except TextnormError as exc:
        raise _as_option(exc) from exc


def _run(args: argparse.Namespace) -> int:
    from textnorm.eval.cache import ScoreCache, compute_raw_scores, scorer_id
    from textnorm.eval.calibrate import default_systems
    from textnorm.eval.evaluate import evaluate_category
    from textnorm.eval.report import write_report

    writable_dir(args.out, "--out")
    if args.cache is not None:
        writable_dir(args.cache, "--cache")
    benches, loaders = _load_benches(args)
    if not benches:
        raise ParameterError(f"--categories: none of {args.categories!r} is in the benchmark")
    _check_folds(args, benches)
    specs = [_split_spec(s.strip()) for s in args.scorers.split(",") if s.strip()]
    labels = [label for label, _ in specs]
    if not specs or len(set(labels)) != len(labels):
        raise ParameterError(f"--scorers: expected distinct scorer labels, got {labels}")
    cache = ScoreCache(args.cache or args.out / "cache")
    built: dict[str, Any] = {}
    raws: dict[str, dict[str, Any]] = {c: {} for c in benches}
    for label, spec in specs:
        sid = None if args.refresh_cache else cache.alias(spec)
        for cat, bench in benches.items():
            hit = cache.get(sid, bench) if sid is not None else None
            if hit is None:
                if spec not in built:  # the model is loaded only when some category misses
                    if not built:
                        _check_device(args.device)
                    built[spec] = _build(spec, args.device)
                    cache.set_alias(spec, scorer_id(built[spec]))
                sid = scorer_id(built[spec])
                hit = None if args.refresh_cache else cache.get(sid, bench)
            if hit is None:
                if loaders.get(cat) is None:
                    bench.subset(bench.scored_prompts).check_images()
                hit = compute_raw_scores(built[spec], bench, batch_size=args.batch_size,
                                         load_images=loaders.get(cat), progress=not args.no_progress)
                cache.put(scorer_id(built[spec]), bench, hit)
            raws[cat][label] = hit
    systems = default_systems(labels, scales=args.scales, lambdas=args.lambdas, mode=args.mode)
    results: dict[str, Any] = {
        "benchmark": next(iter(benches.values())).name,
        "settings": {"scorers": [f"{lab}={spec}" if lab != spec else spec for lab, spec in specs],
                     "scorer_ids": {lab: cache.alias(spec) for lab, spec in specs}, "folds": args.folds,
                     "seed": args.seed, "select": args.select, "n_boot": args.bootstrap, "level": 0.95,
                     "scales": args.scales, "lambdas": args.lambdas, "mode": args.mode},
        "categories": {},
    }
    for cat, bench in benches.items():
        res = evaluate_category(bench, raws[cat], systems, k=args.folds, seed=args.seed,
                                select=args.select, n_boot=args.bootstrap)
        if args.benchmark == "tia2":
            from textnorm.eval.tia2 import authors_reference

            res["reference"] = authors_reference(args.root, cat)
        results["categories"][cat] = res
    paths = write_report(results, args.out, plots=not args.no_plots)
    print(f"wrote {paths['report.md']}", file=sys.stderr)
    return 0
