"""``textnorm worldbench``: a TIA2-like benchmark in the synthetic world.

Per held-out prompt, samples of the shipped world generator labelled by the exact judge; each
reward (raw, TextNorm minmax and temperature, the ensemble; settings chosen by cross-validation
over prompts) ranks them; per-prompt AUROC, AUPRC and AP@k macro-averaged with bootstrap
intervals, beside each scorer's image-only share (``textnorm diagnose``). A second, easier set
mixes correct renders with near-misses. Details: ``textnorm.eval.worldbench``.

Examples:
  textnorm worldbench                       # the shipped proxies, about 2 minutes on 2 cores
  textnorm worldbench --quick               # a smoke run (seconds)
  textnorm worldbench --scorers count-blind --out runs/worldbench
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from textnorm._atomic import atomic_write


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "worldbench", help="TIA2-like benchmark on the world generator's samples, judged exactly",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scorers", default=None, help="comma-separated scorer specs (default: the shipped proxies; "
                   "see `textnorm diagnose --help`)")
    p.add_argument("--categories", default=None, help="comma-separated categories (default: the four of TIA2)")
    p.add_argument("--prompts", type=int, default=None, help="held-out prompts per category (default 30)")
    p.add_argument("--samples", type=int, default=None, help="generator samples per prompt (default 32)")
    p.add_argument("--steps", type=int, default=None, help="generator DDIM steps (default 20)")
    p.add_argument("--render-images", type=int, default=None,
                   help="images per prompt of the renders set (default 16; 0 skips it)")
    p.add_argument("--contrast-k", type=int, default=None, help="contrast prompts per prompt (default 16)")
    p.add_argument("--folds", type=int, default=None, help="k of the k-fold over prompts (default 5)")
    p.add_argument("--scales", type=_floats, default=None,
                   help="TextNorm scale grid, comma-separated (default: the paper's 0.1,1,3,5,10)")
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="two categories, few prompts and samples")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=None, help="write report.md and results.json here")
    p.set_defaults(run=run)


def _config(args: argparse.Namespace) -> Any:
    from textnorm.eval.worldbench import WorldBenchConfig

    base: dict[str, Any] = {"seed": args.seed}
    if args.quick:
        base.update(categories=("counting", "spatial"), n_prompts=6, n_samples=8, num_steps=4, n_boot=200,
                    folds=3, render_images=6)
    given = {"categories": tuple(c for c in (args.categories or "").split(",") if c) or None,
             "n_prompts": args.prompts, "n_samples": args.samples, "num_steps": args.steps,
             "render_images": args.render_images, "contrast_k": args.contrast_k, "folds": args.folds,
             "n_boot": args.bootstrap, "scales": args.scales}
    base.update({k: v for k, v in given.items() if v is not None})
    return WorldBenchConfig(**base)


def run(args: argparse.Namespace) -> int:
    from textnorm._core import TextnormError

    try:
        return _run(args)
    except TextnormError as exc:
        print(f"textnorm worldbench: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from textnorm.cli.diagnose import build_scorers
    from textnorm.eval.worldbench import run_world_benchmark

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    cfg = _config(args)
    res = run_world_benchmark(build_scorers(args.scorers, device=args.device), cfg)
    md = res.to_markdown()
    print(md, end="")
    if args.out is not None:
        atomic_write(args.out / "report.md", md)
        atomic_write(args.out / "results.json", json.dumps(res.as_dict(), indent=1, default=float) + "\n")
        print(f"wrote {args.out / 'report.md'}", file=sys.stderr)
    return 0
