"""The world's vocabulary: shape, colour, size, count and relation words, and their constants.

Words the parser accepts are a superset of what the renderer draws: prompts made by the
rule-based contrast generator may name a shape or colour the world never draws ("a red
hexagon"); they parse, render raises, and the judge counts zero such objects. Every word here
is one the default contrast lexicon knows.
"""

from __future__ import annotations

# Shapes the renderer draws and the judge classifies (order = slot one-hot order).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond", "ring")
# Every shape noun the parser accepts (singular -> plural).
SHAPE_PLURALS: dict[str, str] = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "star": "stars",
    "cross": "crosses",
    "diamond": "diamonds",
    "ring": "rings",
    "hexagon": "hexagons",
    "pentagon": "pentagons",
    "heart": "hearts",
}
SHAPE_WORDS: tuple[str, ...] = tuple(SHAPE_PLURALS)

# Drawable colours (order = slot one-hot order) and their reference RGB. Chosen at least 93 apart
# in RGB and at least 200 from the background, so a pixel half-way between a colour and the
# background is still far nearer its own colour's mixing line than any other.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (210, 30, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 215),
    "yellow": (235, 220, 40),
    "purple": (135, 55, 175),
    "orange": (250, 130, 20),
    "cyan": (40, 190, 210),
    "black": (35, 35, 35),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
# Every colour word the parser accepts (the contrast lexicon's; "grey" is read as "gray").
COLOUR_WORDS: tuple[str, ...] = (
    "red", "green", "blue", "yellow", "purple", "orange", "pink", "cyan", "white", "black",
    "brown", "gray", "magenta", "teal", "gold", "silver", "beige",
)
COLOUR_ALIASES: dict[str, str] = {"grey": "gray", "violet": "purple", "golden": "gold"}
BACKGROUND: tuple[int, int, int] = (240, 240, 240)

# Sizes: the word -> its canonical value; synonyms the contrast lexicon may swap in.
SIZES: tuple[str, ...] = ("small", "big")
SIZE_WORDS: dict[str, str] = {
    "small": "small", "tiny": "small", "little": "small",
    "big": "big", "large": "big", "huge": "big", "giant": "big",
}

# Count words. The sampler uses 1..4; the contrast count rule reaches 6 (four + 2), and the
# parser reads up to ten so any such variant parses.
NUMBER_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
)
COUNT_WORDS: dict[str, int] = {w: i for i, w in enumerate(NUMBER_WORDS) if i > 0}
COUNT_WORDS.update({"a": 1, "an": 1})
COUNT_WORDS.update({str(i): i for i in range(1, 11)})
MAX_COUNT = 10

# Spatial relations: canonical phrase -> accepted phrasings; and the flip of each.
RELATIONS: tuple[str, ...] = ("to the left of", "to the right of", "above", "below")
RELATION_PHRASES: dict[str, str] = {
    "to the left of": "to the left of",
    "on the left of": "to the left of",
    "left of": "to the left of",
    "to the right of": "to the right of",
    "on the right of": "to the right of",
    "right of": "to the right of",
    "above": "above",
    "over": "above",
    "on top of": "above",
    "below": "below",
    "under": "below",
    "beneath": "below",
    "underneath": "below",
}
RELATION_FLIP: dict[str, str] = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
}

# The benchmark's categories (TIA2's alignment categories), and every category the sampler knows
# ("single": one object, what a generator should get right first).
CATEGORIES: tuple[str, ...] = ("counting", "composition", "binding", "spatial")
PROMPT_CATEGORIES: tuple[str, ...] = ("single", *CATEGORIES)
