"""Does fine-tuning move? The raw proxy's gain on the training prompts, in within-prompt SDs.

For each shipped proxy and mode: the demo's 8 training prompts (2 per category), 32 fresh
samples per prompt at a fixed seed scored by the raw proxy before and after training, the gain
divided by the mean within-prompt standard deviation of the base samples' rewards (issue 12's
bar is 1). For the policy-gradient modes, the cosine of two independent gradient estimates at the
base model (`measure_gradient_signal`) is reported first: near 0 means the updates are noise.

Run (one line of JSON per setting; each setting takes about a minute on one thread):
``OMP_NUM_THREADS=1 python benches/rl_gain.py --proxy pref-w0 --mode ddpo``
Options left out take the demo's values (`textnorm.demo.experiment.rl_options`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import numpy as np
import torch


def proxy_rewards(model: Any, proxy: Any, prompts: list[str], n: int, seed: int) -> np.ndarray:
    """(P, n) raw proxy rewards of `n` samples per prompt."""
    reps = [p for p in prompts for _ in range(n)]
    with torch.no_grad():
        lat = model.sample(reps, seed=seed, num_steps=20)
        r = proxy.score_pairs(model.decode(lat), reps).double().numpy()
    return r.reshape(len(prompts), n)


def main() -> None:
    from textnorm.demo.experiment import DemoConfig, _prompts, rl_options
    from textnorm.generator import load_generator
    from textnorm.proxies import load_proxy
    from textnorm.reward import RawReward
    from textnorm.train import train
    from textnorm.train.config import load_config
    from textnorm.train.diagnostics import measure_gradient_signal

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxy", default="pref-w3")
    ap.add_argument("--mode", default="ddpo", choices=("ddpo", "grpo", "draft", "sft"))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--signal-pairs", type=int, default=2, help="0: skip the gradient signal")
    ap.add_argument("--set", nargs=2, action="append", default=[], metavar=("OPTION", "VALUE"),
                    help="extra train-config override, e.g. --set ddpo.clip_range 1e-2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="", help="a label echoed in the output line")
    args = ap.parse_args()
    torch.manual_seed(0)

    demo = DemoConfig(rl_mode=args.mode)
    prompts, _ = _prompts(demo, "train", demo.train_prompts)
    proxy = load_proxy(args.proxy)
    data = rl_options(demo, mode=args.mode)
    if args.steps is not None:
        data["run"]["steps"] = args.steps
    if args.lr is not None:
        data["optim"]["learning_rate"] = args.lr
    tmp = tempfile.TemporaryDirectory(prefix="rl-gain-")
    folder = tmp.name
    data["seed"] = args.seed
    data["prompts"] = {"source": "list", "prompts": prompts, "eval_fraction": 0.0}
    data["run"].update({"output_dir": folder, "checkpoint_every": data["run"]["steps"], "keep_checkpoints": 1,
                        "eval_every": 10**6, "image_every": 10**6, "tensorboard": False, "progress_bar": False})
    cfg = load_config(data=data, overrides=dict(args.set))
    out: dict[str, Any] = {"proxy": args.proxy, "mode": args.mode, "lr": cfg.optim.learning_rate,
                           "steps": cfg.run.steps, "set": dict(args.set),
                           "tag": args.tag}

    base = load_generator()
    before = proxy_rewards(base, proxy, prompts, 32, seed=99)
    sd = float(before.std(axis=1, ddof=1).mean())
    if args.mode in ("ddpo", "grpo") and args.signal_pairs:
        t0 = time.perf_counter()
        sig = measure_gradient_signal(cfg, reward_fn=RawReward(proxy), model=load_generator(),
                                      pairs=args.signal_pairs)
        out["signal"] = {"cosine": round(sig.cosine, 3), "cosines": [round(c, 3) for c in sig.cosines],
                         "seconds": round(time.perf_counter() - t0, 1)}
    model = load_generator()
    t0 = time.perf_counter()
    train(cfg, reward_fn=RawReward(proxy), model=model)
    out["train_seconds"] = round(time.perf_counter() - t0, 1)
    after = proxy_rewards(model, proxy, prompts, 32, seed=99)
    out.update({"sd": round(sd, 3), "before": round(float(before.mean()), 3), "after": round(float(after.mean()), 3),
                "gain_sd": round(float((after.mean() - before.mean()) / sd), 3),
                # each prompt's gain in its own SD, averaged: counts a prompt with a narrow spread
                "gain_prompt_sd": round(float(((after.mean(1) - before.mean(1)) / before.std(axis=1, ddof=1)).mean()), 3)})
    tmp.cleanup()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
