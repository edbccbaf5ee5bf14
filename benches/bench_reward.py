"""Reward benchmarks: TextNormReward with a warm text cache vs RawReward vs the naive way.

Setup (issue 4): open_clip ViT-B-32 architecture with random weights, 32 images at 224x224
(float tensors in [0, 1]), 8 distinct prompts in the batch (each 4 times), K = 16
contrastive prompts per prompt. "Naive" scores the K+1 prompt columns in K+1 separate
scorer calls without a cache (K+1 image encodings). Target: TextNorm <= 1.3x raw.

pytest-benchmark: ``python -m pytest benches/bench_reward.py --benchmark-only``
(``-k throughput`` for images/s of each scorer class at its real architecture size).
Ratio table: ``python benches/bench_reward.py [--no-naive]`` (medians of round-robin rounds);
images/s table: ``--sizes`` (one timed call per scorer after warming its text cache);
``--ensemble``: the reward's own work with 2 scorers (tiny CLIPs, and stubs whose model costs
nothing); ``--compare OLD/reward.py``: that older reward module against the current one in the
same process, interleaved rounds, CPU time (issue 15: each confidence computed once).
torch threads from BENCH_THREADS (default 2).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from textnorm import RawReward, TextNormReward
from textnorm.scorers import CLIPScorer, Scorer

THREADS = int(os.environ.get("BENCH_THREADS", "2"))
torch.set_num_threads(THREADS)
N_IMAGES, N_PROMPTS, K = 32, 8, 16

COUNTS = ["one", "two", "three", "four", "five"]
COLOURS = ["red", "blue", "green", "yellow", "black", "white"]
OBJECTS = ["dog", "cat", "bird", "horse", "car", "cup", "apple", "chair"]


def prompt_sets() -> tuple[list[str], dict[str, list[str]]]:
    """8 prompts ("three red dogs on a table") and 16 near-misses each (count, colour, object)."""
    prompts, sets = [], {}
    for i in range(N_PROMPTS):
        count, colour, obj = COUNTS[i % 5], COLOURS[i % 6], OBJECTS[i]
        target = f"{count} {colour} {obj}s on a table"
        others = [f"{c} {colour} {obj}s on a table" for c in COUNTS if c != count]
        others += [f"{count} {c} {obj}s on a table" for c in COLOURS if c != colour]
        others += [f"{count} {colour} {o}s on a table" for o in OBJECTS if o != obj]
        prompts.append(target)
        sets[target] = others[:K]
    return [prompts[i % N_PROMPTS] for i in range(N_IMAGES)], sets


def vit_b32(cache_size: int = 4096) -> CLIPScorer:
    return CLIPScorer.from_open_clip_config("ViT-B-32", seed=0, cache_size=cache_size)


def images(n: int = N_IMAGES, size: int = 224) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def contenders() -> dict[str, Callable[[], Any]]:
    """name -> zero-argument call, each on the same images and prompts (caches warmed)."""
    prompts, sets = prompt_sets()
    batch = images()
    scorer = vit_b32()
    cold = CLIPScorer.from_open_clip(scorer.model, cache_size=0)  # same weights, no cache
    calibrated, raw = TextNormReward(scorer, sets, scale=3.0), RawReward(scorer)
    lists = [[p, *sets[p]] for p in prompts]

    def naive() -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([cold.score_pairs(batch, [lst[k] for lst in lists]) for k in range(K + 1)], 1)

    def encode_only() -> torch.Tensor:
        with torch.no_grad():
            return scorer.encode_images(batch)

    calibrated(batch, prompts)
    raw(batch, prompts)
    return {
        "textnorm_warm": lambda: calibrated(batch, prompts),
        "raw": lambda: raw(batch, prompts),
        "image_encoding_only": encode_only,
        "naive_k_plus_1": naive,
    }


@pytest.fixture(scope="module")
def calls() -> dict[str, Callable[[], Any]]:
    return contenders()


@pytest.mark.parametrize("name", ["textnorm_warm", "raw", "image_encoding_only", "naive_k_plus_1"])
def test_reward_vit_b32(benchmark: Any, calls: dict[str, Callable[[], Any]], name: str) -> None:
    benchmark.group = f"reward ViT-B-32, {N_IMAGES} images 224px, K={K}, {THREADS} threads"
    benchmark.pedantic(calls[name], rounds=1 if name.startswith("naive") else 5, iterations=1)


# ---- images/s per scorer class at real architecture sizes (random weights) ----------------
def _transformers_clip(vision: dict[str, int], text: dict[str, int], projection: int) -> Any:
    from transformers import CLIPConfig, CLIPModel

    return CLIPModel(CLIPConfig(vision_config=vision, text_config=text, projection_dim=projection))


def real_size(kind: str) -> Scorer:
    """Each scorer class at the architecture its published weights use (random init)."""
    import open_clip

    from textnorm.scorers import AestheticScorer, BLIP2Scorer, HPSv2Scorer, PickScoreScorer
    from textnorm.scorers.aesthetic import aesthetic_head

    torch.manual_seed(0)
    if kind == "CLIPScorer ViT-B-32 (open_clip)":
        return vit_b32()
    if kind == "CLIPScorer ViT-L-14 (transformers)":
        model = _transformers_clip(
            {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 14},
            {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12}, 768,
        )  # fmt: skip
        return CLIPScorer.from_transformers(model)
    if kind == "PickScoreScorer ViT-H-14 (transformers)":
        model = _transformers_clip(
            {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 16, "patch_size": 14},
            {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16}, 1024,
        )  # fmt: skip
        return PickScoreScorer.from_transformers(model)
    if kind == "HPSv2Scorer ViT-H-14 (open_clip)":
        return HPSv2Scorer.from_open_clip(open_clip.create_model("ViT-H-14", pretrained=None))
    if kind == "BLIP2Scorer ViT-g + Q-Former":
        from transformers import BertTokenizer, Blip2Config

        from textnorm.scorers._tiny import TINY_WORDS

        config = Blip2Config(qformer_config={"use_qformer_text_input": True})
        tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(TINY_WORDS)})
        return BLIP2Scorer.from_config(config, tokenizer)
    if kind == "AestheticScorer ViT-L-14 + MLP":
        clip = CLIPScorer.from_open_clip(open_clip.create_model("ViT-L-14", pretrained=None))
        return AestheticScorer(clip, aesthetic_head(768))
    raise KeyError(kind)


REAL_SIZES = [
    "CLIPScorer ViT-B-32 (open_clip)",
    "CLIPScorer ViT-L-14 (transformers)",
    "PickScoreScorer ViT-H-14 (transformers)",
    "HPSv2Scorer ViT-H-14 (open_clip)",
    "BLIP2Scorer ViT-g + Q-Former",
    "AestheticScorer ViT-L-14 + MLP",
]


def throughput_call(scorer: Scorer, n: int) -> Callable[[], Any]:
    """TextNorm's scorer work for n images (warm text cache); raw score for prompt-free ones."""
    prompts, sets = prompt_sets()
    batch = images(n, 224)
    if scorer.prompt_free:
        return lambda: scorer.score_pairs(batch, prompts[:n])
    lists = [[p, *sets[p]] for p in prompts[:n]]
    scorer.encode_text([t for lst in lists for t in lst])  # warm cache: time the image side
    return lambda: scorer.score_sets(batch, lists)


