"""Test-wide settings: no network, one intra-op thread for torch (two CPU-bound processes on
two cores slow a tiny torch step down 15-30x), and hypothesis without deadlines (noisy CI)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import settings  # noqa: E402

settings.register_profile("textnorm", deadline=None, max_examples=60, print_blob=True)
settings.load_profile("textnorm")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_TIA2 = REPO.parent / "shared" / "tia2"
EXCERPT_TIA2 = REPO / "tests" / "data" / "tia2"


def full_tia2() -> Path | None:
    """The authors' full TIA2 files when ../shared/tia2 sits beside the clone, else None."""
    return SHARED_TIA2 if (SHARED_TIA2 / "prompts").is_dir() else None


@pytest.fixture(scope="session")
def tia2_root() -> Path:
    """Full TIA2 files when present, else the committed excerpt under tests/data/tia2."""
    return full_tia2() or EXCERPT_TIA2
