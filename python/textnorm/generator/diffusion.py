"""The world's text-to-image generator as a `textnorm.train.T2IModel`: scene-latent diffusion.

Stable Diffusion denoises a VAE latent and decodes it with the VAE; this model denoises a compact
scene latent (object slots, see `textnorm.generator.model`) and decodes it with the
world's renderer (`textnorm.generator.render`). Prompt encoder, denoiser and a diffusers
``DDIMScheduler`` (cosine schedule, epsilon prediction) complete the interface, so best-of-n, SFT,
DDPO and DRaFT run on it through the same trainers as on Stable Diffusion.

Why not pixels: a pixel-space diffusion UNet trained for 35 CPU-minutes here (and minutes on a
GPU) still drew blobs the judge rejected; the scene latent trains in a few CPU minutes, and its
decoder draws clean images the judge reads exactly, so its mistakes are about content (counts,
bindings, positions), the mistakes that reward models are blind to.

>>> model = load_generator()  # the shipped weights
>>> model.latent_shape
(4, 19)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from textnorm._core import ParameterError
from textnorm.generator.model import GeneratorConfig, PromptEncoder, SlotDenoiser
from textnorm.generator.render import decode as render_decode
from textnorm.train.model import DenoiserLoRA
from textnorm.world.render import SLOT_DIM

__all__ = ["SceneDiffusionModel", "load_generator", "make_scheduler", "save_generator"]

FINAL_ALPHA = 0.999
FIRST_T, LAST_T = 975, 25
WEIGHTS = "generator.safetensors"
CONFIG = "generator.json"


def make_scheduler(num_train_timesteps: int = 1000) -> Any:
    """The DDIM scheduler of the generator (cosine betas, epsilon, no clipping).

    Sampling runs from t = `FIRST_T` (975 of 1000) to t = `LAST_T` (25) in evenly spaced steps
    and stops at ``alpha = FINAL_ALPHA`` (0.999: a residual noise of 0.03 in latent units, under
    half a pixel in position). A chain that ends at t = 0 or 1 (alpha 0.9999 with these betas)
    gives the last step a standard deviation of about 0.005 or none at all, so its
    log-probability swamps DDPO's importance ratios and gradients with noise (or DRaFT gets no
    gradient through it); ending a little short keeps the steps' standard deviation at 0.025 or
    more for up to 50 steps, as Stable Diffusion's schedule does (final alpha 0.99915). Starting
    below t = 999 avoids dividing by sqrt(alpha) ~ 0 in the first step's clean estimate.
    """
    from diffusers import DDIMScheduler

    class SceneDDIMScheduler(DDIMScheduler):  # type: ignore[misc]
        def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
            scale = self.config.num_train_timesteps / 1000  # type: ignore[attr-defined]
            ts = np.linspace(FIRST_T * scale, LAST_T * scale, int(num_inference_steps)).round().astype(np.int64)
            self.num_inference_steps = int(num_inference_steps)
            self.timesteps = torch.from_numpy(ts.copy()).to(device)

    sched = SceneDDIMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule="squaredcos_cap_v2",
                               clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")
    sched.final_alpha_cumprod = torch.tensor(FINAL_ALPHA)  # type: ignore[attr-defined]
    return sched


class SceneDiffusionModel(DenoiserLoRA):
    """:class:`textnorm.train.T2IModel` over scene slots (see the module docstring).

    Args:
        cfg: network sizes.
        denoiser: the slot denoiser (new, randomly initialised, when None).
        text_encoder: the prompt encoder (new when None); frozen here, trained only with the
            denoiser in `textnorm.generator.training`.
    """

    def __init__(self, cfg: GeneratorConfig | None = None, *, denoiser: SlotDenoiser | None = None,
                 text_encoder: PromptEncoder | None = None) -> None:
        self.cfg = cfg or GeneratorConfig()
        self.denoiser: nn.Module = denoiser if denoiser is not None else SlotDenoiser(self.cfg)
        enc = text_encoder if text_encoder is not None else PromptEncoder(self.cfg)
        self.text_encoder = enc.requires_grad_(False).eval()
        self.scheduler = make_scheduler(self.cfg.num_train_timesteps)
        self.latent_shape: tuple[int, ...] = (self.cfg.n_slots, SLOT_DIM)
        self.image_size = self.cfg.image_size
        self._null: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> SceneDiffusionModel:
        """Move both networks (the dtype is ignored: the model is small and runs in float32)."""
        self.denoiser.to(device)
        self.text_encoder.to(device)
        self._null = None
        return self

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.text_encoder.encode(list(prompts))

    def null_embedding(self, batch: int) -> torch.Tensor:
        if self._null is None:
            self._null = self.encode_prompts([""])
        return self._null.expand(batch, *self._null.shape[1:])

    def predict_noise(self, net: nn.Module, latents: torch.Tensor, timesteps: torch.Tensor,
                      cond: torch.Tensor) -> torch.Tensor:
        return net(latents, timesteps, cond)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return render_decode(latents, size=self.image_size)

    @torch.no_grad()
    def sample(self, prompts: Sequence[str], *, seed: int = 0, num_steps: int = 20,
               guidance_scale: float = 1.0, eta: float = 1.0) -> torch.Tensor:
        """Latents (B, n_slots, SLOT_DIM) for `prompts`; sample i's noise is keyed by (seed, i)."""
        from textnorm.train.sampling import derive_seed, keyed_noise, sample

        keys = [derive_seed(seed, i) for i in range(len(prompts))]
        noise = keyed_noise(keys, (num_steps + 1, *self.latent_shape)).to(self.device)
        cond = self.encode_prompts(prompts)
        traj = sample(self, self.denoiser, cond, noise=noise, num_steps=num_steps,
                      guidance_scale=guidance_scale, eta=eta)
        return traj.final