@pytest.mark.parametrize("kind", REAL_SIZES)
def test_throughput(benchmark: Any, kind: str) -> None:
    n = 16 if "ViT-B-32" in kind else 4
    scorer = real_size(kind)
    with torch.no_grad():
        call = throughput_call(scorer, n)
        benchmark.group = f"images/s per scorer class (batch {n}, {THREADS} threads)"
        benchmark.extra_info["images"] = n
        benchmark.pedantic(call, rounds=1, iterations=1)
    del scorer, call
    gc.collect()


def _median(call: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"torch {torch.__version__}, {THREADS} threads, {N_IMAGES} images 224px, {N_PROMPTS} prompts, K={K}")
    if "--sizes" in sys.argv:
        sizes()
    elif "--ensemble" in sys.argv:
        ensemble_overhead()
    elif "--compare" in sys.argv:
        compare(sys.argv[sys.argv.index("--compare") + 1])
    else:
        ratios()


def ratios(rounds: int = 5) -> None:
    """Round-robin over the contenders, so a change of machine load hits all of them alike."""
    calls = contenders()
    if "--no-naive" in sys.argv:
        del calls["naive_k_plus_1"]
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds):
        for name, call in calls.items():
            if name.startswith("naive") and r > 0:
                continue  # K+1 image encodings: one round is enough to see the factor
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    timed = {name: statistics.median(ts) for name, ts in times.items()}
    print("| contender | median ms | vs raw |\n|---|---|---|")
    for name, seconds in timed.items():
        print(f"| {name} | {seconds * 1e3:.0f} | {seconds / timed['raw']:.2f}x |")
    pairs = [t - e for t, e in zip(times["textnorm_warm"], times["image_encoding_only"], strict=True)]
    print(f"\nTextNorm minus image encoding, per round (median): {statistics.median(pairs) * 1e3:.0f} ms")


