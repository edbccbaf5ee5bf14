"""Peak memory of scoring the demo's base samples, with and without `textnorm._heap.mmap_threshold`.

Each variant runs in its own child process (peak RSS only grows, so one process cannot measure
both): draw ``--prompts`` held-out prompts x 256 samples of the shipped generator, then score them
with the five shipped proxies as `textnorm demo` does. The child reports its peak RSS and the
scoring time; the parent prints both variants and their ratio.

Run: ``OMP_NUM_THREADS=1 python benches/bench_demo_memory.py --prompts 24``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time


def child(prompts: int, held: bool) -> None:
    import torch

    import textnorm._heap as heap
    from textnorm.demo.experiment import DemoConfig, _contrast, _prompts
    from textnorm.demo.samples import draw_samples, score_samples
    from textnorm.generator import load_generator
    from textnorm.proxies import load_proxies

    torch.set_num_threads(1)
    if not held:  # the alternative: glibc's own dynamic threshold
        heap.mmap_threshold = lambda *a, **k: contextlib.nullcontext(False)  # type: ignore[assignment]
    cfg = DemoConfig().validate()
    ps, cats = _prompts(cfg, "test", cfg.eval_prompts)
    with torch.no_grad():
        samples = draw_samples(load_generator(), ps[:prompts], cats[:prompts], 256, seed=0)
    t0 = time.perf_counter()
    score_samples(samples, load_proxies(list(cfg.proxies)), _contrast)
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"held": held, "peak_gb": round(peak_gb, 2), "score_seconds": round(seconds, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--child", choices=("held", "glibc"))
    args = ap.parse_args()
    if args.child:
        child(args.prompts, args.child == "held")
        return
    out = {}
    for variant in ("glibc", "held"):
        proc = subprocess.run([sys.executable, __file__, "--prompts", str(args.prompts), "--child", variant],
                              check=True, capture_output=True, text=True)
        out[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(variant, out[variant], flush=True)
    g, h = out["glibc"], out["held"]
    print(f"peak RSS held/glibc {h['peak_gb'] / g['peak_gb']:.2f}, scoring time held/glibc "
          f"{h['score_seconds'] / g['score_seconds']:.2f}")


if __name__ == "__main__":
    main()
