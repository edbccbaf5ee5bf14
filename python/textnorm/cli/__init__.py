"""The one ``textnorm`` command. Each subcommand lives in its own module of this package
and exposes ``add_parser(subparsers)``; the module imports heavy libraries only when run.
The CLI is the only place that wires the library's pieces together.

Errors: every mistake a user can make (a bad option value, a missing, unreadable or malformed
file, a folder that cannot be written, a model that cannot be loaded) ends the command with one
line on stderr, ``textnorm COMMAND: error: ...`` naming the option or file, and exit status 2.
``--debug`` (anywhere on the command line) or ``TEXTNORM_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

# Subcommand modules, in the order `textnorm --help` lists them.
SUBCOMMANDS: list[str] = ["demo", "contrast", "eval", "train", "world", "diagnose", "worldbench"]

# Top-level packages that only the `full` extra installs (`pip install textnorm-t2i` is numpy only).
FULL_EXTRA = {
    "torch", "torchvision", "diffusers", "transformers", "open_clip", "accelerate", "peft",
    "safetensors", "scipy", "PIL", "matplotlib", "tensorboard", "tqdm", "yaml",
    "sentence_transformers",
}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``textnorm eval: error: argument --folds: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
    return value


def writable_dir(path: Path, option: str) -> Path:
    """Create `path` (and its parents) and check that a file can be written in it.

    Raises:
        ParameterError: naming `option` and the reason, when it cannot be created or written.
    """
    from textnorm._core import ParameterError

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise ParameterError(f"{option}: cannot write to the folder {path}: {reason}{where}") from None
    return path


def build_parser() -> argparse.ArgumentParser:
    from textnorm import BUILD_PROFILE, __version__

    parser = Parser(
        prog="textnorm",
        description="Confidence-calibrated (TextNorm) rewards for text-to-image fine-tuning.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"textnorm {__version__} ({BUILD_PROFILE} build)",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (or TEXTNORM_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"textnorm.cli.{name}").add_parser(sub)
    _accept_debug(parser)
    return parser


def _accept_debug(parser: argparse.ArgumentParser) -> None:
    """Let every (nested) subcommand take ``--debug`` too: ``textnorm eval ... --debug``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                if "--debug" not in command._option_string_actions:
                    command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                         help=argparse.SUPPRESS)
                _accept_debug(command)


def _debug(args: Any) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("TEXTNORM_DEBUG", "") not in ("", "0")


def _one_line(exc: BaseException) -> str:
    """The message of a user-facing error, on one line."""
    from textnorm._core import TextnormError

    if isinstance(exc, OSError) and not isinstance(exc, TextnormError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    elif isinstance(exc, UnicodeDecodeError):
        text = f"an input file is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``textnorm`` with `argv` (default: sys.argv[1:]); returns the exit status."""
    from textnorm._core import TextnormError

    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in FULL_EXTRA or _debug(args):
            raise
        print(
            f"textnorm {args.command}: needs the package {top!r}, which the full install brings: "
            "pip install 'textnorm-t2i[full]'",
            file=sys.stderr,
        )
        return 2
    except (TextnormError, OSError, UnicodeError) as exc:
        # a mistake in the input, the options or the environment: one line, not a traceback
        if _debug(args):
            raise
        print(f"textnorm {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return result
