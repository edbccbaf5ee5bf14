"""Scorer protocol on tiny random models: scores against the libraries' own forward passes,
score_sets == score, the text cache, image formats, preprocessing and gradients."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from textnorm import LayoutError, NonFiniteError, ParameterError  # noqa: E402
from textnorm.scorers import _tiny  # noqa: E402
from textnorm.scorers.images import ImagePreprocess, prepare_images  # noqa: E402

torch.set_num_threads(1)

BUILDERS = {
    "open_clip": _tiny.tiny_open_clip,
    "transformers": _tiny.tiny_transformers_clip,
    "blip2": _tiny.tiny_blip2,
    "blip2_itm": lambda **kw: _tiny.tiny_blip2(head="itm", **kw),
    "imagereward": _tiny.tiny_image_reward,
}
TEXTS = ["a red cat", "two dogs", "a blue bird on the left of a horse", "a red cat"]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(3, 3, 32, 32, generator=gen)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_score_sets_equals_score(kind: str, images: torch.Tensor) -> None:
    scorer = BUILDERS[kind]()
    lists = [["a red cat", "a blue cat"], ["two dogs"], ["a bird", "a red cat", "two birds", "a bird"]]
    values, offsets = scorer.score_sets(images, lists)
    assert offsets.tolist() == [0, 2, 3, 7]
    assert values.dtype == torch.float32 and values.shape == (7,)
    for i, prompts in enumerate(lists):
        row = scorer.score(images[i : i + 1], prompts)[0]
        torch.testing.assert_close(values[offsets[i] : offsets[i + 1]], row, rtol=1e-5, atol=1e-5)
    full = scorer.score(images, TEXTS)
    assert full.shape == (3, 4)
    torch.testing.assert_close(full[:, 0], full[:, 3])  # the same text gives the same column
    torch.testing.assert_close(scorer.score_pairs(images, TEXTS[:3]), full.diagonal())


def _pixels(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Hand-normalised pixels (inputs already at the model size: no resize)."""
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (images - m) / s


