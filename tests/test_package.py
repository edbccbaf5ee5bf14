"""Packaging promises: light import, version and build profile, runnable docs."""

from __future__ import annotations

import doctest
import subprocess
import sys

import textnorm
from conftest import REPO


def test_import_does_not_import_torch():
    code = "import sys, textnorm; textnorm.confidence([[1.0, 0.0]]); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_prints_version_and_build_profile():
    out = subprocess.run([sys.executable, "-m", "textnorm", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert textnorm.__version__ in out.stdout and textnorm.BUILD_PROFILE in out.stdout
    assert textnorm.BUILD_PROFILE in ("release", "debug")


def test_readme_example_runs():
    result = doctest.testfile(str(REPO / "README.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_docstring_examples_of_the_normaliser_run():
    result = doctest.testmod(textnorm.normalize)
    assert result.attempted >= 3 and result.failed == 0


def test_results_do_not_depend_on_the_thread_count():
    code = (
        "import numpy as np, textnorm, hashlib;"
        "r = np.random.default_rng(5); n = r.integers(2, 33, 40000);"
        "o = np.concatenate([[0], np.cumsum(n)]); v = r.normal(size=o[-1]).astype(np.float32);"
        "out = [textnorm.confidence(v, offsets=o, scale=3.0), textnorm.probabilities(v, offsets=o),"
        " textnorm.ensemble(np.stack([v, -v]), offsets=o, method='ur', lam=0.5)];"
        "print(textnorm._core.num_threads(), hashlib.sha256(b''.join(x.tobytes() for x in out)).hexdigest())"
    )
    runs = {}
    for n in ("1", "2", "3"):
        env = {**__import__("os").environ, "TEXTNORM_NUM_THREADS": n}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        threads, digest = out.stdout.split()
        assert threads == n
        runs[n] = digest
    assert len(set(runs.values())) == 1


def test_a_command_without_the_full_extra_says_how_to_get_it():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from textnorm.cli import main\n"
        "sys.exit(main(['demo', '--quick', '--out', sys.argv[1]]))"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        res = subprocess.run([sys.executable, "-c", code, out], capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "textnorm demo" in res.stderr and "'torch'" in res.stderr and "textnorm-t2i[full]" in res.stderr
    assert "Traceback" not in res.stderr


def test_reward_and_calibration_import_the_normaliser_where_it_is_defined():
    """Issue 15: no call through the package facade (which lazily re-exports reward itself), in
    module scope or inside functions."""
    import ast

    for rel in ("python/textnorm/reward.py", "python/textnorm/eval/calibrate.py"):
        tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
        facade = [
            node.lineno
            for node in ast.walk(tree)
            if (isinstance(node, ast.Import) and any(a.name == "textnorm" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and node.module == "textnorm")
        ]
        assert facade == [], f"{rel} imports the textnorm facade at lines {facade}"
