"""Probes behind the "Why" of issue 12's bar in benches/RESULTS.md (not timed, not tests).

``straight-through``: does the gradient DRaFT uses (hard decode, soft renderer's gradient) point
uphill for the proxy? Moves 128 final latents by a fixed step along it and re-scores the hard
render. ``step-baseline`` and ``tree``: two lower-variance policy-gradient estimators, each
compared with the plain group advantage by the cosine of two independent 64-sample estimates at
the base model (as `textnorm.train.diagnostics` does): a per-step baseline from the reward of each
step's decoded x0-prediction (and its temporal difference), and groups whose samples share the
first K steps' noise, each step's advantage taken within its own branch.

Run: ``OMP_NUM_THREADS=1 python benches/rl_probes.py straight-through count-blind pref-w0``,
``... step-baseline count-blind``, ``... tree count-blind --branch 6 --prefixes 2``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _setup() -> tuple[list[str], Any]:
    from textnorm.demo.experiment import DemoConfig, _prompts

    demo = DemoConfig(rl_mode="grpo")
    return _prompts(demo, "train", demo.train_prompts)[0], demo


def straight_through(names: list[str]) -> None:
    from textnorm.generator import load_generator
    from textnorm.generator.render import decode, hard_decode
    from textnorm.proxies import load_proxy

    prompts, _ = _setup()
    g = load_generator()
    reps = [p for p in prompts for _ in range(16)]
    with torch.no_grad():
        lat = g.sample(reps, seed=5, num_steps=20)
    for name in names:
        proxy = load_proxy(name)
        x = lat.clone().requires_grad_(True)
        proxy.score_pairs(decode(x), reps).sum().backward()
        unit = x.grad / (x.grad.flatten(1).norm(dim=1)[:, None, None] + 1e-12)
        with torch.no_grad():
            base = proxy.score_pairs(hard_decode(lat), reps)
            for step in (0.01, 0.03, 0.1, 0.3):
                up = (proxy.score_pairs(hard_decode(lat + step * unit), reps) - base).mean()
                down = (proxy.score_pairs(hard_decode(lat - step * unit), reps) - base).mean()
                print(f"{name}: latent step {step}: reward change {float(up):+.3f} uphill, {float(down):+.3f} downhill")


def _trainer(name: str) -> tuple[Any, Any, Any, list[str]]:
    from textnorm.demo.experiment import rl_options
    from textnorm.generator import load_generator
    from textnorm.proxies import load_proxy
    from textnorm.reward import RawReward
    from textnorm.train.config import load_config
    from textnorm.train.grpo import GRPOTrainer
    from textnorm.train.runner import prepare

    prompts, demo = _setup()
    proxy = load_proxy(name)
    data = rl_options(demo, mode="grpo")
    data["prompts"] = {"source": "list", "prompts": prompts, "eval_fraction": 0.0}
    folder = tempfile.mkdtemp(prefix="rl-probe-")
    data["run"].update({"output_dir": folder, "tensorboard": False, "progress_bar": False})
    ctx, _, _ = prepare(load_config(data=data), reward_fn=RawReward(proxy), model=load_generator())
    return ctx, GRPOTrainer(ctx), proxy, prompts


def _gradient(ctx: Any, trainer: Any, d: dict[str, Any], steps: range, adv_of: Callable[[int], np.ndarray]) -> np.ndarray:
    """The PPO gradient at ratio 1 with step j's advantages ``adv_of(j)`` (scaled by one global SD)."""
    n = d["latents"].shape[0]
    scale = np.concatenate([adv_of(j) for j in steps]).std() + 1e-9
    total = np.zeros(0)
    for j in steps:
        d["advantages"] = torch.as_tensor(adv_of(j) / scale, dtype=torch.float32)
        trainer._train_step(d, np.arange(n), np.full(n, j), scale=1.0 / (n * len(steps)), sync=True)
        g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                       for p in ctx.trainable()]).double().numpy()
        ctx.optimizer.zero_grad(set_to_none=True)
        total = g if total.size == 0 else total + g
    return total


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _report(label: str, estimate: Callable[[int], dict[str, np.ndarray]], pairs: int) -> None:
    cos: dict[str, list[float]] = {}
    for k in range(pairs):
        a, b = estimate(2 * k), estimate(2 * k + 1)
        for key in a:
            cos.setdefault(key, []).append(round(_cos(a[key], b[key]), 3))
    for key, v in cos.items():
        print(f"{label}: {key}: cosine {np.mean(v):+.3f} (pairs {v})")


