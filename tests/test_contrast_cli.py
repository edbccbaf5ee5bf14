"""``textnorm contrast``: inputs (lines, JSON list, TIA2 object, stdin), options, the LLM for
prompts no rule covers (against the scripted local server of test_llm), progress and errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from test_llm import Script, server  # noqa: F401 (the local chat-completions server fixture)

import textnorm
from textnorm.cli import main


def _run(args: list[str]) -> int:
    return main(["contrast", *args])


def test_lines_to_tia2_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "p.txt"
    src.write_text("a realistic photo of two cats\n\nA big red star above a small blue hexagon\r\nhello world\n")
    out = tmp_path / "o" / "sets.json"
    assert _run([str(src), "-o", str(out), "--k", "5", "--seed", "3"]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    prompts = ["a realistic photo of two cats", "A big red star above a small blue hexagon", "hello world"]
    assert list(data) == prompts
    want = textnorm.contrast(prompts, k=5, seed=3)
    assert [data[p] for p in prompts] == list(want)
    assert "wrote 3 prompts" in capsys.readouterr().err


def test_json_inputs_rules_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lst = tmp_path / "p.json"
    lst.write_text(json.dumps(["two dogs", "a cat and a dog"]))
    out = tmp_path / "a.json"
    assert _run([str(lst), "-o", str(out), "--rules", "count,drop", "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["two dogs"] == ["a dog", "three dogs", "four dogs"]
    # rules run in the order given: counts first, then the dropped objects
    assert data["a cat and a dog"][0] == "two cats and a dog"
    assert data["a cat and a dog"][-2:] == ["a cat", "a dog"]
    # A TIA2 file regenerates from its keys; "--rules a b" works like "a,b".
    out2 = tmp_path / "b.json"
    assert _run([str(out), "-o", str(out2), "--rules", "count", "drop", "--quiet"]) == 0
    assert json.loads(out2.read_text()) == data
    monkeypatch.setattr("sys.stdin", io.StringIO("three red circles\n"))
    out3 = tmp_path / "c.json"
    assert _run(["-", "-o", str(out3), "--rules", "count", "--quiet"]) == 0
    assert json.loads(out3.read_text())["three red circles"][0] == "a red circle"


def test_lexicon_file(tmp_path: Path) -> None:
    lex = tmp_path / "lex.json"
    lex.write_text(json.dumps({"nouns": {"animal": ["axolotl"]}}))
    src = tmp_path / "p.txt"
    src.write_text("two axolotls\n")
    out = tmp_path / "o.json"
    assert _run([str(src), "-o", str(out), "--rules", "count", "--lexicon", str(lex), "--quiet"]) == 0
    assert json.loads(out.read_text())["two axolotls"][0] == "an axolotl"
    assert _run([str(src), "-o", str(out), "--rules", "count", "--lexicon", str(lex), "--replace-lexicon",
                 "--quiet"]) == 0


def test_llm_writes_the_sets_rules_leave_empty(
    tmp_path: Path, server: tuple[str, Script]  # noqa: F811
) -> None:
    url, script = server
    script.actions = [("answer", "1. hello moon\n2. goodbye world")]
    src = tmp_path / "p.txt"
    src.write_text("two cats\nhello world\n")
    out = tmp_path / "o.json"
    cache = tmp_path / "llm.jsonl"
    args = [str(src), "-o", str(out), "--llm-base-url", url, "--llm-model", "m", "--llm-cache", str(cache),
            "--no-paraphrase-filter", "--quiet", "--llm-retries", "0"]
    assert _run(args) == 0
    data = json.loads(out.read_text())
    assert data["hello world"] == ["hello moon", "goodbye world"]
    assert data["two cats"] == list(textnorm.contrast(["two cats"]))[0]
    assert len(script.requests) == 1  # only the prompt no rule covers
    assert _run(args) == 0 and len(script.requests) == 1  # cached


def test_progress_bar_on_large_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "p.txt"
    src.write_text("".join(f"{i % 5 + 1} red cats {i}\n" for i in range(10_050)))
    out = tmp_path / "o.json"
    assert _run([str(src), "-o", str(out), "--rules", "count", "--k", "2"]) == 0
    err = capsys.readouterr().err
    assert "rules" in err and "10050" in err
    assert len(json.loads(out.read_text())) == 10_050


def test_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.json"
    assert _run([str(tmp_path / "missing.txt"), "-o", str(out)]) == 2
    assert "missing.txt" in capsys.readouterr().err
    src = tmp_path / "p.txt"
    src.write_text("two cats\n")
    assert _run([str(src), "-o", str(out), "--rules", "colour"]) == 2
    assert "rules: expected names among" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert _run([str(bad), "-o", str(out)]) == 2
    assert "JSON list of strings" in capsys.readouterr().err
    src.write_text("hello world\n")
    assert _run([str(src), "-o", str(out), "--llm-base-url", "http://127.0.0.1:9/v1", "--llm-retries", "0",
                 "--no-paraphrase-filter", "--quiet"]) == 2
    assert "no usable answer" in capsys.readouterr().err
    assert not out.exists()
