"""Reward models behind one protocol: encode texts (cached), encode images, score matrices.

Every scorer offers ``encode_text``, ``encode_images``, ``score`` (n_images, n_texts),
``score_sets`` (image i against prompt_lists[i], CSR values and offsets), ``score_pairs``
(the raw reward), ``cache_info`` and a stable ``id``. Dual encoders (CLIP, PickScore, HPS v2,
BLIP-2 ITC) encode each image once and look texts up in an LRU cache; cross-encoders
(ImageReward, BLIP-2 ITM) encode each image once and run the joint model per pair. Subclass
`Scorer` and implement its four hooks to add a model. This package imports torch.
"""

from textnorm.scorers._load import clip_tokenizer
from textnorm.scorers.aesthetic import AestheticScorer
from textnorm.scorers.base import CacheInfo, ModelLoadError, Scorer
from textnorm.scorers.blip2 import BLIP2Scorer
from textnorm.scorers.clip import CLIPScorer
from textnorm.scorers.hpsv2 import HPSv2Scorer
from textnorm.scorers.images import ImagePreprocess
from textnorm.scorers.imagereward import ImageRewardScorer
from textnorm.scorers.pickscore import PickScoreScorer

__all__ = [
    "AestheticScorer",
    "BLIP2Scorer",
    "CLIPScorer",
    "CacheInfo",
    "HPSv2Scorer",
    "ImagePreprocess",
    "ImageRewardScorer",
    "ModelLoadError",
    "PickScoreScorer",
    "Scorer",
    "clip_tokenizer",
]
