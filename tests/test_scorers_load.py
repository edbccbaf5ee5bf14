"""Loading reward models by hub id or local path: real loading code on tiny saved models, and
one clear ModelLoadError naming the model and the id or path tried when loading fails
(tests run with HF_HUB_OFFLINE=1, so hub ids cannot resolve)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from textnorm import ParameterError, TextnormError  # noqa: E402
from textnorm.scorers import (  # noqa: E402
    AestheticScorer,
    BLIP2Scorer,
    CLIPScorer,
    HPSv2Scorer,
    ImageRewardScorer,
    ModelLoadError,
    PickScoreScorer,
    _tiny,
    clip_tokenizer,
)
from textnorm.scorers._load import check_tokenizer  # noqa: E402
from textnorm.scorers.aesthetic import aesthetic_head  # noqa: E402

torch.set_num_threads(1)
FAKE_ID = "textnorm-tests/no-such-model"


def test_hub_offline() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_clip_tokenizer_from_open_clip_vocabulary() -> None:
    tok = clip_tokenizer()
    assert len(tok) == 49408
    assert tok("a cat").input_ids == [49406, 320, 2368, 49407]
    reference = open_clip.tokenizer.SimpleTokenizer()
    for text in ["A photo of 3 Dogs, jumping!", "two red cubes left of a blue sphere"]:
        ids = tok(text).input_ids
        assert reference([text])[0][: len(ids)].tolist() == ids


def test_broken_tokenizer_is_refused() -> None:
    class Broken:  # what transformers 5 returns offline for a CLIP hub id
        unk_token_id = 2
        all_special_ids = [0, 1]

        def __call__(self, text: str) -> dict[str, list[int]]:
            return {"input_ids": [0, 2, 2, 2, 2, 2]}

    with pytest.raises(ModelLoadError, match=r"M: the tokenizer loaded from 'src' is broken \(it maps 'a cat' to \[0, 2, 2, 2, 2, 2\]\)"):
        check_tokenizer(Broken(), "M", "src")
    assert check_tokenizer(clip_tokenizer(), "M", "src") is not None


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A tiny open_clip architecture registered under a name, and a checkpoint of it."""
    folder = tmp_path_factory.mktemp("open_clip_cfg")
    name = "textnorm-tiny-test"
    (folder / f"{name}.json").write_text(json.dumps(_tiny.tiny_open_clip_config()))
    open_clip.add_model_config(folder)
    checkpoint = folder / "tiny.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _tiny._open_clip_model().state_dict().items()}}, checkpoint)
    return name, checkpoint


def test_open_clip_checkpoint_file_loads(tiny_arch: tuple[str, Path]) -> None:
    name, checkpoint = tiny_arch
    images = torch.rand(2, 3, 32, 32)
    expected = _tiny.tiny_open_clip().score(images, ["a cat", "two dogs"])
    plain = checkpoint.with_name("plain.pt")
    torch.save(_tiny._open_clip_model().state_dict(), plain)
    scorer = CLIPScorer.from_pretrained(name, pretrained=str(plain))
    assert scorer.id == f"open_clip:{name}:{plain.resolve()}"
    torch.testing.assert_close(scorer.score(images, ["a cat", "two dogs"]), expected)
    hps = HPSv2Scorer.from_pretrained(str(checkpoint), architecture=name)  # HPS's state_dict/module. layout
    cosine = expected / _tiny.tiny_open_clip().logit_scale
    torch.testing.assert_close(hps.score(images, ["a cat", "two dogs"]), cosine)
    assert hps.id == f"hpsv2:{name}:{checkpoint.resolve()}"


def test_transformers_clip_local_folder(tmp_path: Path) -> None:
    model, tokenizer = _tiny._transformers_clip()
    model.save_pretrained(tmp_path / "weights")
    images = torch.rand(2, 3, 32, 32)
    expected = _tiny.tiny_transformers_clip().score(images, ["a cat"])
    # weights without tokenizer files: transformers cannot build a tokenizer
    with pytest.raises(ModelLoadError, match=r"CLIPScorer\(.*weights\)"):
        CLIPScorer.from_pretrained(str(tmp_path / "weights"))
    tokenizer.save_pretrained(tmp_path / "weights")
    scorer = CLIPScorer.from_pretrained(str(tmp_path / "weights"))
    torch.testing.assert_close(scorer.score(images, ["a cat"]), expected)
    pick = PickScoreScorer.from_pretrained(str(tmp_path / "weights"))
    torch.testing.assert_close(pick.score(images, ["a cat"]), expected)


def test_blip2_local_folder(tmp_path: Path) -> None:
    _tiny.tiny_blip2().model.save_pretrained(tmp_path)
    _tiny.tiny_bert_tokenizer().save_pretrained(tmp_path)
    images = torch.rand(2, 3, 32, 32)
    scorer = BLIP2Scorer.from_pretrained(str(tmp_path))
    torch.testing.assert_close(scorer.score(images, ["a cat"]), _tiny.tiny_blip2().score(images, ["a cat"]))


