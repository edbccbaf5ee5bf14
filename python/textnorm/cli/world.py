"""``textnorm world``: the synthetic world from the command line.

Actions:
  sample   print prompts of a category (seeded, from a split)
  render   draw prompts (correct renders or near-misses) to PNG files plus a manifest.json
  judge    read PNG images against prompts and print each verdict (text or JSON)
  train-proxy  train a shipped proxy reward from its recipe and seed (textnorm.proxies.scorer)
  train-generator  train the shipped scene-latent generator from a seed (textnorm.generator.diffusion)

Examples:
  textnorm world sample --category spatial --n 5 --split test
  textnorm world render "three red circles" "a big red star" --out renders --n 4
  textnorm world judge --manifest renders/manifest.json
  textnorm world judge img.png --prompt "a blue square and a yellow star" --json
  textnorm world train-proxy --name count-blind --out proxy_count_blind   # the shipped bits, ~4 CPU-min
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "world", help="the synthetic world: sample prompts, render images, judge images",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    s = sub.add_parser("sample", help="print prompts of a category")
    s.add_argument("--category", required=True, help="single, counting, composition, binding or spatial")
    s.add_argument("--n", type=int, default=10, help="number of prompts")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--split", default="train", choices=("train", "test", "all"))
    s.add_argument("--unique", action="store_true", help="no prompt twice")
    s.set_defaults(run=_sample)

    r = sub.add_parser("render", help="draw prompts to PNG files")
    r.add_argument("prompts", nargs="*", help="world prompts (or use --prompts-file)")
    r.add_argument("--prompts-file", type=Path, help="one prompt a line")
    r.add_argument("--out", type=Path, required=True, help="output folder")
    r.add_argument("--n", type=int, default=1, help="images per prompt")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--size", type=int, default=64, help="image side in pixels")
    r.add_argument("--near-miss", default=None, metavar="KIND",
                   help="draw near-misses: any, count, colour, shape, size, binding, relation, drop, extra")
    r.set_defaults(run=_render)

    j = sub.add_parser("judge", help="judge PNG images against prompts")
    j.add_argument("images", nargs="*", type=Path, help="image files (PNG, JPEG, ...)")
    j.add_argument("--prompt", help="the prompt for every image")
    j.add_argument("--manifest", type=Path, help="a manifest.json written by `world render`")
    j.add_argument("--json", action="store_true", help="print one JSON object per image")
    j.add_argument("--no-abstain", action="store_true", help="never answer unknown; always a best reading")
    j.set_defaults(run=_judge)

    t = sub.add_parser("train-proxy", help="train a proxy reward model (reproduces the shipped weights)")
    t.add_argument("--name", required=True, help="a shipped proxy: pref-w0, pref-w1, pref-w3 (preference-trained), count-blind or relation-blind")
    t.add_argument("--seed", type=int, default=None, help="default: the shipped model's seed")
    t.add_argument("--steps", type=int, default=None, help="default: the shipped model's budget")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--threads", type=int, default=1, help="torch threads (1 reproduces the shipped bits)")
    t.add_argument("--out", type=Path, default=None,
                   help="output stem (writes STEM.safetensors and STEM.json; default: ./proxy_NAME)")
    t.set_defaults(run=_train_proxy)

    from textnorm.cli.generator import add_train_generator

    add_train_generator(sub)


def _fail(message: str) -> int:
    print(f"textnorm world: error: {message}", file=sys.stderr)
    return 2


def _sample(args: argparse.Namespace) -> int:
    from textnorm._core import TextnormError
    from textnorm.world import sample_prompts

    try:
        prompts = sample_prompts(args.category, args.n, seed=args.seed, split=args.split, unique=args.unique)
    except TextnormError as exc:
        return _fail(str(exc))
    print("\n".join(prompts))
    return 0


def _render(args: argparse.Namespace) -> int:
    from PIL import Image

    from textnorm._core import TextnormError
    from textnorm.world import render, render_near_misses

    prompts = list(args.prompts)
    if args.prompts_file is not None:
        try:
            prompts += [ln.strip() for ln in args.prompts_file.read_text().splitlines() if ln.strip()]
        except OSError as exc:
            return _fail(f"--prompts-file: {exc}")
    if not prompts:
        return _fail("no prompts: give them as arguments or with --prompts-file")
    if args.n < 1:
        return _fail(f"--n: expected a positive int, got {args.n}")
    flat = [p for p in prompts for _ in range(args.n)]
    seeds = [args.seed + i for i in range(len(flat))]
    try:
        if args.near_miss is None:
            images = render(flat, seed=seeds, size=args.size)
            kinds = ["correct"] * len(flat)
        else:
            kind = None if args.near_miss == "any" else args.near_miss
            images, _, kinds = render_near_misses(flat, kind=kind, seed=seeds, size=args.size)
    except TextnormError as exc:
        return _fail(str(exc))
    from textnorm.cli import writable_dir

    writable_dir(args.out, "--out")  # an unwritable folder: one line from cli.main
    manifest = []
    for i, (img, prompt, seed, kind) in enumerate(zip(images, flat, seeds, kinds)):  # type: ignore[arg-type]
        name = f"{i:05d}.png"
        Image.fromarray(img).save(args.out / name)
        manifest.append({"file": name, "prompt": prompt, "seed": seed, "kind": kind})
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest)} images and manifest.json to {args.out}")
    return 0


def _judge(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from textnorm._core import TextnormError
    from textnorm.world.judging import judge

    files: list[Path] = list(args.images)
    prompts: list[str] = []
    if args.manifest is not None:
        try:
            entries = json.loads(args.manifest.read_text())
            for e in entries:
                files.append(args.manifest.parent / e["file"])
                prompts.append(e["prompt"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return _fail(f"--manifest: expected a list of {{'file', 'prompt'}} objects: {exc}")
    if args.images:
        if args.prompt is None:
            return _fail("--prompt is required with image files")
        prompts = [args.prompt] * len(args.images) + prompts
    if not files:
        return _fail("no images: give files (with --prompt) or --manifest")
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                arrays.append(np.asarray(im.convert("RGB")))
        except OSError as exc:
            return _fail(f"{f}: {exc}")
    results = []
    try:
        # One batch per image size keeps the judge vectorised.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, a in enumerate(arrays):
            by_shape.setdefault(a.shape, []).append(i)
        slots: list[Any] = [None] * len(arrays)
        for idx in by_shape.values():
            got = judge(np.stack([arrays[i] for i in idx]), [prompts[i] for i in idx], abstain=not args.no_abstain)
            for i, r in zip(idx, got):
                slots[i] = r
        results = slots
    except TextnormError as exc:
        return _fail(str(exc))
    for f, r in zip(files, results):
        if args.json:
            print(json.dumps({
                "file": str(f), "prompt": r.prompt, "aligned": r.aligned, "unknown": r.unknown,
                "reason": r.reason, "fraction": None if r.unknown else r.fraction,
                "verdicts": [{"constraint": v.constraint.text, "holds": v.holds, "observed": v.observed}
                             for v in r.verdicts],
                "objects": [{"shape": o.shape, "colour": o.colour, "size": o.size,
                             "x": round(o.x, 4), "y": round(o.y, 4)} for o in r.objects],
            }))
        else:
            verdict = "unknown" if r.unknown else ("aligned" if r.aligned else "not aligned")
            detail = r.reason if r.unknown else "; ".join(
                f"{v.constraint.text}: {'yes' if v.holds else 'no'}" for v in r.verdicts
            )
            print(f"{f}\t{r.prompt}\t{verdict}\t{detail}")
    return 0


def _train_proxy(args: argparse.Namespace) -> int:
    from textnorm._core import TextnormError
    from textnorm.proxies.training import save_proxy, train_proxy

    out = args.out if args.out is not None else Path("proxy_" + args.name.replace("-", "_"))
    try:
        model, info = train_proxy(
            args.name, seed=args.seed, steps=args.steps, batch_size=args.batch_size, threads=args.threads,
            log=lambda step, loss: print(f"step {step}: loss {loss:.4f}", flush=True),
        )
        weights, config = save_proxy(model, info, out)
    except TextnormError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"--out: {exc}")
    print(f"trained {args.name} in {info['seconds']:.1f} s; wrote {weights} and {config}")
    return 0