def test_open_clip_score_is_logit_scale_cosine(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_open_clip()
    model = scorer.model
    px = _pixels(images, scorer.preprocess.mean, scorer.preprocess.std)
    import open_clip

    tokens = open_clip.tokenizer.SimpleTokenizer()(TEXTS)
    with torch.no_grad():
        img, txt, scale = model(px, tokens)  # open_clip's own forward: normalised features
    expected = (scale * img.double() @ txt.double().T).float()
    torch.testing.assert_close(scorer.score(images, TEXTS), expected, rtol=1e-5, atol=1e-5)


def test_transformers_clip_score_matches_logits_per_image(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_transformers_clip()
    enc = scorer.tokenizer(TEXTS, padding=True, return_tensors="pt")
    px = _pixels(images, scorer.preprocess.mean, scorer.preprocess.std)
    with torch.no_grad():
        out = scorer.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=px)
    torch.testing.assert_close(scorer.score(images, TEXTS), out.logits_per_image, rtol=1e-5, atol=1e-5)


def test_blip2_score_matches_transformers_itc(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_blip2()
    enc = scorer.tokenizer(TEXTS, padding=True, return_tensors="pt")
    px = _pixels(images, scorer.preprocess.mean, scorer.preprocess.std)
    with torch.no_grad():
        out = scorer.model(
            pixel_values=px, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
            use_image_text_matching_head=False,
        )
    torch.testing.assert_close(scorer.score(images, TEXTS), out.logits_per_image, rtol=1e-5, atol=1e-5)


def test_blip2_itm_matches_transformers_itm_head(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_blip2(head="itm")
    assert scorer.id == "blip2:tiny:seed2:itm"
    texts = TEXTS[:3]
    enc = scorer.tokenizer(texts, padding=True, return_tensors="pt")
    px = _pixels(images, scorer.preprocess.mean, scorer.preprocess.std)
    with torch.no_grad():  # transformers pairs image i with text i
        out = scorer.model(
            pixel_values=px, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
            use_image_text_matching_head=True,
        )
    log_odds = out.logits_per_image[:, 1] - out.logits_per_image[:, 0]
    torch.testing.assert_close(scorer.score_pairs(images, texts), log_odds, rtol=1e-4, atol=1e-5)
    with pytest.raises(ParameterError, match=r"head: expected 'itc' or 'itm', got 'itx'"):
        _tiny.tiny_blip2(head="itx")


def test_imagereward_matches_package_scoring_and_encodes_each_image_once(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_image_reward()
    model = scorer.model
    px = _pixels(images, scorer.preprocess.mean, scorer.preprocess.std)
    expected = torch.empty(3, 4)
    with torch.no_grad():  # the package's per-pair recipe: tokenise, ViT, joint pass, MLP, standardise
        for i in range(3):
            for j, text in enumerate(TEXTS):
                tok = model.blip.tokenizer(text, padding="max_length", truncation=True, max_length=35, return_tensors="pt")
                emb = model.blip.visual_encoder(px[i : i + 1])
                out = model.blip.text_encoder(
                    tok.input_ids, attention_mask=tok.attention_mask, encoder_hidden_states=emb,
                    encoder_attention_mask=torch.ones(emb.shape[:-1], dtype=torch.long), return_dict=True,
                )
                expected[i, j] = ((model.mlp(out.last_hidden_state[:, 0, :]) - model.mean) / model.std).item()
    calls = []
    handle = model.blip.visual_encoder.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    try:
        got = scorer.score(images, TEXTS)
        values, _ = scorer.score_sets(images, [TEXTS, TEXTS[:2], TEXTS[1:]])
    finally:
        handle.remove()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(values[:4], expected[0], rtol=1e-5, atol=1e-5)
    assert calls == [3, 3]  # one ViT pass over the batch per call, not one per prompt


@pytest.mark.parametrize("kind", ["open_clip", "blip2", "blip2_itm", "imagereward"])
def test_cache_on_off_and_batch_size_identical(kind: str, images: torch.Tensor) -> None:
    lists = [TEXTS, ["two dogs", "a red cat"], ["a bird"]]
    cached = BUILDERS[kind](cache_size=4096)
    uncached = BUILDERS[kind](cache_size=0, max_batch_size=2)
    first, offsets = cached.score_sets(images, lists)
    second, _ = cached.score_sets(images, lists)
    off, off_offsets = uncached.score_sets(images, lists)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, off, rtol=1e-5, atol=1e-5)
    assert offsets.tolist() == off_offsets.tolist()
    assert uncached.cache_info() == (0, 4, 0)  # 4 distinct texts, each encoded once
    assert cached.cache_info() == (4, 4, 4)


def test_text_cache_counts_lru_eviction_and_duplicates() -> None:
    scorer = _tiny.tiny_open_clip(cache_size=2)
    calls: list[list[str]] = []
    encode = scorer._encode_text_batch
    scorer._encode_text_batch = lambda texts: calls.append(list(texts)) or encode(texts)  # type: ignore[method-assign]
    a = scorer.encode_text(["x", "y", "x", "x"])  # duplicates encoded once
    assert calls == [["x", "y"]] and a.shape[0] == 4
    torch.testing.assert_close(a[0], a[2])
    assert scorer.cache_info() == (0, 2, 2)
    scorer.encode_text(["x"])  # hit; x becomes most recent
    scorer.encode_text(["z"])  # evicts y (least recent)
    assert scorer.cache_info() == (1, 3, 2)
    scorer.encode_text(["x", "y"])
    assert calls[-1] == ["y"]
    assert scorer.cache_info() == (2, 4, 2)
    # more distinct misses than capacity: still one correct row per text
    out = scorer.encode_text(["p", "q", "r"])
    torch.testing.assert_close(out, _tiny.tiny_open_clip(cache_size=0).encode_text(["p", "q", "r"]))
    scorer.clear_cache()
    assert scorer.cache_info() == (0, 0, 0)


def test_image_formats_give_identical_scores() -> None:
    from PIL import Image

    scorer = _tiny.tiny_open_clip()
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(2, 40, 56, 3), dtype=np.uint8)
    reference = scorer.score(torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255.0, TEXTS)
    variants = {
        "uint8 numpy HWC": u8,
        "uint8 tensor HWC": torch.from_numpy(u8),
        "uint8 tensor CHW": torch.from_numpy(u8).permute(0, 3, 1, 2),
        "float numpy HWC": u8.astype(np.float32) / 255.0,
        "float64 tensor CHW": torch.from_numpy(u8).permute(0, 3, 1, 2).double() / 255.0,
        "PIL list": [Image.fromarray(x) for x in u8],
        "read-only numpy": np.lib.stride_tricks.as_strided(u8, writeable=False),
    }
    for name, images in variants.items():
        torch.testing.assert_close(scorer.score(images, TEXTS), reference, rtol=1e-4, atol=1e-4, msg=name)


def test_pil_images_of_different_sizes() -> None:
    from PIL import Image

    scorer = _tiny.tiny_open_clip()
    a, b = Image.new("RGB", (64, 40), (200, 30, 30)), Image.new("L", (20, 20), 90)
    both = scorer.score([a, b], TEXTS)
    torch.testing.assert_close(both[0], scorer.score([a], TEXTS)[0])
    torch.testing.assert_close(both[1], scorer.score([b], TEXTS)[0])


def test_preprocess_matches_open_clip_pil_transform() -> None:
    """Resize (shorter side, bicubic, antialiased) + center crop + normalise vs open_clip's PIL
    pipeline: equal up to PIL's 8-bit rounding of the resized image."""
    import open_clip
    from PIL import Image

    prep = ImagePreprocess.of(48)
    reference = open_clip.image_transform(48, is_train=False)
    rng = np.random.default_rng(1)
    smooth = rng.integers(0, 256, size=(1, 3, 9, 13)).astype(np.float32)
    for height, width in [(96, 140), (150, 72), (48, 48), (30, 40)]:
        big = torch.nn.functional.interpolate(torch.from_numpy(smooth), size=(height, width), mode="bilinear")
        u8 = big.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
        ours = prepare_images(u8[None], prep, device=torch.device("cpu"), dtype=torch.float32)[0]
        theirs = reference(Image.fromarray(u8))
        assert ours.shape == theirs.shape == (3, 48, 48)
        # 2/255 in [0,1] units is under 0.03 after dividing by CLIP's std (about 0.27)
        assert (ours - theirs).abs().max().item() < 0.035, (height, width)


def test_preprocess_gradcheck() -> None:
    prep = ImagePreprocess.of((6, 5), interpolation="bilinear")
    x = torch.rand(1, 3, 9, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(prep, (x,))
    squash = ImagePreprocess.of(4, resize_mode="squash", interpolation="bilinear")
    assert squash(x).shape == (1, 3, 4, 4)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_gradients_reach_images(kind: str) -> None:
    scorer = BUILDERS[kind]()
    images = torch.rand(2, 3, 48, 40, requires_grad=True)
    values, _ = scorer.score_sets(images, [["a red cat", "two dogs"], ["a bird"]])
    assert values.requires_grad
    values.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert images.grad.abs().sum() > 0
    with torch.no_grad():  # no graph when grad is off, and the same values
        again, _ = scorer.score_sets(images, [["a red cat", "two dogs"], ["a bird"]])
    assert not again.requires_grad
    torch.testing.assert_close(again, values.detach())


def test_score_sets_errors(images: torch.Tensor) -> None:
    scorer = _tiny.tiny_open_clip()
    with pytest.raises(LayoutError, match=r"prompt_lists: expected one list per image \(3\), got 2"):
        scorer.score_sets(images, [["a"], ["b"]])
    with pytest.raises(LayoutError, match=r"prompt_lists\[1\]: expected at least one prompt"):
        scorer.score_sets(images, [["a"], [], ["c"]])
    with pytest.raises(ParameterError, match=r"prompt_lists: expected a list of prompt lists, got str"):
        scorer.score_sets(images, "a cat")
    with pytest.raises(ParameterError, match=r"prompt_lists\[0\]: expected strings only, got int"):
        scorer.score_sets(images, [[1], ["b"], ["c"]])
    with pytest.raises(ParameterError, match=r"texts: expected a list of strings, got str"):
        scorer.score(images, "a cat")
    with pytest.raises(LayoutError, match=r"texts: expected at least one text"):
        scorer.encode_text([])


IMAGE_ERRORS = [
    (torch.rand(3, 32, 32), LayoutError, r"images: expected a batch of shape \(B,H,W,3\) or \(B,3,H,W\), got shape \(3, 32, 32\)"),
    (torch.rand(2, 4, 32, 32), LayoutError, r"images: expected 3 colour channels .* got shape \(2, 4, 32, 32\)"),
    (torch.rand(0, 3, 32, 32), LayoutError, r"images: expected at least one image, got an empty batch"),
    (torch.rand(1, 3, 8, 8) * 2 - 1, ParameterError, r"images: expected float values in \[0, 1\], got values in \[-"),
    (torch.ones(1, 3, 8, 8, dtype=torch.int32), ParameterError, r"images: expected uint8 or floating-point images, got dtype torch.int32"),
    (torch.rand(3, 32, 32), LayoutError, r"got shape \(3, 32, 32\) \(one image\? add a batch axis: images\[None\]\)"),
    (torch.rand(1, 3, 0, 32), LayoutError, r"images: expected images of at least 1x1 pixels, got shape \(1, 3, 0, 32\)"),
    (np.zeros((1, 8, 0, 3), np.uint8), LayoutError, r"images: expected images of at least 1x1 pixels"),
    (torch.full((2, 3, 8, 8), torch.nan), NonFiniteError, r"images: expected finite pixel values, got NaN or Inf in image 0"),
    (np.full((1, 8, 8, 3), np.inf, np.float32), NonFiniteError, r"images: expected finite pixel values"),
    (np.empty((1, 8, 8, 3), dtype=object), ParameterError, r"images: expected uint8 or floating-point images, got dtype object"),
    (np.zeros((1, 8, 8, 3), dtype="U1"), ParameterError, r"images: expected uint8 or floating-point images, got dtype <U1"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.complex64), ParameterError, r"images: expected uint8 or floating-point images"),
    ([], LayoutError, r"images: expected at least one image, got an empty list"),
    (["x.png"], ParameterError, r"images\[0\]: expected a PIL image in a list, got str"),
    ("x.png", ParameterError, r"images: expected a numpy array, a torch tensor or a list of PIL images, got str"),
]


@pytest.mark.parametrize(("images", "error", "message"), IMAGE_ERRORS)
def test_bad_images_raise_textnorm_errors_naming_images(images: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        _tiny.tiny_open_clip().encode_images(images)  # type: ignore[arg-type]


def test_option_errors() -> None:
    with pytest.raises(ParameterError, match=r"max_batch_size: expected an int >= 1, got 0"):
        _tiny.tiny_open_clip(max_batch_size=0)
    with pytest.raises(ParameterError, match=r"cache_size: expected an int >= 0, got -1"):
        _tiny.tiny_open_clip(cache_size=-1)
    with pytest.raises(ParameterError, match=r"interpolation: expected 'bicubic' or 'bilinear', got 'nearest'"):
        ImagePreprocess(interpolation="nearest")
    with pytest.raises(ParameterError, match=r"resize_mode: expected 'shortest' or 'squash', got 'pad'"):
        ImagePreprocess(resize_mode="pad")
    from textnorm.scorers import CLIPScorer

    with pytest.raises(ParameterError, match=r"backend: expected 'open_clip' or 'transformers', got 'jax'"):
        CLIPScorer(_tiny._open_clip_model(), None, backend="jax", id="x", preprocess=ImagePreprocess())


def test_ids_are_stable_or_unique() -> None:
    from textnorm.scorers import CLIPScorer

    assert _tiny.tiny_open_clip().id == _tiny.tiny_open_clip().id == "open_clip:tiny:seed0"
    a = CLIPScorer.from_open_clip(_tiny._open_clip_model())
    b = CLIPScorer.from_open_clip(_tiny._open_clip_model())
    assert a.id != b.id and a.id.startswith("open_clip:unnamed-")
    seeded = CLIPScorer.from_open_clip_config(_tiny.tiny_open_clip_config(), seed=5)
    assert seeded.id == "open_clip:custom:random-seed5"