@pytest.mark.parametrize(
    ("load", "label"),
    [
        (lambda: CLIPScorer.from_pretrained(FAKE_ID), r"CLIPScorer\(textnorm-tests/no-such-model\)"),
        (lambda: PickScoreScorer.from_pretrained(FAKE_ID), r"PickScoreScorer\(textnorm-tests/no-such-model\)"),
        (lambda: BLIP2Scorer.from_pretrained(FAKE_ID), r"BLIP2Scorer\(textnorm-tests/no-such-model\)"),
    ],
)
def test_hub_id_offline_names_model_and_id(load, label: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelLoadError, match=label + r": could not load hub id 'textnorm-tests/no-such-model' \(HF_HUB_OFFLINE=1"):
        load()


def test_default_hub_weights_offline() -> None:
    with pytest.raises(ModelLoadError, match=r"PickScoreScorer\(yuvalkirstain/PickScore_v1\): could not load hub id 'yuvalkirstain/PickScore_v1'"):
        PickScoreScorer.from_pretrained()
    with pytest.raises(ModelLoadError, match=r"HPSv2Scorer\(ViT-H-14\): could not load hub id 'xswu/HPSv2/HPS_v2.1_compressed.pt'"):
        HPSv2Scorer.from_pretrained()
    with pytest.raises(ModelLoadError, match=r"CLIPScorer\(ViT-B-32\): could not load open_clip pretrained tag 'laion2b_s34b_b79k' \(HF_HUB_OFFLINE=1"):
        CLIPScorer.from_pretrained("ViT-B-32", pretrained="laion2b_s34b_b79k")


def test_missing_local_paths_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "here"
    cases = [
        (lambda: CLIPScorer.from_pretrained(str(missing)), "CLIPScorer"),
        (lambda: CLIPScorer.from_pretrained("ViT-B-32", pretrained=str(missing) + ".pt"), "CLIPScorer"),
        (lambda: HPSv2Scorer.from_pretrained(str(missing) + ".pt"), "HPSv2Scorer"),
        (lambda: BLIP2Scorer.from_pretrained(str(missing)), "BLIP2Scorer"),
        (lambda: AestheticScorer.from_pretrained(str(missing) + ".pth", clip=_tiny.tiny_open_clip()), "AestheticScorer"),
    ]
    for load, label in cases:
        with pytest.raises(ModelLoadError, match=rf"{label}.*: weights not found at local path '{missing}"):
            load()


def test_load_errors_are_textnorm_errors() -> None:
    assert issubclass(ModelLoadError, TextnormError)


def test_imagereward_without_package_says_how_to_get_it() -> None:
    try:
        import ImageReward  # noqa: F401
    except ImportError:
        with pytest.raises(ModelLoadError, match=r"needs the image-reward package.*pip install image-reward==1.5.*tried to load 'ImageReward-v1.0'"):
            ImageRewardScorer.from_pretrained()
    else:
        pytest.skip("image-reward is installed")


def test_option_errors_when_loading() -> None:
    with pytest.raises(ParameterError, match=r"pretrained: expected a pretrained tag or checkpoint path for open_clip architecture 'ViT-B-32', got None"):
        CLIPScorer.from_pretrained("ViT-B-32")
    with pytest.raises(ParameterError, match=r"version: expected one of \['v2', 'v2.1'\], got 'v3'"):
        HPSv2Scorer.from_pretrained(version="v3")
    with pytest.raises(ParameterError, match=r"dtype: expected float32, float16 or bfloat16, got torch.int8"):
        CLIPScorer.from_pretrained("ViT-B-32", pretrained="openai", dtype=torch.int8)
    from transformers import Blip2Config

    config = _tiny.tiny_blip2_config()
    config.qformer_config.use_qformer_text_input = False
    assert isinstance(config, Blip2Config)
    with pytest.raises(ParameterError, match=r"config: expected qformer_config.use_qformer_text_input=True"):
        BLIP2Scorer.from_config(config, _tiny.tiny_bert_tokenizer())


def test_aesthetic_head_loads_from_file(tmp_path: Path) -> None:
    clip = _tiny.tiny_open_clip()
    torch.manual_seed(0)
    head = aesthetic_head(32)
    torch.save(head.state_dict(), tmp_path / "head.pth")
    scorer = AestheticScorer.from_pretrained(str(tmp_path / "head.pth"), clip=clip)
    images = torch.rand(2, 3, 32, 32)
    emb = torch.nn.functional.normalize(clip.encode_images(images), dim=-1)
    torch.testing.assert_close(scorer.score_pairs(images, ["a", "b"]), head.eval()(emb).squeeze(-1))
