"""``textnorm world train-generator``: reproduce the shipped generator's weights from a seed.

Registered by `textnorm.cli.world`; torch is imported only when the action runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_train_generator"]


def add_train_generator(sub: Any) -> None:
    """Add the ``train-generator`` action to the ``world`` subparsers."""
    g = sub.add_parser("train-generator", help="train the scene-latent generator (reproduces the shipped weights)")
    g.add_argument("--seed", type=int, default=0, help="default 0 (the shipped weights)")
    g.add_argument("--steps", type=int, help="optimiser steps (default: the shipped budget)")
    g.add_argument("--batch-size", type=int, help="default: the shipped setting")
    g.add_argument("--examples", type=int, help="training scenes (default: the shipped setting)")
    g.add_argument("--threads", type=int, default=1, help="torch threads (1 reproduces the shipped bits)")
    g.add_argument("--out", type=Path, default=Path("generator"),
                   help="output folder for generator.safetensors and generator.json (default ./generator)")
    g.add_argument("--no-eval", action="store_true", help="skip judging samples on held-out prompts")
    g.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from textnorm._core import TextnormError

    try:
        import torch

        from textnorm.generator.diffusion import save_generator
        from textnorm.generator.training import evaluate_generator, train_generator

        if args.threads < 1:
            raise TextnormError(f"--threads: expected a positive int, got {args.threads}")
        torch.set_num_threads(args.threads)
        given = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size),
                                   ("examples", args.examples)) if v is not None}
        model, record = train_generator(seed=args.seed, log=lambda m: print(m, flush=True), **given)
        meta: dict[str, Any] = {"training": record}
        if not args.no_eval:
            meta["base_alignment"] = evaluate_generator(model)
            for cat, row in meta["base_alignment"].items():
                print(f"{cat:<12} aligned {row['aligned']:.1%}  constraints met {row['fraction']:.1%}")
        path = save_generator(model, args.out, meta=meta)
    except TextnormError as exc:
        print(f"textnorm world: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"textnorm world: error: --out: {exc}", file=sys.stderr)
        return 2
    print(f"trained in {record['seconds']:.0f} s ({record['threads']} thread(s)); wrote {path} and "
          f"{args.out / 'generator.json'}")
    print(json.dumps(record))
    return 0
