"""The generator as the trainers see it: a small interface, and its Stable Diffusion adapter.

Every algorithm in ``textnorm.train`` talks to a :class:`T2IModel` only: prompt encoding (with the
unconditional embedding for classifier-free guidance), the trainable denoiser, a DDIM scheduler,
a differentiable decoder from latents to images in [0, 1], the latent shape, and LoRA helpers.
Stable Diffusion implements it in :class:`StableDiffusionModel`; any other latent diffusion model
(for instance one over a compact scene latent decoded by a renderer) implements the same methods
and runs through the same trainers without special cases.

The LoRA helpers at the bottom work on any ``torch.nn.Module`` through peft, so a second adapter
can reuse them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from textnorm._core import ParameterError


@runtime_checkable
class T2IModel(Protocol):
    """What the trainers need from a text-to-image latent diffusion model.

    Attributes:
        denoiser: the trainable network (LoRA adapters are injected into it). The trainers may
            wrap it (``accelerate`` DDP) and pass the wrapper back to :meth:`predict_noise`.
        scheduler: a diffusers ``DDIMScheduler`` (its ``alphas_cumprod``, ``final_alpha_cumprod``,
            ``set_timesteps``, ``add_noise``, ``config.prediction_type``, ``config.num_train_timesteps``).
        latent_shape: shape of one latent, without the batch dimension.
        device: where the model lives.
    """

    denoiser: nn.Module
    scheduler: Any
    latent_shape: tuple[int, ...]

    @property
    def device(self) -> torch.device:
        """Where the denoiser lives."""
        ...

    def to(self, device: torch.device | str) -> Any:
        """Move every component to ``device``."""
        ...

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Conditioning for each prompt, batch first; no gradient needed."""
        ...

    def null_embedding(self, batch: int) -> torch.Tensor:
        """Unconditional conditioning (the empty prompt) repeated ``batch`` times."""
        ...

    def predict_noise(self, net: nn.Module, latents: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor) -> torch.Tensor:
        """The network output (epsilon or v, per ``scheduler.config.prediction_type``).

        ``net`` is ``denoiser`` or a wrapper of it; ``timesteps`` has one entry per sample.
        """
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1]; differentiable with respect to ``latents``."""
        ...

    def add_lora(self, *, rank: int, alpha: float, targets: Sequence[str]) -> None:
        """Inject LoRA adapters into the denoiser; only they stay trainable (B = 0 at start)."""
        ...

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA weights in peft's key format."""
        ...

    def load_lora_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights saved by :meth:`lora_state_dict`."""
        ...

    def adapters_disabled(self) -> contextlib.AbstractContextManager[None]:
        """Context in which the denoiser behaves as the frozen base model."""
        ...

    def merge_lora(self) -> None:
        """Fold the adapters into the base weights (faster sampling)."""
        ...

    def unmerge_lora(self) -> None:
        """Undo :meth:`merge_lora`."""
        ...


class DenoiserLoRA:
    """The LoRA part of :class:`T2IModel` for any model whose trainable network is
    ``self.denoiser`` (peft adapters on that module)."""

    denoiser: nn.Module

    def add_lora(self, *, rank: int, alpha: float, targets: Sequence[str]) -> None:
        add_lora(self.denoiser, rank=rank, alpha=alpha, targets=targets)

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        return lora_state_dict(self.denoiser)

    def load_lora_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_lora_state_dict(self.denoiser, state)

    def adapters_disabled(self) -> contextlib.AbstractContextManager[None]:
        return adapters_disabled(self.denoiser)

    def merge_lora(self) -> None:
        merge_lora(self.denoiser)

    def unmerge_lora(self) -> None:
        unmerge_lora(self.denoiser)


class StableDiffusionModel(DenoiserLoRA):
    """:class:`T2IModel` over a diffusers ``StableDiffusionPipeline`` (1.x and 2.x).

    Args:
        pipeline: a loaded pipeline; its text encoder and VAE are frozen.
        resolution: image side in pixels; default: the UNet's sample size times the VAE factor.
    """

    def __init__(self, pipeline: Any, *, resolution: int | None = None) -> None:
        from diffusers import DDIMScheduler

        self.pipeline = pipeline
        self.denoiser: nn.Module = pipeline.unet
        self.text_encoder = pipeline.text_encoder.requires_grad_(False).eval()
        self.vae = pipeline.vae.requires_grad_(False).eval()
        self.tokenizer = pipeline.tokenizer
        self.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        side = resolution or self.denoiser.config.sample_size * factor
        if side % factor:
            raise ParameterError(
                f"model.resolution: expected a multiple of the VAE factor {factor}, received {side}")
        self.latent_shape: tuple[int, ...] = (self.denoiser.config.in_channels, side // factor,
                                              side // factor)
        self._null: torch.Tensor | None = None

    @classmethod
    def from_pretrained(cls, path: str, *, revision: str | None = None,
                        resolution: int | None = None,
                        torch_dtype: torch.dtype = torch.float32) -> StableDiffusionModel:
        """Load by hub id or local folder; a clear ParameterError when it cannot be found."""
        from diffusers import StableDiffusionPipeline

        local = Path(path).expanduser()
        looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") > 1
        if looks_local and not (local / "model_index.json").is_file():
            raise ParameterError(
                f"model.path: expected a diffusers pipeline folder (with model_index.json) or a "
                f"hub id, received {path!r}, which is not a pipeline folder")
        try:
            pipe = StableDiffusionPipeline.from_pretrained(
                str(local) if looks_local else path, revision=revision, dtype=torch_dtype,
                safety_checker=None, requires_safety_checker=False)
        except (OSError, ValueError, EnvironmentError) as err:
            raise ParameterError(
                f"model.path: expected a loadable Stable Diffusion pipeline (hub id or local "
                f"folder), received {path!r}; loading failed: {err}") from err
        return cls(pipe, resolution=resolution)

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> StableDiffusionModel:
        """Move every component (the frozen parts may take a lower-precision ``dtype``)."""
        self.denoiser.to(device)
        kwargs = {} if dtype is None else {"dtype": dtype}
        self.text_encoder.to(device, **kwargs)
        self.vae.to(device, **kwargs)
        self._null = None
        return self

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length,
                             return_tensors="pt").input_ids.to(self.device)
        return self.text_encoder(ids)[0].float()

    def null_embedding(self, batch: int) -> torch.Tensor:
        if self._null is None:
            self._null = self.encode_prompts([""])
        return self._null.expand(batch, *self._null.shape[1:])

    def predict_noise(self, net: nn.Module, latents: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor) -> torch.Tensor:
        return net(latents, timesteps, encoder_hidden_states=cond).sample

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae_dtype = next(self.vae.parameters()).dtype
        images = self.vae.decode(latents.to(vae_dtype) / self.vae.config.scaling_factor).sample
        return (images.float() / 2 + 0.5).clamp(0, 1)

    def enable_gradient_checkpointing(self) -> None:
        getattr(self.denoiser, "enable_gradient_checkpointing")()



# ---- LoRA helpers for any nn.Module (peft) -----------------------------------------------------

def add_lora(module: nn.Module, *, rank: int, alpha: float, targets: Sequence[str]) -> None:
    """Inject peft LoRA layers into ``module``'s ``targets``; freeze everything else.

    peft initialises B to zero, so the adapted module equals the base one until the first update.
    """
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha,  # type: ignore[arg-type]  # floats work
                         target_modules=list(targets), init_lora_weights=True)
    try:
        inject_adapter_in_model(config, module)
    except ValueError as err:
        raise ParameterError(
            f"model.lora_targets: expected module names present in the denoiser, received "
            f"{list(targets)}: {err}") from err
    for name, param in module.named_parameters():
        param.requires_grad_("lora_" in name)


def _tuner_layers(module: nn.Module) -> Iterator[Any]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    for sub in module.modules():
        if isinstance(sub, BaseTunerLayer):
            yield sub


def lora_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA weights of ``module`` (peft keys, detached CPU copies)."""
    from peft.utils import get_peft_model_state_dict

    state = get_peft_model_state_dict(module)
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def load_lora_state_dict(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load LoRA weights saved by :func:`lora_state_dict`; every key must match."""
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(module, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ParameterError(f"lora state: expected keys of this denoiser's adapters, received "
                             f"{len(unexpected)} unknown keys such as {unexpected[0]!r}")


@contextlib.contextmanager
def adapters_disabled(module: nn.Module) -> Iterator[None]:
    """Run ``module`` as its frozen base model inside the context."""
    layers = list(_tuner_layers(module))
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def merge_lora(module: nn.Module) -> None:
    """Fold adapters into the base weights (undo with :func:`unmerge_lora`)."""
    for layer in _tuner_layers(module):
        layer.merge()


def unmerge_lora(module: nn.Module) -> None:
    """Undo :func:`merge_lora`."""
    for layer in _tuner_layers(module):
        if layer.merged:
            layer.unmerge()
