"""What to generate and what came out: plain dataclasses shared by the generator and the negatives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GenerationRequest:
    """One image to generate. Unset overrides take the generator's defaults.

    `seed` alone fixes the initial noise (one `torch.Generator` per image), so the image depends only on
    the request, never on the batch it lands in. Negatives are requests derived from their positive's
    request with `dataclasses.replace`, so they share prompt, seed and model.
    """

    prompt: str
    prompt_id: str
    seed: int
    steps: int | None = None
    guidance: float | None = None
    resolution: tuple[int, int] | None = None
    """(width, height) to denoise at."""
    latent_noise: float = 0.0
    """std of Gaussian noise added to the final latents before decoding, relative to the latents' std."""
    init_image: np.ndarray | None = field(default=None, repr=False, compare=False)
    """uint8 RGB image for img2img (SDEdit); requires `strength`."""
    strength: float | None = None
    upscale_to: tuple[int, int] | None = None
    """(width, height) to resize the decoded image to (bicubic), e.g. after a low-resolution generation."""
    degradation: dict[str, Any] | None = None
    """For negatives: family, aspect, kind, severity and setting; copied into the provenance."""

    def __post_init__(self) -> None:
        if (self.init_image is None) != (self.strength is None):
            raise ValueError("init_image and strength go together (img2img); set both or neither")
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be within (0, 1], got {self.strength}")
        if self.latent_noise < 0:
            raise ValueError(f"latent_noise must be >= 0, got {self.latent_noise}")


@dataclass(frozen=True)
class GeneratedImage:
    """A generated uint8 RGB image (H, W, 3), the request it answers, and where it came from."""

    image: np.ndarray = field(repr=False)
    request: GenerationRequest
    provenance: dict[str, Any]
