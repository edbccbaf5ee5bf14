"""The one ``textnorm`` command. Each subcommand lives in its own module of this package
and exposes ``add_parser(subparsers)``; the module imports heavy libraries only when run.
The CLI is the only place that wires the library's pieces together."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, in the order `textnorm --help` lists them.
SUBCOMMANDS: list[str] = ["demo", "contrast", "eval", "train", "world", "diagnose", "worldbench"]

# Top-level packages that only the `full` extra installs (`pip install textnorm-t2i` is numpy only).
FULL_EXTRA = {
    "torch", "torchvision", "diffusers", "transformers", "open_clip", "accelerate", "peft",
    "safetensors", "scipy", "PIL", "matplotlib", "tensorboard", "tqdm", "yaml",
    "sentence_transformers",
}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from textnorm import BUILD_PROFILE, __version__

    parser = argparse.ArgumentParser(
        prog="textnorm",
        description="Confidence-calibrated (TextNorm) rewards for text-to-image fine-tuning.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"textnorm {__version__} ({BUILD_PROFILE} build)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"textnorm.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in FULL_EXTRA:
            raise
        print(
            f"textnorm {args.command}: needs the package {top!r}, which the full install brings: "
            "pip install 'textnorm-t2i[full]'",
            file=sys.stderr,
        )
        return 2
    return result
