"""Shared data of the reward tests: target prompts with hand-written contrastive sets, and a
duck-typed ContrastiveSets."""

from __future__ import annotations

SETS = {
    "three dogs on a red mat": ["two dogs on a red mat", "four dogs on a red mat", "three cats on a red mat"],
    "a cat and a bird": ["a cat and a dog", "a bird", "a cat"],
    "a blue horse": ["a red horse", "a green horse", "a blue dog", "a blue cat", "a yellow horse"],
}
PROMPTS = ["three dogs on a red mat", "a cat and a bird", "three dogs on a red mat", "a blue horse"]


class FakeSets:
    """The duck type of textnorm's ContrastiveSets: prompt_lists() -> [[target, *set], ...]."""

    def __init__(self, sets: dict[str, list[str]]) -> None:
        self._lists = [[p, *s] for p, s in sets.items()]

    def prompt_lists(self) -> list[list[str]]:
        return [list(x) for x in self._lists]

    def _with(self, lists: list[list[str]]) -> FakeSets:
        self._lists = lists
        return self
