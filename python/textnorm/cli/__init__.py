"""The one ``textnorm`` command. Each subcommand lives in its own module of this package
and exposes ``add_parser(subparsers)``; the module imports heavy libraries only when run.
The CLI is the only place that wires the library's pieces together."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

# Subcommand modules, in the order `textnorm --help` lists them.
SUBCOMMANDS: list[str] = ["demo", "contrast", "eval", "train", "world"]


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
    result: int = args.run(args)
    return result
