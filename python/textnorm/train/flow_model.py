"""The flow-matching adapter: :class:`T2IModel` over a diffusers ``StableDiffusion3Pipeline``.

Stable Diffusion 3 (and 3.5) is a rectified-flow model: its denoiser is a transformer
(``SD3Transformer2DModel``) that predicts the velocity ``eps - x_0``, its scheduler is a
``FlowMatchEulerDiscreteScheduler``, and its prompt goes through three text encoders (two CLIP
models and T5; T5 may be absent) into a token sequence plus a pooled vector. The adapter maps that
onto the trainers' interface without changing them:

* ``sampler``: Flow-GRPO's SDE sampler (:data:`textnorm.train.flow_sde.FLOW_SDE`), which the
  trainers use instead of DDIM (``textnorm.train.sampling.sampler_for``).
* :meth:`~FlowMatchingModel.predict_noise` returns the velocity (the network output, as the name's
  DDIM counterpart returns epsilon or v).
* :meth:`~FlowMatchingModel.encode_prompts` returns one tensor per prompt, as the trainers expect:
  the pipeline's token embeddings followed by the pooled embedding, zero-padded into
  ``ceil(pooled_dim / token_dim)`` extra tokens. :meth:`~FlowMatchingModel.split_conditioning`
  undoes it. Concatenating, indexing and moving such tensors works as for any conditioning.
* LoRA goes into the transformer through peft, with the helpers of :mod:`textnorm.train.model`.

FLUX (``FluxPipeline``) is not covered: it packs latents into 2x2 patches with image ids, replaces
classifier-free guidance by a guidance embedding and encodes prompts differently; each of those
would be a special case here, so it needs an adapter of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from textnorm._core import ParameterError
from textnorm.train.flow_sde import FLOW_SDE
from textnorm.train.model import DenoiserLoRA

#: diffusers pipeline classes this adapter loads.
FLOW_PIPELINES = ("StableDiffusion3Pipeline",)

#: T5 tokens per prompt when the tokenizer allows that many (the SD3 pipeline's default).
DEFAULT_MAX_SEQUENCE_LENGTH = 256


def _location(path: str) -> tuple[str, bool]:
    """``(path to pass to diffusers, whether it names a local folder)``."""
    local = Path(path).expanduser()
    looks_local = local.exists() or path.startswith((".", "/", "~")) or path.count("/") > 1
    return (str(local) if looks_local else path), looks_local


def _model_index(path: str, *, revision: str | None = None) -> dict[str, Any] | None:
    """``path``'s ``model_index.json`` (local folder, local hub cache or, when online, the hub);
    ``None`` when it cannot be read."""
    from diffusers import DiffusionPipeline

    where, looks_local = _location(path)
    if looks_local and not (Path(where) / "model_index.json").is_file():
        return None
    try:
        config = DiffusionPipeline.load_config(where, revision=revision)
    except (OSError, ValueError):
        return None
    return dict(config) if isinstance(config, dict) else None


def pipeline_class_name(path: str, *, revision: str | None = None) -> str | None:
    """The pipeline class named in ``path``'s ``model_index.json``; ``None`` when unreadable."""
    index = _model_index(path, revision=revision)
    name = index.get("_class_name") if index else None
    return str(name) if name else None


def is_flow_pipeline(path: str, *, revision: str | None = None) -> bool:
    """Whether ``path`` holds a pipeline that :class:`FlowMatchingModel` loads."""
    return pipeline_class_name(path, revision=revision) in FLOW_PIPELINES


