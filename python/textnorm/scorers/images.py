"""Image batches in, model pixels out: resize, center crop and normalise in torch.

Everything runs on the images' device (numpy and PIL inputs go straight to the model's device)
with differentiable torch ops, so a reward stays differentiable with respect to generated
images (DRaFT / AlignProp-style fine-tuning). Bicubic resizing is antialiased and clamped to
[0, 1], like PIL's resize of 8-bit images that the reference preprocessing uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F

from textnorm._core import LayoutError, NonFiniteError, ParameterError

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ImagePreprocess",
    "Images",
    "batch_shape_message",
    "prepare_images",
    "to_unit_batch",
]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: uint8 (B,H,W,3) array or tensor, float (B,3,H,W) or (B,H,W,3) in [0, 1], or a list of PIL images.
Images = Union[np.ndarray, torch.Tensor, Sequence[Any]]

_RANGE_SLACK = 1e-3


@dataclass(frozen=True)
class ImagePreprocess:
    """What a model expects: output size, normalisation and how to fit other sizes.

    Attributes:
        size: (height, width) of the model's input.
        mean: per-channel mean subtracted after scaling to [0, 1].
        std: per-channel std divided by.
        interpolation: "bicubic" or "bilinear".
        resize_mode: "shortest" (shorter side to size, then center crop; CLIP) or "squash"
            (resize both sides to size; BLIP).
    """

    size: tuple[int, int] = (224, 224)
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"

    def __post_init__(self) -> None:
        if self.interpolation not in ("bicubic", "bilinear"):
            raise ParameterError(
                f"interpolation: expected 'bicubic' or 'bilinear', got {self.interpolation!r}"
            )
        if self.resize_mode not in ("shortest", "squash"):
            raise ParameterError(
                f"resize_mode: expected 'shortest' or 'squash', got {self.resize_mode!r}"
            )

    @classmethod
    def of(cls, size: int | Sequence[int], **kwargs: Any) -> ImagePreprocess:
        """Build from an int or (h, w) size plus the other fields."""
        pair = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[-1]))
        kwargs = {k: tuple(v) if k in ("mean", "std") else v for k, v in kwargs.items()}
        return cls(size=pair, **kwargs)

    def __call__(self, unit: torch.Tensor) -> torch.Tensor:
        """Float (B,3,H,W) in [0, 1] -> normalised (B,3,h,w) at the model's size."""
        height, width = unit.shape[-2:]
        target_h, target_w = self.size
        if (height, width) != (target_h, target_w):
            if self.resize_mode == "squash":
                new_h, new_w = target_h, target_w
            else:
                scale = max(target_h / height, target_w / width)
                new_h = max(target_h, int(height * scale))
                new_w = max(target_w, int(width * scale))
            unit = F.interpolate(
                unit, size=(new_h, new_w), mode=self.interpolation, align_corners=False, antialias=True
            )
            if self.interpolation == "bicubic":
                unit = unit.clamp(0.0, 1.0)  # bicubic overshoots; PIL clamps 8-bit output
            top = int(round((new_h - target_h) / 2.0))
            left = int(round((new_w - target_w) / 2.0))
            unit = unit[..., top : top + target_h, left : left + target_w]
        mean = torch.tensor(self.mean, dtype=unit.dtype, device=unit.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=unit.dtype, device=unit.device).view(1, -1, 1, 1)
        return (unit - mean) / std


def batch_shape_message(shape: tuple[int, ...], name: str = "images") -> str:
    """The error for an image array that is not 4-D, with a hint for one unbatched image."""
    hint = " (one image? add a batch axis: images[None])" if len(shape) == 3 else ""
    return f"{name}: expected a batch of shape (B,H,W,3) or (B,3,H,W), got shape {shape}{hint}"


def _from_array(images: torch.Tensor, name: str) -> torch.Tensor:
    if images.ndim != 4:
        raise LayoutError(batch_shape_message(tuple(images.shape), name))
    if images.shape[0] == 0:
        raise LayoutError(f"{name}: expected at least one image, got an empty batch")
    if 0 in images.shape[1:]:
        raise LayoutError(f"{name}: expected images of at least 1x1 pixels, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        channels_last = images.shape[-1] == 3
        unit = images.to(torch.float32) / 255.0
    elif images.is_floating_point():
        channels_last = images.shape[1] != 3 and images.shape[-1] == 3
        unit = images if images.dtype in (torch.float32, torch.float64) else images.float()
        low, high = torch.aminmax(unit.detach())  # NaN anywhere makes both NaN, Inf shows as ±inf
        if not (math.isfinite(low.item()) and math.isfinite(high.item())):
            finite = torch.isfinite(unit.detach()).flatten(1).all(dim=1)
            b = int((~finite).nonzero()[0, 0])
            raise NonFiniteError(f"{name}: expected finite pixel values, got NaN or Inf in image {b}")
        if low.item() < -_RANGE_SLACK or high.item() > 1.0 + _RANGE_SLACK:
            raise ParameterError(
                f"{name}: expected float values in [0, 1], got values in "
                f"[{low.item():.3g}, {high.item():.3g}] (map [-1, 1] outputs with x / 2 + 0.5)"
            )
    else:
        raise ParameterError(f"{name}: expected uint8 or floating-point images, got dtype {images.dtype}")
    if channels_last:
        unit = unit.permute(0, 3, 1, 2)
    if unit.shape[1] != 3:
        raise LayoutError(
            f"{name}: expected 3 colour channels in (B,H,W,3) or (B,3,H,W), got shape {tuple(images.shape)}"
        )
    return unit


def to_unit_batch(
    images: Images, *, device: torch.device | None = None, name: str = "images"
) -> list[torch.Tensor]:
    """Float (B,3,H,W) batches in [0, 1]: one for an array, one per image for a PIL list.

    Tensors stay on their device; numpy arrays and PIL images go to `device`.
    """
    if isinstance(images, torch.Tensor):
        return [_from_array(images, name)]
    if isinstance(images, np.ndarray):
        if images.dtype.kind not in "biuf":
            raise ParameterError(f"{name}: expected uint8 or floating-point images, got dtype {images.dtype}")
        # torch takes native byte order only; big-endian input is converted, not refused
        array = np.ascontiguousarray(images, dtype=images.dtype.newbyteorder("="))
        array = array if array.flags.writeable else array.copy()  # torch refuses read-only memory
        return [_from_array(torch.from_numpy(array).to(device), name)]
    if isinstance(images, (list, tuple)):
        if not images:
            raise LayoutError(f"{name}: expected at least one image, got an empty list")
        out = []
        for i, image in enumerate(images):
            if not hasattr(image, "convert") or not hasattr(image, "size"):
                raise ParameterError(
                    f"{name}[{i}]: expected a PIL image in a list, got {type(image).__name__}"
                )
            array = np.array(image.convert("RGB"), dtype=np.uint8)[None]
            out.append(_from_array(torch.from_numpy(array).to(device), f"{name}[{i}]"))
        return out
    raise ParameterError(
        f"{name}: expected a numpy array, a torch tensor or a list of PIL images, got {type(images).__name__}"
    )


def prepare_images(
    images: Images, preprocess: ImagePreprocess, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Model-ready pixels on `device` in `dtype`, differentiable w.r.t. float tensor inputs."""
    parts = [preprocess(unit) for unit in to_unit_batch(images, device=device)]
    pixels = parts[0] if len(parts) == 1 else torch.cat([p.to(device) for p in parts])
    return pixels.to(device=device, dtype=dtype)
