"""A synthetic world with an exact judge: ground truth for text-image alignment.

- Prompts: a small plain-English grammar (`parse`, `Prompt`, `Prompt.constraints`) and seeded
  samplers per category with a fixed held-out split (`sample_prompts`, `split_of`).
- Images: a numpy renderer, deterministic from (prompt, seed) (`render`), deliberate near-misses
  (`render_near_misses`), and a decoder from continuous object slots (`render_slots`,
  `scenes_to_slots`, `slots_to_scenes`) for generators over a compact scene latent. Geometry and
  compositing, for soft differentiable re-implementations: `textnorm.world.geometry`
  (`signed_distance` runs on torch tensors too).
- The judge: `judge(images, prompts)` reads pixels only and reports each constraint's verdict,
  the fraction satisfied, `aligned`, and `unknown` for unreadable images; `judge_scenes` checks the
  same constraints on scenes (the ground truth); `alignment` / `fractions` turn results into
  reward arrays.
- Contrast sets in the world's words: `contrast_set` / `contrast_sets` (every near-miss kind the
  judge checks, `CONTRAST_KINDS`, with the kind of each prompt; `textnorm.world.contrast`).
- `make_benchmark` mixes correct renders and near-misses into a labelled TIA2-like set.

This package imports nothing of textnorm but its error classes and never imports torch; rendering
needs numpy alone, the judge also scipy (loaded on first use).
"""

from typing import TYPE_CHECKING, Any

from textnorm.world.contrast import CONTRAST_KINDS, ContrastSet, contrast_candidates, contrast_set, contrast_sets
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

if TYPE_CHECKING:  # the judge needs scipy: imported lazily below, typed here
    from textnorm.world.benchmark import WorldBenchmark, make_benchmark
    from textnorm.world.judging import (
        Detected,
        JudgeResult,
        Verdict,
        alignment,
        fractions,
        judge,
        judge_scenes,
    )

_JUDGE = {"judge", "judge_scenes", "alignment", "fractions", "JudgeResult", "Verdict", "Detected"}
_BENCH = {"make_benchmark", "WorldBenchmark"}


def __getattr__(name: str) -> Any:
    # The judge needs scipy; load it on first use so rendering works with numpy alone.
    if name in _JUDGE:
        from textnorm.world import judging as _j

        return getattr(_j, name)
    if name in _BENCH:
        from textnorm.world import benchmark as _b

        return getattr(_b, name)
    raise AttributeError(f"module 'textnorm.world' has no attribute {name!r}")


__all__ = [
    "CONTRAST_KINDS", "ContrastSet", "contrast_candidates", "contrast_set", "contrast_sets",
    "AREA_FACTOR", "BACKGROUND", "CATEGORIES", "COLOURS", "NEAR_MISS_KINDS", "PALETTE", "PROMPT_CATEGORIES",
    "RELATIONS", "RELATION_MARGIN", "SHAPES", "SIZES", "SIZE_RANGES", "SIZE_THRESHOLD",
    "SLOT_DIM", "SLOT_INDEX", "Constraint", "Detected", "JudgeResult", "ObjectSpec", "Prompt",
    "Scene", "Verdict", "WorldBenchmark", "WorldObject", "alignment", "check", "fractions",
    "judge", "judge_scenes", "make_benchmark", "near_miss_kinds", "near_miss_prompt", "parse",
    "render", "render_near_misses", "render_scene", "render_slots", "sample_near_miss",
    "sample_prompt", "sample_prompts", "sample_scene", "scenes_to_slots", "signed_distance",
    "slots_to_scenes", "split_of", "try_parse",
]
