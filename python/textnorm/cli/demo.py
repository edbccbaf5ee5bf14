"""``textnorm demo``: does TextNorm keep reward optimisation honest on the shipped world?

Best-of-n over base samples for every shipped proxy (raw, TextNorm, ensemble), judged exactly,
against KL from the base model; then RL fine-tuning on one proxy with each reward, five seeds.

Examples:
  textnorm demo                       # about 10 minutes on a 2-core CPU
  textnorm demo --quick               # a smoke run (under a minute)
  textnorm demo --rl-mode none        # best-of-n only
  textnorm demo --primary pref-w0 --rl-mode ddpo --out runs/demo-w0
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="raw proxy vs TextNorm under optimisation pressure on the shipped world, judged exactly",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("textnorm-demo"), help="output folder (default ./textnorm-demo)")
    p.add_argument("--quick", action="store_true", help="tiny sample sets and one seed (a smoke run)")
    p.add_argument("--proxies", nargs="+", metavar="NAME", help="shipped proxies for best-of-n (default: all)")
    p.add_argument("--primary", metavar="NAME", help="the proxy RL trains on (default pref-w3)")
    p.add_argument("--rl-mode", choices=["grpo", "ddpo", "draft", "none"], help="RL algorithm (default grpo)")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="RL seeds (default 0 1 2 3 4)")
    p.add_argument("--rl-steps", type=int, metavar="N", help="RL epochs per run")
    p.add_argument("--samples", type=int, metavar="N", help="base samples per held-out prompt (best-of-n up to N)")
    p.add_argument("--eval-prompts", type=int, metavar="N", help="held-out prompts per category (default 30)")
    p.add_argument("--scale", type=float, help="TextNorm inverse temperature (default 3)")
    p.add_argument("--learning-rate", type=float, metavar="LR", help="RL learning rate")
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
        overrides: dict[str, Any] = {}
        for name, value in (("proxies", args.proxies), ("primary", args.primary), ("rl_mode", args.rl_mode),
                            ("seeds", args.seeds), ("rl_steps", args.rl_steps), ("samples", args.samples),
                            ("eval_prompts", args.eval_prompts), ("scale", args.scale),
                            ("learning_rate", args.learning_rate)):
            if value is not None:
                overrides[name] = tuple(value) if isinstance(value, list) else value
        cfg = replace(cfg, **overrides).validate()
        from textnorm.cli import writable_dir

        writable_dir(args.out, "--out")
        print(f"textnorm demo: best-of-n up to {cfg.samples} on {len(cfg.proxies)} proxies; "
              f"RL {cfg.rl_mode} on {cfg.primary}, seeds {list(cfg.seeds)} -> {args.out}", flush=True)
        run_demo(cfg, args.out, log=lambda m: print(f"  {m}", flush=True))
    except TextnormError as exc:
        print(f"textnorm demo: error: {exc}", file=sys.stderr)
        return 2
    print((args.out / "summary.md").read_text())
    print(f"written: {args.out / 'results.json'}, {args.out / 'summary.md'}, {args.out / 'curves.png'}")
    return 0
