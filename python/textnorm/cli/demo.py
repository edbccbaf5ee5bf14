"""``textnorm demo``: fine-tune the shipped world generator against a raw proxy reward and against
its TextNorm calibration (same budget, same seeds) and judge both exactly.

Examples:
  textnorm demo                      # DDPO, 3 seeds, about 10 minutes on a 2-core CPU
  textnorm demo --quick              # one seed, a few steps (under 2 minutes)
  textnorm demo --mode draft --out runs/demo-draft
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="raw proxy vs TextNorm fine-tuning on the shipped world models, judged exactly",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("textnorm-demo"), help="output folder (default ./textnorm-demo)")
    p.add_argument("--mode", choices=["ddpo", "best-of-n", "sft", "draft"], default="ddpo")
    p.add_argument("--quick", action="store_true", help="one seed and a few steps (a smoke run)")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (default 0 1 2; quick: 0)")
    p.add_argument("--steps", type=int, help="fine-tuning steps per run")
    p.add_argument("--proxy", help="proxy name (default: the first shipped proxy)")
    p.add_argument("--ensemble", action="store_true", help="TextNorm over every shipped proxy")
    p.add_argument("--scale", type=float, help="TextNorm inverse temperature (default 3)")
    p.add_argument("--norm-mode", choices=["minmax", "temperature"], help="TextNorm normalisation (default minmax)")
    p.add_argument("--learning-rate", type=float, help="AdamW learning rate")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest on a shared CPU)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from textnorm._core import TextnormError

    try:
        import torch

        from textnorm.demo.experiment import QUICK, DemoConfig, run_demo

        if args.threads < 1:
            raise TextnormError(f"--threads: expected a positive int, got {args.threads}")
        torch.set_num_threads(args.threads)
        cfg = QUICK if args.quick else DemoConfig()
        overrides: dict[str, Any] = {"mode": args.mode, "ensemble": args.ensemble}
        for name, value in (("seeds", args.seeds), ("steps", args.steps), ("proxy", args.proxy),
                            ("scale", args.scale), ("learning_rate", args.learning_rate),
                            ("norm_mode", args.norm_mode)):
            if value is not None:
                overrides[name] = tuple(value) if name == "seeds" else value
        cfg = replace(cfg, **overrides).validate()
        from textnorm.cli import writable_dir

        writable_dir(args.out, "--out")
        print(f"textnorm demo: {cfg.mode}, seeds {list(cfg.seeds)}, {cfg.steps} steps per run -> {args.out}",
              flush=True)
        summary = run_demo(cfg, args.out, log=lambda m: print(f"  {m}", flush=True))
    except TextnormError as exc:
        print(f"textnorm demo: error: {exc}", file=sys.stderr)
        return 2
    print((args.out / "summary.md").read_text())
    print("written:")
    for name, path in summary["files"].items():
        print(f"  {name:<15} {path}")
    return 0