class _Stub(Scorer):
    """A scorer whose model costs almost nothing (8-d features from mean pixels and a fixed
    table per text), so a reward's own work (validation, layout, normalisation) dominates."""

    def __init__(self, seed: int) -> None:
        from textnorm.scorers.images import ImagePreprocess

        super().__init__(id=f"stub:{seed}", preprocess=ImagePreprocess.of(32), device=torch.device("cpu"),
                         dtype=torch.float32)
        self.proj = torch.randn(3, 8, generator=torch.Generator().manual_seed(seed))

    def _encode_text_batch(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([torch.randn(8, generator=torch.Generator().manual_seed(hash(t) % 2**31)) for t in texts])

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.mean(dim=(2, 3)) @ self.proj

    def _similarity(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return image_features @ text_features.T

    def _paired(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        return (image_features * text_features).sum(-1)


def ensemble_calls(n_images: int = 64) -> dict[str, Callable[[], Any]]:
    """TextNormReward over 2 scorers (warm caches): tiny random CLIPs, and stubs whose model
    work is negligible (the reward's own cost); plus the tiny CLIPs' score_sets calls alone."""
    from textnorm.scorers import _tiny

    prompts, sets = prompt_sets()
    prompts = [prompts[i % len(prompts)] for i in range(n_images)]
    batch = images(n_images, 32)
    tiny = [_tiny.tiny_open_clip(), _tiny.tiny_transformers_clip()]
    lists = [[p, *sets[p]] for p in prompts]
    calls: dict[str, Callable[[], Any]] = {}
    for name, scorers in (("tiny_clips", tiny), ("stubs", [_Stub(0), _Stub(1)])):
        reward = TextNormReward(scorers, sets, scale=3.0, method="ur", lam=0.5)

        def call(reward: TextNormReward = reward) -> Any:
            with torch.no_grad():
                return reward(batch, prompts)

        call()
        calls[f"textnorm_2_{name}"] = call

    def scoring_only() -> Any:
        with torch.no_grad():
            return [s.score_sets(batch, lists) for s in tiny]

    calls["tiny_clips_score_sets_only"] = scoring_only
    return calls


def ensemble_overhead(rounds: int = 41) -> None:
    """The reward's own work with 2 scorers: medians over round-robin rounds."""
    calls = ensemble_calls()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    print("| 2 scorers, 64 images 32px, K=16, method ur | median ms |\n|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts) * 1e3:.2f} |")
    extra = [a - b for a, b in zip(times["textnorm_2_tiny_clips"], times["tiny_clips_score_sets_only"], strict=True)]
    print(f"| tiny_clips reward minus score_sets, per round (median) | {statistics.median(extra) * 1e3:.2f} |")


def compare(old_path: str, n_images: int = 64) -> None:
    """An older ``textnorm/reward.py`` (run against the current scorers) vs the current reward:
    same scorers and inputs, interleaved rounds, medians of process CPU time (robust to a busy
    machine), and the median per-round ratio."""
    import importlib.util

    from textnorm.scorers import _tiny

    spec = importlib.util.spec_from_file_location("reward_before", old_path)
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    prompts, sets = prompt_sets()
    prompts = [prompts[i % len(prompts)] for i in range(n_images)]
    batch = images(n_images, 32)
    print("| 2 scorers, 64 images 32px, K=16, ur | before ms | after ms | after/before |\n|---|---|---|---|")
    for name, scorers, rounds in (("stubs", [_Stub(0), _Stub(1)], 301),
                                  ("tiny CLIPs", [_tiny.tiny_open_clip(), _tiny.tiny_transformers_clip()], 61)):
        for grad in (False, True):
            rewards = {"before": old.TextNormReward(scorers, sets, scale=3.0, method="ur", lam=0.5),
                       "after": TextNormReward(scorers, sets, scale=3.0, method="ur", lam=0.5)}
            x = batch.clone().requires_grad_(grad)
            out = {k: r(x, prompts)[0] for k, r in rewards.items()}
            torch.testing.assert_close(out["before"], out["after"], rtol=1e-5, atol=1e-6)
            times: dict[str, list[float]] = {k: [] for k in rewards}
            for _ in range(rounds):
                for k, r in rewards.items():
                    start = time.process_time()
                    with torch.set_grad_enabled(grad):
                        r(x, prompts)
                    times[k].append(time.process_time() - start)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            ratio = statistics.median(a / b for a, b in zip(times["after"], times["before"], strict=True) if b > 0)
            label = f"{name}{', grad' if grad else ''}"
            print(f"| {label} | {med['before']:.2f} | {med['after']:.2f} | {ratio:.2f}x |", flush=True)


def sizes() -> None:
    print("| scorer (random weights) | images | build s | score_sets s | images/s |\n|---|---|---|---|---|")
    for kind in REAL_SIZES:
        n = 16 if "ViT-B-32" in kind else 4
        start = time.perf_counter()
        scorer = real_size(kind)
        built = time.perf_counter() - start
        with torch.no_grad():
            seconds = _median(throughput_call(scorer, n), 1)
        print(f"| {kind} | {n} | {built:.0f} | {seconds:.2f} | {n / seconds:.2f} |", flush=True)
        del scorer
        gc.collect()


if __name__ == "__main__":
    main()
