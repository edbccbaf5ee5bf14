"""``textnorm demo``: raw rewards next to TextNorm-calibrated ones on data the package carries."""

from __future__ import annotations

import argparse
import json
from importlib import resources

import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="show raw vs TextNorm-calibrated rewards on bundled data")
    p.add_argument("--scale", type=float, default=3.0, help="inverse temperature (default 3)")
    p.add_argument("--mode", choices=["minmax", "temperature"], default="minmax")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import textnorm

    data = json.loads(resources.files("textnorm.data").joinpath("demo_rewards.json").read_text())
    images = data["images"]
    values = np.concatenate([np.asarray(im["logits"], dtype=np.float64) for im in images])
    offsets = np.cumsum([0] + [len(im["logits"]) for im in images])
    for im in images:
        if len(im["logits"]) != 1 + len(im["contrast"]):
            raise textnorm.LayoutError("demo data: expected one logit per prompt and contrastive prompt")
    calibrated = textnorm.confidence(values, offsets=offsets, scale=args.scale, mode=args.mode)
    raw = values[offsets[:-1]]
    print(f"TextNorm demo ({args.mode}, scale={args.scale}): {data['about']}\n")
    print(f"{'#':>2}  {'prompt':<32} {'K':>2} {'aligned':>7} {'raw':>6} {'TextNorm':>8}")
    for i, im in enumerate(images):
        print(f"{i + 1:>2}  {im['prompt']:<32} {len(im['contrast']):>2} {str(im['aligned']):>7}"
              f" {raw[i]:>6.1f} {calibrated[i]:>8.3f}")  # fmt: skip
    aligned = np.array([im["aligned"] for im in images])
    print(f"\nmean over aligned / misaligned images: raw {raw[aligned].mean():.2f} / "
          f"{raw[~aligned].mean():.2f}, TextNorm {calibrated[aligned].mean():.3f} / "
          f"{calibrated[~aligned].mean():.3f}")  # fmt: skip
    return 0
