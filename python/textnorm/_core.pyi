# Hand-written stubs of the compiled core (checked with mypy.stubtest).
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "BUILD_PROFILE",
    "MAX_THREADS_PER_CORE",
    "num_threads",
    "set_num_threads",
    "TextnormError",
    "LayoutError",
    "NonFiniteError",
    "ParameterError",
    "ContrastLexicon",
    "contrast_sets",
    "contrast_rule_names",
    "contrast_default_rule_names",
    "CONTRAST_DEFAULT_LEXICON",
    "CONTRAST_DEFAULT_MAX_BYTES",
    "confidence",
    "probabilities",
    "ensemble",
]

__version__: Final[str]
BUILD_PROFILE: Final[str]
# TEXTNORM_NUM_THREADS is capped at this many threads per available core.
MAX_THREADS_PER_CORE: Final[int]

class TextnormError(ValueError): ...
class LayoutError(TextnormError): ...
class NonFiniteError(TextnormError): ...
class ParameterError(TextnormError): ...

def num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def confidence(
    values: npt.NDArray[np.floating],
    *,
    offsets: npt.NDArray[np.int64] | None = None,
    lengths: npt.NDArray[np.int64] | None = None,
    scale: float = 1.0,
    scales: npt.NDArray[np.float64] | None = None,
    mode: str = "minmax",
    target: int = 0,
    targets: npt.NDArray[np.int64] | None = None,
    log: bool = False,
    nan_raise: bool = True,
) -> npt.NDArray[np.floating]: ...
def probabilities(
    values: npt.NDArray[np.floating],
    *,
    offsets: npt.NDArray[np.int64] | None = None,
    lengths: npt.NDArray[np.int64] | None = None,
    scale: float = 1.0,
    scales: npt.NDArray[np.float64] | None = None,
    mode: str = "minmax",
    nan_raise: bool = True,
) -> npt.NDArray[np.floating]: ...
def ensemble(
    values: npt.NDArray[np.floating],
    *,
    offsets: npt.NDArray[np.int64] | None = None,
    lengths: npt.NDArray[np.int64] | None = None,
    scale: float = 1.0,
    scales: npt.NDArray[np.float64] | None = None,
    mode: str = "minmax",
    target: int = 0,
    targets: npt.NDArray[np.int64] | None = None,
    method: str = "mean",
    lam: float = 0.0,
    nan_raise: bool = True,
) -> npt.NDArray[np.floating]: ...

# Contrastive prompt sets (rust/py/contrast.rs).
from typing_extensions import final as _final

CONTRAST_DEFAULT_LEXICON: Final[str]
CONTRAST_DEFAULT_MAX_BYTES: Final[int]

@_final
class ContrastLexicon:
    def __new__(cls, layers: list[str]) -> ContrastLexicon: ...
    def restricted(self, vocabulary: str) -> ContrastLexicon: ...
    @property
    def num_nouns(self) -> int: ...

def contrast_rule_names() -> list[str]: ...
def contrast_default_rule_names() -> list[str]: ...
def contrast_sets(
    prompts: list[str],
    *,
    rules: list[str] | None = None,
    k: int | None = None,
    seed: int = 0,
    lexicon: ContrastLexicon | None = None,
    max_bytes: int = ...,
) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...
