"""Every mistake a user can make with `textnorm eval` (issue 14, item 12), family by family: one
line on stderr that names the option or file, exit status 2, no traceback; `--debug` or
TEXTNORM_DEBUG=1 shows the traceback instead. Argument mistakes surface before any model loads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import EXCERPT_TIA2

from textnorm import ParameterError
from textnorm.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
Image = pytest.importorskip("PIL.Image")

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
SCORERS = types.ModuleType("tiny_error_scorers")
SCORERS.builds = 0  # type: ignore[attr-defined]


def _make(arg: str = "0") -> object:
    from textnorm.scorers import CLIPScorer

    SCORERS.builds += 1  # type: ignore[attr-defined]
    return CLIPScorer.from_open_clip_config(TINY_CLIP, seed=int(arg))


SCORERS.make = _make  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def scorers(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    SCORERS.builds = 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tiny_error_scorers", SCORERS)
    monkeypatch.delenv("TEXTNORM_DEBUG", raising=False)
    return SCORERS


def _labels(p: int, i: int) -> list[int]:
    return [int(i % 2 == 0), int(i % 3 == 0), int(i < 3)]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSONL set: 4 prompts x 6 images (24x24 PNGs), both labels within every prompt."""
    root = tmp_path_factory.mktemp("jsonl")
    rng = np.random.default_rng(0)
    lines = []
    for p in range(4):
        for i in range(6):
            name = f"img_{p}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / name)
            lines.append({"prompt": f"{p + 2} red cubes", "image": name, "labels": _labels(p, i),
                          "contrast": [f"{p + 1} red cubes"], "category": "counting"})
    (root / "labels.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return root


def _copy(dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dataset, tmp_path / "data"))


def _write_lines(tmp_path: Path, lines: list[dict[str, object]]) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


Setup = Callable[[Path, Path], list[str]]  # (dataset, tmp_path) -> argv after "eval"


def jsonl(*extra: str, root: str = "{data}/labels.jsonl", out: str = "{tmp}/out") -> Setup:
    """argv for a JSONL run on the shared data set, with `extra` options ({data}, {tmp} filled)."""

    def setup(data: Path, tmp: Path) -> list[str]:
        argv = ["--benchmark", "jsonl", "--root", root, "--scorers", "tiny_error_scorers:make", "--out", out,
                "--folds", "2", "--bootstrap", "10", "--no-plots", "--no-progress", *extra]
        return [a.format(data=data, tmp=tmp) for a in argv]

    return setup


def custom(make: Callable[[Path, Path], list[str]]) -> Setup:
    return make


def _one_class(data: Path, tmp: Path) -> list[str]:
    lines = [{"prompt": f"p{p}", "image": "a.png", "labels": [1, 1, 1]} for p in range(3)]
    return jsonl(root=str(_write_lines(tmp, lines)))(data, tmp)


def _one_scored(data: Path, tmp: Path) -> list[str]:
    lines = [{"prompt": "p", "image": f"{i}.png", "labels": [i % 2] * 3} for i in range(4)]
    lines += [{"prompt": "q", "image": "a.png", "labels": [1, 1, 1]}]
    return jsonl(root=str(_write_lines(tmp, lines)))(data, tmp)


def _bad_line(data: Path, tmp: Path) -> list[str]:
    path = tmp / "labels.jsonl"
    path.write_text((data / "labels.jsonl").read_text().replace("\n", "\n{oops\n", 1))
    return jsonl(root=str(path))(data, tmp)


def _junk_labels(data: Path, tmp: Path) -> list[str]:
    return jsonl(root=str(_write_lines(tmp, [{"prompt": "p", "image": "a.png", "labels": "101"}])))(data, tmp)


def _null_image(data: Path, tmp: Path) -> list[str]:
    return jsonl(root=str(_write_lines(tmp, [{"prompt": "p", "image": None, "labels": [1]}])))(data, tmp)


def _bad_utf8(data: Path, tmp: Path) -> list[str]:
    path = tmp / "labels.jsonl"
    path.write_bytes(b'{"prompt": "\xff", "image": "a.png", "labels": [1]}\n')
    return jsonl(root=str(path))(data, tmp)


def _deep_json(data: Path, tmp: Path) -> list[str]:
    path = tmp / "labels.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    return jsonl(root=str(path))(data, tmp)


def _missing_image(data: Path, tmp: Path) -> list[str]:
    copy = _copy(data, tmp)
    (copy / "img_1_2.png").unlink()
    return jsonl(root=str(copy / "labels.jsonl"))(data, tmp)


