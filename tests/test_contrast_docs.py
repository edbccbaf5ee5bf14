"""The contrast docs say what the code does: the README's contrast examples run, its list of
rules is the registered table, the docstring examples run, and no test oracle ships."""

from __future__ import annotations

import doctest
import importlib
import re

import textnorm
from conftest import REPO
from textnorm.contrast import DEFAULT_RULES, RULES


def _readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def test_readme_contrast_examples_run() -> None:
    section = _readme_section("Contrastive prompt sets")
    test = doctest.DocTestParser().get_doctest(section, {"textnorm": textnorm}, "README contrast", "README.md", 0)
    assert len(test.examples) >= 5
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_readme_lists_the_registered_rules() -> None:
    section = _readme_section("Contrastive prompt sets")
    listed = re.search(r"Rules \(([^)]*)\)", section)
    assert listed is not None
    assert tuple(re.findall(r"`(\w+)`", listed.group(1))) == RULES
    # the one rule left out by default is the one the README says changes several things
    assert set(RULES) - set(DEFAULT_RULES) == {"joint_count"}
    assert "except `joint_count`" in section


def test_docstring_examples_run() -> None:
    for name in ("textnorm.contrast", "textnorm._contrast_lexicon"):
        module = importlib.import_module(name)  # textnorm.contrast the attribute is the function
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_no_test_oracle_ships_in_the_package() -> None:
    package = REPO / "python" / "textnorm"
    oracles = [p for p in package.rglob("*.py") if p.stem.endswith("_ref") or p.stem.startswith("reference")]
    assert oracles == []
    for p in package.rglob("*.py"):
        assert "reference_contrast" not in p.read_text(encoding="utf-8"), p


def test_cli_help_lists_the_registered_rules() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "textnorm", "contrast", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    help_text = " ".join(out.stdout.split())
    assert " ".join(RULES) in help_text
