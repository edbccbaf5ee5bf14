"""``textnorm diagnose``: how much of a reward's spread over one prompt's images depends on the
image alone? That part is what TextNorm removes; no labels needed (with labels, how well each part
ranks aligned images). Definitions: ``textnorm.eval.diagnose``.

Each image is scored against its prompt and the prompt's contrast set; each prompt's
(images x prompts) score matrix is split into image-only, prompt-only and interaction terms. Each
image is also scored against a few other prompts of the input (--reference): its mean score there
is what the reward gives it whatever it is asked (its looks); the looks share is the part of the
target score's spread that looks explain.

Input, one of:
  --prompts FILE.jsonl   one JSON object a line: {"prompt": ..., "image": PATH} or
                         {"prompt": ..., "images": [PATH, ...]}, optionally "label" / "labels"
                         (1 = aligned) and "contrast": [...]; paths relative to --images (default:
                         the file's folder); lines of one prompt are grouped
  (no --prompts)         the world: held-out prompts, samples of the shipped generator, labels
                         from the exact judge

Scorer specs (comma-separated): a shipped world proxy name (count-blind, ...), or any spec of
``textnorm eval --scorers`` (clip, pickscore, ..., module:factory); LABEL@SPEC names it.
Default: every shipped proxy.

Examples:
  textnorm diagnose                                   # shipped proxies on generator samples
  textnorm diagnose --scorers pickscore --prompts labels.jsonl --images imgs/ --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from textnorm._atomic import atomic_write


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diagnose", help="image-only share of a reward's scores: can calibration help? (no labels needed)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scorers", default=None, help="comma-separated scorer specs (default: the shipped proxies)")
    p.add_argument("--prompts", type=Path, default=None, help="JSONL of prompts and images (default: the world)")
    p.add_argument("--images", type=Path, default=None, help="folder the JSONL's image paths are relative to")
    p.add_argument("--contrast", choices=("auto", "world", "rules"), default="auto",
                   help="contrast sets: world (textnorm.world.contrast_set), rules (textnorm.contrast), "
                        "auto: world when every prompt is a world prompt")
    p.add_argument("--contrast-k", type=int, default=16, help="contrast prompts per prompt")
    p.add_argument("--categories", default=None, help="world: comma-separated categories (default: all four)")
    p.add_argument("--world-prompts", type=int, default=12, help="world: held-out prompts per category")
    p.add_argument("--world-samples", type=int, default=32, help="world: generator samples per prompt")
    p.add_argument("--steps", type=int, default=20, help="world: generator DDIM steps")
    p.add_argument("--reference", type=int, default=8,
                   help="unrelated prompts (other prompts of the input) per image for the looks share; 0: none")
    p.add_argument("--no-labels", action="store_true", help="ignore labels (the split needs none)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples over prompts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", type=Path, default=None, help="write the full results as JSON here")
    p.set_defaults(run=run)


def build_scorers(specs: str | None, *, device: str) -> dict[str, Any]:
    """{label: scorer} from comma-separated specs; shipped proxy names load the proxy, anything
    else goes through ``textnorm eval``'s scorer specs. None: every shipped proxy."""
    from textnorm._core import ParameterError
    from textnorm.cli.eval import _split_spec, build_scorer
    from textnorm.proxies.scorer import NAMES, load_proxy

    if specs is None:
        return {name: load_proxy(name, device) for name in NAMES}
    out: dict[str, Any] = {}
    for raw in (s.strip() for s in specs.split(",")):
        if not raw:
            continue
        label, spec = _split_spec(raw)
        if label in out:
            raise ParameterError(f"--scorers: expected distinct labels, got {label!r} twice")
        out[label] = load_proxy(spec, device) if spec in NAMES else build_scorer(spec, device=device)
    if not out:
        raise ParameterError(f"--scorers: expected at least one scorer spec, got {specs!r}")
    return out