def save_generator(model: SceneDiffusionModel, folder: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write ``generator.safetensors`` and ``generator.json`` (config and `meta`) into `folder`."""
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"denoiser.{k}": v.detach().cpu().contiguous() for k, v in model.denoiser.state_dict().items()}
    tensors.update({f"text_encoder.{k}": v.detach().cpu().contiguous()
                    for k, v in model.text_encoder.state_dict().items()})
    save_file(tensors, str(out / WEIGHTS))
    (out / CONFIG).write_text(json.dumps({"config": model.cfg.to_dict(), **(meta or {})}, indent=1) + "\n")
    return out / WEIGHTS


def load_generator(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> SceneDiffusionModel:
    """Load a generator saved by `save_generator`; the weights shipped in the package by default.

    Args:
        path: a folder holding ``generator.safetensors`` and ``generator.json``.
        device: where to put it.

    Raises:
        ParameterError: the folder or its files are missing or do not match.
    """
    from safetensors.torch import load_file

    if path is None:
        folder = resources.files("textnorm.generator").joinpath("weights")
        with resources.as_file(folder) as f:
            return load_generator(Path(f), device=device)
    folder = Path(path)
    if not (folder / WEIGHTS).is_file() or not (folder / CONFIG).is_file():
        raise ParameterError(f"path: expected a folder with {WEIGHTS} and {CONFIG}, got {str(folder)!r}")
    try:
        meta = json.loads((folder / CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise ParameterError(f"path: {CONFIG} in {str(folder)!r} is not valid JSON: {exc}") from exc
    cfg = GeneratorConfig.from_dict(meta.get("config", {}))
    model = SceneDiffusionModel(cfg)
    tensors = load_file(str(folder / WEIGHTS))
    for prefix, module in (("denoiser.", model.denoiser), ("text_encoder.", model.text_encoder)):
        state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise ParameterError(f"path: weights in {str(folder)!r} do not match the config: {exc}") from exc
    model.denoiser.eval()
    return model.to(device)