def step_baseline(name: str, pairs: int) -> None:
    from textnorm.train.sampling import step_alphas

    ctx, trainer, proxy, _ = _trainer(name)
    m, g = ctx.model, trainer.opts.group_size

    def centre(a: np.ndarray) -> np.ndarray:  # within each group, per step
        a = a.reshape(-1, g, a.shape[1])
        return (a - a.mean(1, keepdims=True)).reshape(-1, a.shape[2])

    def estimate(k: int) -> dict[str, np.ndarray]:
        epoch = (1 << 30) + k
        d = trainer.collect(epoch)
        lat, ts = d["latents"], d["timesteps"]
        choice = trainer.choose_prompts(epoch, lat.shape[0])
        sp = [ctx.prompts.train[choice[i]] for i in d["gidx"]]
        alpha, _ = step_alphas(m.scheduler, ts.cpu())
        v = np.zeros(lat.shape[:2])
        with torch.no_grad():
            for t in range(lat.shape[1]):
                x = lat[:, t]
                if t < lat.shape[1] - 1:  # the clean estimate x0 from x_t
                    a = float(alpha[t])
                    x = (x - (1 - a) ** 0.5 * m.predict_noise(m.denoiser, x, ts[t].expand(len(x)), d["cond"])) / a ** 0.5
                v[:, t] = proxy.score_pairs(m.decode(x), sp).double().numpy()
        n_steps = v.shape[1] - 1
        window = range(int(0.8 * n_steps))
        variants = {"group advantage": centre(np.repeat(v[:, -1:], n_steps, 1)),
                    "per-step baseline r - V(x_t)": centre(v[:, -1:] - v[:, :-1]),
                    "temporal difference V(x_t+1) - V(x_t)": centre(v[:, 1:] - v[:, :-1])}
        return {key: _gradient(ctx, trainer, d, window, lambda j, a=adv: a[:, j]) for key, adv in variants.items()}

    _report(name, estimate, pairs)


def tree(name: str, branch: int, prefixes: int, pairs: int) -> None:
    from textnorm.train.sampling import sample

    ctx, trainer, proxy, prompts = _trainer(name)
    m, g = ctx.model, trainer.opts.group_size
    sib = g // prefixes
    n_steps = 20

    def estimate(k: int) -> dict[str, np.ndarray]:
        sp = [p for p in prompts for _ in range(g)]
        noise = torch.randn((len(sp), n_steps + 1, *m.latent_shape), generator=torch.Generator().manual_seed(1000 + k))
        for b in range(0, len(sp), sib):  # siblings share x_T and the noise of steps < branch
            noise[b:b + sib, :branch + 1] = noise[b, :branch + 1]
        cond = m.encode_prompts(sp)
        with torch.no_grad():
            traj = sample(m, m.denoiser, cond, noise=noise, num_steps=n_steps, guidance_scale=1.0, eta=1.0)
            r = proxy.score_pairs(m.decode(traj.final), sp).double().numpy().reshape(len(prompts), prefixes, sib)
        pre, grp = r.mean(2, keepdims=True), r.mean((1, 2), keepdims=True)
        flat, late = (r - grp).reshape(-1), (r - pre).reshape(-1)
        early = np.broadcast_to(pre - grp, r.shape).reshape(-1)
        d = {"latents": traj.latents, "log_probs": traj.log_probs, "cond": cond, "timesteps": traj.timesteps}
        window = range(int(0.8 * n_steps))
        return {"group advantage": _gradient(ctx, trainer, d, window, lambda j: flat),
                "advantage within the branch": _gradient(ctx, trainer, d, window,
                                                         lambda j: early if j < branch else late)}

    _report(f"{name}, {prefixes} branches of {sib} from step {branch}", estimate, pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="probe", required=True)
    sub.add_parser("straight-through").add_argument("proxies", nargs="+")
    for probe in ("step-baseline", "tree"):
        p = sub.add_parser(probe)
        p.add_argument("proxy")
        p.add_argument("--pairs", type=int, default=2)
    tp = sub.choices["tree"]
    tp.add_argument("--branch", type=int, default=6)
    tp.add_argument("--prefixes", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.probe == "straight-through":
        straight_through(args.proxies)
    elif args.probe == "step-baseline":
        step_baseline(args.proxy, args.pairs)
    else:
        tree(args.proxy, args.branch, args.prefixes, args.pairs)


if __name__ == "__main__":
    main()