def _read_jsonl(path: Path, images_dir: Path | None) -> list[dict[str, Any]]:
    """Groups in order of first appearance: {"prompt", "images" (paths), "labels" (or None),
    "contrast" (or None)}."""
    from textnorm._core import ParameterError

    base = images_dir or path.parent
    groups: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ParameterError(f"--prompts: cannot read {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            prompt = rec["prompt"]
            paths = rec["images"] if "images" in rec else [rec["image"]]
            labs = rec.get("labels", [rec["label"]] if "label" in rec else None)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ParameterError(
                f"--prompts: line {n} of {path}: expected {{\"prompt\": ..., \"image\" or \"images\": ...}}, "
                f"got {line[:80]!r} ({exc})"
            ) from exc
        if not isinstance(prompt, str) or not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ParameterError(f"--prompts: line {n} of {path}: expected a str prompt and str image paths")
        if labs is not None and len(labs) != len(paths):
            raise ParameterError(f"--prompts: line {n} of {path}: expected one label per image")
        g = groups.setdefault(prompt, {"prompt": prompt, "images": [], "labels": [], "contrast": None})
        g["images"] += [base / p for p in paths]
        g["labels"] = None if labs is None or g["labels"] is None else g["labels"] + [int(bool(x)) for x in labs]
        if "contrast" in rec:
            g["contrast"] = [str(c) for c in rec["contrast"]]
    missing = [p for g in groups.values() for p in g["images"] if not p.is_file()]
    if missing:
        raise ParameterError(f"--images: {len(missing)} image files are missing (first: {missing[0]})")
    return list(groups.values())


def _contrast(prompts: list[str], mode: str, k: int, seed: int) -> list[list[str]]:
    from textnorm._core import ParameterError
    from textnorm.world import contrast_set

    if mode in ("auto", "world"):
        try:
            return [list(contrast_set(p, k=k, seed=seed).prompts) for p in prompts]
        except ParameterError:
            if mode == "world":
                raise
    from textnorm.contrast import contrast

    sets = contrast(prompts, k=k, seed=seed)
    return [list(sets[i]) for i in range(len(prompts))]


def _world_groups(args: argparse.Namespace) -> list[dict[str, Any]]:
    from textnorm.eval.worldbench import generate_samples
    from textnorm.world import CATEGORIES

    cats = [c for c in (args.categories or "").split(",") if c] or list(CATEGORIES)
    groups = []
    for cat in cats:
        smp = generate_samples(cat, args.world_prompts, args.world_samples, seed=args.seed, num_steps=args.steps)
        for i, p in enumerate(smp.prompts):
            groups.append({"prompt": p, "images": smp.images[i], "labels": smp.labels[i].astype(int).tolist(),
                           "contrast": None, "category": cat})
    return groups


def _load(paths: list[Path]) -> list[Any]:
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(im.convert("RGB"))
    return out


def run(args: argparse.Namespace) -> int:
    from textnorm._core import TextnormError

    try:
        return _run(args)
    except TextnormError as exc:
        print(f"textnorm diagnose: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from textnorm._core import ParameterError
    from textnorm.eval.diagnose import diagnose, diagnosis_markdown, reference_lists, score_groups

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    if args.contrast_k < 1:
        raise ParameterError(f"--contrast-k: expected a positive int, got {args.contrast_k}")
    if args.prompts is None:
        if args.images is not None:
            raise ParameterError("--images: expected --prompts too (the JSONL that names the images)")
        groups = _world_groups(args)
    else:
        groups = _read_jsonl(args.prompts, args.images)
    if not groups:
        raise ParameterError("--prompts: expected at least one prompt with images, got none")
    prompts = [g["prompt"] for g in groups]
    need = [i for i, g in enumerate(groups) if g["contrast"] is None]
    made = _contrast([prompts[i] for i in need], args.contrast, args.contrast_k, args.seed) if need else []
    for i, c in zip(need, made):
        groups[i]["contrast"] = c
    lists = [list(dict.fromkeys([g["prompt"], *g["contrast"]])) for g in groups]
    empty = [g["prompt"] for g, lst in zip(groups, lists) if len(lst) < 2]
    if empty:
        raise ParameterError(f"--contrast: no contrast prompt for {empty[0]!r}; pass \"contrast\" in the JSONL")
    if args.reference < 0:
        raise ParameterError(f"--reference: expected a non-negative int, got {args.reference}")
    refs = [[] for _ in groups] if args.reference == 0 or len(set(prompts)) < 2 else reference_lists(
        prompts, args.reference, seed=args.seed, exclude=[lst[1:] for lst in lists])
    use_refs = all(refs)
    images = [g["images"] if hasattr(g["images"], "shape") else _load(g["images"]) for g in groups]
    use_labels = not args.no_labels and all(g["labels"] is not None for g in groups)
    labels = [g["labels"] for g in groups] if use_labels else None
    scorers = build_scorers(args.scorers, device=args.device)
    results = {}
    for label, scorer in scorers.items():
        full = score_groups(scorer, images, [lst + (r if use_refs else []) for lst, r in zip(lists, refs)],
                            batch_size=args.batch_size)  # each image encoded once
        mats = [m[:, : len(lst)] for m, lst in zip(full, lists)]
        reference = [m[:, len(lst) :] for m, lst in zip(full, lists)] if use_refs else None
        results[label] = diagnose(mats, labels=labels, reference=reference, n_boot=args.bootstrap, seed=args.seed)
    print(diagnosis_markdown(results), end="")
    if args.json is not None:
        atomic_write(args.json, json.dumps({
            "prompts": prompts, "contrast": [lst[1:] for lst in lists], "labels": use_labels,
            "reference": refs if use_refs else None,
            "scorers": {k: v.as_dict() for k, v in results.items()},
        }, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