def _corrupt_png(data: Path, tmp: Path) -> list[str]:
    copy = _copy(data, tmp)
    (copy / "img_1_2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return jsonl(root=str(copy / "labels.jsonl"))(data, tmp)


def _truncated_png(data: Path, tmp: Path) -> list[str]:
    copy = _copy(data, tmp)
    png = copy / "img_0_0.png"
    png.write_bytes(png.read_bytes()[:60])
    return jsonl(root=str(copy / "labels.jsonl"))(data, tmp)


def _damaged_cache(data: Path, tmp: Path) -> list[str]:
    (tmp / "out" / "cache").mkdir(parents=True)
    (tmp / "out" / "cache" / "index.json").write_text("{not json")
    return jsonl()(data, tmp)


def _file(tmp: Path) -> Path:
    path = tmp / "a-file"
    path.write_text("x")
    return path


def _out_under_file(data: Path, tmp: Path) -> list[str]:
    return jsonl(out=str(_file(tmp) / "out"))(data, tmp)


def _out_is_file(data: Path, tmp: Path) -> list[str]:
    return jsonl(out=str(_file(tmp)))(data, tmp)


def _cache_under_file(data: Path, tmp: Path) -> list[str]:
    return jsonl("--cache", str(_file(tmp) / "cache"))(data, tmp)


def tia2(*extra: str) -> Setup:
    def setup(data: Path, tmp: Path) -> list[str]:
        argv = ["--benchmark", "tia2", "--scorers", "tiny_error_scorers:make", "--out", "{tmp}/out", *extra]
        return [a.format(data=data, tmp=tmp, tia2=EXCERPT_TIA2) for a in argv]

    return setup


# (case id, argv after "eval", regex the one line must match after "textnorm eval: error: ")
CASES: list[tuple[str, Setup, str]] = [
    # option values, refused by the parser
    ("folds 1", jsonl("--folds", "1"), r"argument --folds: expected an integer >= 2 \(k-fold needs two folds\), got 1"),
    ("folds abc", jsonl("--folds", "abc"), r"argument --folds: expected an integer >= 2, got 'abc'"),
    ("scales nan", jsonl("--scales", "nan"), r"argument --scales: expected comma-separated finite numbers > 0, got 'nan'"),
    ("scales 0", jsonl("--scales", "0,1"), r"argument --scales: expected comma-separated finite numbers > 0, got '0,1'"),
    ("scales a,b", jsonl("--scales", "a,b"), r"argument --scales: expected comma-separated numbers, got 'a,b'"),
    ("scales empty", jsonl("--scales", ","), r"argument --scales: expected comma-separated finite numbers > 0"),
    ("lambdas -1", jsonl("--lambdas", "-1"), r"argument --lambdas: expected comma-separated finite numbers >= 0, got '-1'"),
    ("lambdas inf", jsonl("--lambdas", "0.1,inf"), r"argument --lambdas: expected comma-separated finite numbers >= 0"),
    ("batch-size 0", jsonl("--batch-size", "0"), r"argument --batch-size: expected an integer >= 1, got 0"),
    ("bootstrap 0", jsonl("--bootstrap", "0"), r"argument --bootstrap: expected an integer >= 1, got 0"),
    ("seed -1", jsonl("--seed", "-1"), r"argument --seed: expected an integer >= 0, got -1"),
    ("world-prompts 0", jsonl("--world-prompts", "0"), r"argument --world-prompts: expected an integer >= 1"),
    ("select", jsonl("--select", "accuracy"), r"argument --select: invalid choice: 'accuracy'"),
    ("mode", jsonl("--mode", "softmax"), r"argument --mode: invalid choice: 'softmax'"),
    ("benchmark", jsonl("--benchmark", "coco"), r"argument --benchmark: invalid choice: 'coco'"),
    # the data against the options
    ("folds 99", jsonl("--folds", "99"), r"--folds: expected 2 to 4 \(the scored prompts of counting\), got 99"),
    ("one-class data", custom(_one_class), r"--root: no prompt of default has images of both majority labels"),
    ("one scored prompt", custom(_one_scored), r"--folds: cross-validation over prompts needs at least 2 scored prompts, default has 1"),
    ("categories jsonl", jsonl("--categories", "zzz"), r"--categories: none of 'zzz' is in the benchmark"),
    ("categories tia2", tia2("--root", "{tia2}", "--categories", "colour"), r"--categories: expected one of counting"),
    # input files
    ("root absent tia2", tia2(), r"--root: expected the folder of the TIA2 JSON files, got none"),
    ("root wrong tia2", tia2("--root", "{tmp}/nowhere", "--categories", "counting"),
     r"--root: expected the TIA2 prompt set file at .*/nowhere/prompts/prompt_set_counting.json, but it does not exist"),
    ("root absent jsonl", jsonl(root="{tmp}/none.jsonl"), r"--root: expected a JSON Lines file, got .*/none.jsonl \(not a file\)"),
    ("bad JSONL line", custom(_bad_line), r"--root: .*labels.jsonl:2 is not valid JSON"),
    ("junk labels", custom(_junk_labels), r"--root: .*labels.jsonl:1: labels: expected a list of labels -1/0/1, got str '101'"),
    ("null image", custom(_null_image), r"--root: .*labels.jsonl:1: image: expected a string, got NoneType None"),
    ("invalid UTF-8", custom(_bad_utf8), r"--root: .*labels.jsonl is not valid UTF-8 \(byte 12: invalid start byte\)"),
    ("deep JSON", custom(_deep_json), r"--root: .*labels.jsonl:1 nests JSON arrays or objects too deeply"),
    ("images dir absent", tia2("--root", "{tia2}", "--categories", "counting", "--images", "{tmp}/nowhere"),
     r"--images: expected a folder of TIA2 images, got .*/nowhere \(not a folder\)"),
    ("images flat for 3 categories", tia2("--root", "{tia2}", "--images", "{tmp}"), r"--images: expected one sub-folder per category"),
    ("missing image", custom(_missing_image), r"--images: 1 of 24 images of jsonl/counting are missing under .*data \(first: img_1_2.png\)"),
    ("corrupt PNG", custom(_corrupt_png), r"--images: .*img_1_2.png is not a readable image \(cannot identify image file"),
    ("truncated PNG", custom(_truncated_png), r"--images: .*img_0_0.png is not a readable image"),
    ("damaged cache", custom(_damaged_cache), r"--cache: .*out/cache/index.json is not valid JSON"),
    # scorers and device
    ("unknown scorer", jsonl("--scorers", "nonesuch"), r"--scorers: expected one of clip, pickscore, blip2, imagereward, hpsv2 or module:factory, got 'nonesuch'"),
    ("scorer import", jsonl("--scorers", "no_such_module_xyz:make"), r"--scorers: cannot import 'no_such_module_xyz:make'"),
    ("scorer labels", jsonl("--scorers", "x@tiny_error_scorers:make,x@tiny_error_scorers:make"), r"--scorers: expected distinct scorer labels, got \['x', 'x'\]"),
    ("offline clip", jsonl("--scorers", "clip"), r"--scorers: clip: CLIPScorer\(openai/clip-vit-large-patch14\)"),
    ("device", jsonl("--device", "nonsense"), r"--device: expected a torch device such as cpu or cuda:0, got 'nonsense'"),
    # output folders
    ("out under a file", custom(_out_under_file), r"--out: cannot write to the folder .*a-file/out: Not a directory"),
    ("out is a file", custom(_out_is_file), r"--out: cannot write to the folder .*a-file: File exists"),
    ("cache under a file", custom(_cache_under_file), r"--cache: cannot write to the folder .*a-file/cache: Not a directory"),
]
MODEL_NEEDED = {"missing image", "corrupt PNG", "truncated PNG", "offline clip", "device"}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit
        code = exc.code  # type: ignore[assignment]
    return int(code), capsys.readouterr().err


@pytest.mark.parametrize(("case", "setup", "needle"), CASES, ids=[c[0] for c in CASES])
def test_each_eval_mistake_is_one_line_naming_the_option_or_file(
    case: str, setup: Setup, needle: str, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["eval", *setup(dataset, tmp_path)], capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("textnorm eval: error: "), err
    assert re.search(needle, lines[0]), lines[0]
    if case not in MODEL_NEEDED:
        assert SCORERS.builds == 0  # type: ignore[attr-defined]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_folder(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code, err = run_cli(["eval", *jsonl(out=str(locked))(dataset, tmp_path)], capsys)
    assert code == 2 and re.search(r"--out: cannot write to the folder .*locked: Permission denied", err), err


def test_debug_flag_and_environment_show_the_traceback(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["eval", *jsonl("--folds", "99")(dataset, tmp_path)]
    with pytest.raises(ParameterError, match=r"--folds: expected 2 to 4"):
        main([*argv, "--debug"])
    with pytest.raises(ParameterError, match=r"--folds: expected 2 to 4"):
        main(["--debug", *argv])
    monkeypatch.setenv("TEXTNORM_DEBUG", "1")
    with pytest.raises(ParameterError, match=r"--folds: expected 2 to 4"):
        main(argv)


def test_the_command_exits_2_with_one_line_in_a_real_process(dataset: Path, tmp_path: Path) -> None:
    argv = jsonl("--scales", "nan")(dataset, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "TEXTNORM_DEBUG"}
    res = subprocess.run([sys.executable, "-m", "textnorm", "eval", *argv], capture_output=True, text=True, env=env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("textnorm eval: error: argument --scales:"), res.stderr
