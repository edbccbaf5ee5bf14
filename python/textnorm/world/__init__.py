"""A synthetic world with an exact judge: ground truth for text-image alignment.

Prompts come from a small grammar (`parse`, `sample_prompts`), images from a numpy renderer
(`render`, `render_near_misses`, `render_slots`), and `judge` reads any image's pixels and says
which constraints of its prompt hold. `make_benchmark` mixes correct renders and near-misses into
a labelled set. Geometry (for soft, differentiable re-implementations): `textnorm.world.geometry`.

This package imports nothing of textnorm but its error classes, and needs only numpy (and scipy
for the judge); it never imports torch.
"""

from textnorm.world.geometry import AREA_FACTOR, signed_distance
from textnorm.world.grammar import RELATION_MARGIN, Constraint, ObjectSpec, Prompt, check, parse, try_parse
from textnorm.world.render import (
    SLOT_DIM,
    SLOT_INDEX,
    render,
    render_near_misses,
    render_scene,
    render_slots,
    scenes_to_slots,
    slots_to_scenes,
)
from textnorm.world.sampler import sample_prompt, sample_prompts, split_of
from textnorm.world.scene import (
    NEAR_MISS_KINDS,
    SIZE_RANGES,
    SIZE_THRESHOLD,
    Scene,
    WorldObject,
    near_miss_kinds,
    near_miss_prompt,
    sample_near_miss,
    sample_scene,
)
from textnorm.world.vocab import (
    BACKGROUND,
    CATEGORIES,
    COLOURS,
    PALETTE,
    PROMPT_CATEGORIES,
    RELATIONS,
    SHAPES,
    SIZES,
)

_JUDGE = {"judge", "judge_scenes", "alignment", "fractions", "JudgeResult", "Verdict", "Detected"}
_BENCH = {"make_benchmark", "WorldBenchmark"}


def __getattr__(name: str) -> object:
    # The judge needs scipy; load it on first use so rendering works with numpy alone.
    if name in _JUDGE:
        from textnorm.world import judging as _j

        return getattr(_j, name)
    if name in _BENCH:
        from textnorm.world import benchmark as _b

        return getattr(_b, name)
    raise AttributeError(f"module 'textnorm.world' has no attribute {name!r}")


__all__ = [
    "AREA_FACTOR", "BACKGROUND", "CATEGORIES", "COLOURS", "NEAR_MISS_KINDS", "PALETTE", "PROMPT_CATEGORIES",
    "RELATIONS", "RELATION_MARGIN", "SHAPES", "SIZES", "SIZE_RANGES", "SIZE_THRESHOLD",
    "SLOT_DIM", "SLOT_INDEX", "Constraint", "Detected", "JudgeResult", "ObjectSpec", "Prompt",
    "Scene", "Verdict", "WorldBenchmark", "WorldObject", "alignment", "check", "fractions",
    "judge", "judge_scenes", "make_benchmark", "near_miss_kinds", "near_miss_prompt", "parse",
    "render", "render_near_misses", "render_scene", "render_slots", "sample_near_miss",
    "sample_prompt", "sample_prompts", "sample_scene", "scenes_to_slots", "signed_distance",
    "slots_to_scenes", "split_of", "try_parse",
]