class FlowMatchingModel(DenoiserLoRA):
    """:class:`~textnorm.train.model.T2IModel` over a diffusers ``StableDiffusion3Pipeline``.

    Args:
        pipe: a loaded pipeline; its text encoders and VAE are frozen.
        resolution: image side in pixels; default: the transformer's sample size times the VAE
            factor (the pipeline's default).
        max_sequence_length: T5 tokens per prompt; default: 256 (the pipeline's default) or the T5
            tokenizer's maximum length when that is shorter.
    """

    sampler = FLOW_SDE

    def __init__(self, pipe: Any, *, resolution: int | None = None,
                 max_sequence_length: int | None = None) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

        if not isinstance(pipe, StableDiffusion3Pipeline):
            raise ParameterError(f"pipeline: expected a diffusers StableDiffusion3Pipeline, received "
                                 f"{type(pipe).__name__}")
        pipeline: Any = pipe
        self.pipeline = pipeline
        self.denoiser: nn.Module = pipeline.transformer
        self.text_encoders: list[nn.Module] = [
            enc.requires_grad_(False).eval()
            for enc in (pipeline.text_encoder, pipeline.text_encoder_2, pipeline.text_encoder_3)
            if enc is not None]
        self.vae = pipeline.vae.requires_grad_(False).eval()
        self.scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipeline.scheduler.config)
        cfg = self.denoiser.config
        self.patch_size = int(cfg.patch_size)
        self.token_dim = int(cfg.joint_attention_dim)
        self.pooled_dim = int(cfg.pooled_projection_dim)
        self.pooled_tokens = math.ceil(self.pooled_dim / self.token_dim)
        factor = int(pipeline.vae_scale_factor)
        side = resolution or int(cfg.sample_size) * factor
        if side <= 0 or side % (factor * self.patch_size):
            raise ParameterError(f"model.resolution: expected a positive multiple of the VAE factor "
                                 f"times the patch size ({factor * self.patch_size}), received {side}")
        self.latent_shape: tuple[int, ...] = (int(cfg.in_channels), side // factor, side // factor)
        if max_sequence_length is None:
            t5_max = getattr(pipeline.tokenizer_3, "model_max_length", None)
            limit = int(t5_max) if t5_max and t5_max < 10**6 else DEFAULT_MAX_SEQUENCE_LENGTH
            max_sequence_length = min(DEFAULT_MAX_SEQUENCE_LENGTH, limit)
        if max_sequence_length < 1:
            raise ParameterError(f"max_sequence_length: expected a positive token count, received "
                                 f"{max_sequence_length}")
        self.max_sequence_length = int(max_sequence_length)
        self._null: torch.Tensor | None = None

    @classmethod
    def from_pretrained(cls, path: str, *, revision: str | None = None,
                        resolution: int | None = None, torch_dtype: torch.dtype = torch.float32,
                        max_sequence_length: int | None = None, drop_t5: bool = False,
                        ) -> FlowMatchingModel:
        """Load a ``StableDiffusion3Pipeline`` by hub id or local folder.

        Without T5 (``drop_t5``, or a folder saved without it) the T5 part of the conditioning
        is zeros, as in diffusers.

        Raises:
            ParameterError: the folder is not a pipeline folder, or the pipeline cannot be loaded
                (for a hub id while offline: not in the local cache), with the reason.
        """
        import os

        from diffusers import StableDiffusion3Pipeline

        where, looks_local = _location(path)
        if looks_local and not (Path(where) / "model_index.json").is_file():
            raise ParameterError(
                f"model.path: expected a diffusers pipeline folder (with model_index.json) or a "
                f"hub id, received {path!r}, which is not a pipeline folder")
        index = _model_index(path, revision=revision) or {}
        optional: dict[str, Any] = {}
        if drop_t5 or (index and index.get("text_encoder_3", [None])[0] is None):
            optional = {"text_encoder_3": None, "tokenizer_3": None}
        try:
            pipe = StableDiffusion3Pipeline.from_pretrained(where, revision=revision, dtype=torch_dtype,
                                                            **optional)
        except (OSError, ValueError) as err:
            offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
            hint = (" (HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache: "
                    "download it once online, or pass a local folder)"
                    if offline and not looks_local else "")
            raise ParameterError(
                f"model.path: expected a loadable Stable Diffusion 3 pipeline (hub id or local "
                f"folder), received {path!r}{hint}; loading failed: {err}") from err
        return cls(pipe, resolution=resolution, max_sequence_length=max_sequence_length)

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> FlowMatchingModel:
        """Move every component (the frozen parts may take a lower-precision ``dtype``)."""
        self.denoiser.to(device)
        for enc in self.text_encoders:
            enc.to(device=device, dtype=dtype)
        self.vae.to(device=device, dtype=dtype)
        self._null = None
        return self

    # ---- conditioning ---------------------------------------------------------------------------

    def pack_conditioning(self, tokens: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """One tensor (B, L + pooled_tokens, token_dim) from token and pooled embeddings."""
        if tokens.ndim != 3 or tokens.shape[-1] != self.token_dim or pooled.shape != (tokens.shape[0], self.pooled_dim):
            raise ParameterError(
                f"conditioning: expected tokens (B, L, {self.token_dim}) and pooled (B, "
                f"{self.pooled_dim}), received {tuple(tokens.shape)} and {tuple(pooled.shape)}")
        pad = self.pooled_tokens * self.token_dim - self.pooled_dim
        extra = nn.functional.pad(pooled, (0, pad)).reshape(pooled.shape[0], self.pooled_tokens, self.token_dim)
        return torch.cat([tokens, extra.to(tokens)], dim=1)

    def split_conditioning(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Undo :meth:`pack_conditioning`: ``(tokens (B, L, D), pooled (B, P))``."""
        k = self.pooled_tokens
        if cond.ndim != 3 or cond.shape[1] <= k or cond.shape[-1] != self.token_dim:
            raise ParameterError(f"cond: expected packed conditioning (B, L + {k}, {self.token_dim}), "
                                 f"received {tuple(cond.shape)}")
        pooled = cond[:, -k:].reshape(cond.shape[0], -1)[:, :self.pooled_dim]
        return cond[:, :-k], pooled

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """The pipeline's own prompt encoding (every text encoder), packed into one tensor."""
        tokens, _, pooled, _ = self.pipeline.encode_prompt(
            prompt=list(prompts), prompt_2=None, prompt_3=None, device=self.device,
            do_classifier_free_guidance=False, max_sequence_length=self.max_sequence_length)
        return self.pack_conditioning(tokens.float(), pooled.float())

    def null_embedding(self, batch: int) -> torch.Tensor:
        """The empty prompt's conditioning (the pipeline's default negative prompt)."""
        if self._null is None:
            self._null = self.encode_prompts([""])
        return self._null.expand(batch, *self._null.shape[1:])

    # ---- denoiser and decoder -------------------------------------------------------------------

    def predict_noise(self, net: nn.Module, latents: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor) -> torch.Tensor:
        """The velocity ``eps - x_0`` at scheduler ``timesteps`` (``sigma * num_train_timesteps``)."""
        tokens, pooled = self.split_conditioning(cond)
        return net(hidden_states=latents, timestep=timesteps, encoder_hidden_states=tokens,
                   pooled_projections=pooled, return_dict=False)[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1], as the pipeline decodes (scaling and shift factors)."""
        vae_dtype = next(self.vae.parameters()).dtype
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        z = latents / self.vae.config.scaling_factor + shift
        images = self.vae.decode(z.to(vae_dtype)).sample
        return (images.float() / 2 + 0.5).clamp(0, 1)

    def enable_gradient_checkpointing(self) -> None:
        getattr(self.denoiser, "enable_gradient_checkpointing")()
