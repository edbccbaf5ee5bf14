"""Output-folder and option mistakes of `train`, `demo` and `world render` (issue 14, item 12):
one line on stderr naming the option, exit status 2, no traceback, and nothing trained first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from textnorm.cli import main

pytest.importorskip("torch")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code  # type: ignore[assignment]
    return int(code), capsys.readouterr().err


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("x")
    return path


CASES = [
    ("train", lambda f: ["train", "--mode", "best-of-n", "--out", str(f / "out")],
     r"textnorm train: error: --run.output_dir: cannot write to the folder .*a-file/out: Not a directory"),
    ("train", lambda f: ["train", "--mode", "best-of-n", "--out", str(f)],
     r"textnorm train: error: --run.output_dir: cannot write to the folder .*a-file: File exists"),
    ("train", lambda f: ["train", "--mode", "best-of-n", "--seed", "-1", "--out", str(f.parent / "ok")],
     r"textnorm train: error: seed: expected an integer >= 0, received -1"),
    ("demo", lambda f: ["demo", "--quick", "--out", str(f / "out")],
     r"textnorm demo: error: --out: cannot write to the folder .*a-file/out: Not a directory"),
    ("world", lambda f: ["world", "render", "a red circle", "--out", str(f / "out")],
     r"textnorm world: error: --out: cannot write to the folder .*a-file/out: Not a directory"),
    ("world", lambda f: ["world", "render", "a red circle", "--n", "2", "--out", str(f)],
     r"textnorm world: error: --out: cannot write to the folder .*a-file: File exists"),
]


@pytest.mark.parametrize(("command", "argv", "needle"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_unwritable_output_and_bad_seed_are_one_line(
    command: str, argv: object, needle: str, a_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(argv(a_file), capsys)  # type: ignore[operator]
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and re.search(needle, lines[0]), err
    assert not (a_file.parent / "ok").exists() or not any((a_file.parent / "ok").iterdir())


def test_argparse_mistakes_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(["world", "render", "--n", "x", "a red circle", "--out", "o"], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("textnorm world render: error: argument --n: invalid int value: 'x'"), err
    code, err = run_cli(["nonesuch"], capsys)
    assert code == 2 and err.count("\n") == 1 and "argument COMMAND: invalid choice: 'nonesuch'" in err, err
