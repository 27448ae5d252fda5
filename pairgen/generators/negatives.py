"""Generation-level negatives: the same model, prompt and seed as a positive, generated worse on purpose.

These are the cheapest AIGC-specific negatives (family "generation"): each kind maps a severity 1..5 to
one setting (per-model values in `GenerationNegativesConfig`) and turns the positive's resolved request
into the negative's request. Most are quality negatives; a kind whose knob weakens prompt adherence by
construction sets `aspect = "alignment"` and its pairs are alignment pairs. Adding a kind is one class
with `@register`. Image-side alignment negatives from a perturbed prompt (same model and seed) are
`alignment_negative`.
"""

from __future__ import annotations

import math

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from pairgen.config_base import SEVERITY_MAX, SEVERITY_MIN
from pairgen.generators.config import GenerationNegativesConfig
from pairgen.generators.requests import GenerationRequest

GENERATION_NEGATIVES: dict[str, type[GenerationNegative]] = {}
MIN_SIDE_MULTIPLE = 8  # the least side multiple; a generator passes its pipeline's (16 for FLUX's packed latents)


def register(cls: type[GenerationNegative]) -> type[GenerationNegative]:
    GENERATION_NEGATIVES[cls.kind] = cls
    return cls


class NotApplicableError(ValueError):
    """This kind cannot degrade this positive (e.g. low guidance for a model run without guidance)."""


class GenerationNegative:
    """Base class: `setting(severity)` picks the config value, `apply` builds the negative's request."""

    kind: ClassVar[str]
    family: ClassVar[str] = "generation"
    aspect: ClassVar[str] = "quality"
    config_field: ClassVar[str]
    """The `GenerationNegativesConfig` field holding this kind's per-severity values."""
    needs_guidance: ClassVar[bool] = False
    """Changes the guidance scale: not applicable to a pipeline that ignores it (e.g. FLUX.1-schnell)."""
    needs_latents: ClassVar[bool] = False
    """Edits the final (B, C, H, W) latents: not applicable to pipelines that pack and decode them (FLUX)."""

    def __init__(self, config: GenerationNegativesConfig | None = None, side_multiple: int = MIN_SIDE_MULTIPLE):
        self.config = config or GenerationNegativesConfig()
        self.side_multiple = side_multiple
        """What generated image sides must be a multiple of (the generator's pipeline: 8, or 16 for FLUX)."""

    def setting(self, severity: int) -> float:
        if not SEVERITY_MIN <= severity <= SEVERITY_MAX:
            raise ValueError(f"severity must be within {SEVERITY_MIN}..{SEVERITY_MAX}, got {severity}")
        return getattr(self.config, self.config_field)[severity - SEVERITY_MIN]

    def request(self, positive: GenerationRequest, severity: int, image: np.ndarray | None = None) -> GenerationRequest:
        """The negative of `positive` (a request with defaults resolved, see `Generator.resolve`)."""
        if positive.steps is None or positive.guidance is None or positive.resolution is None:
            raise ValueError("resolve the positive request first (Generator.resolve) so its settings are known")
        value = self.setting(severity)
        degradation = {"family": self.family, "aspect": self.aspect, "kind": self.kind, "severity": severity, self.config_field: value}
        return replace(self.apply(positive, value, image), degradation=degradation)

    def apply(self, positive: GenerationRequest, value: float, image: np.ndarray | None) -> GenerationRequest:
        raise NotImplementedError


@register
class FewSteps(GenerationNegative):
    """Stop denoising early: a fraction of the positive's steps, at least 1 and always fewer."""

    kind, config_field = "few_steps", "step_fraction"

    def apply(self, positive, value, image):
        if positive.steps < 2:
            raise NotApplicableError(f"few_steps needs a positive with at least 2 steps, got {positive.steps}")
        return replace(positive, steps=min(positive.steps - 1, max(1, round(positive.steps * value))))


@register
class LowGuidance(GenerationNegative):
    """Weaken classifier-free guidance towards 1 (no guidance): washed-out, incoherent images."""

    kind, config_field = "low_guidance", "guidance_fraction"
    needs_guidance = True

    def apply(self, positive, value, image):
        if positive.guidance <= 1.0:
            raise NotApplicableError(f"{self.kind} needs a positive with guidance > 1, got {positive.guidance}")
        return replace(positive, guidance=1.0 + (positive.guidance - 1.0) * value)


@register
class LowGuidanceAlignment(LowGuidance):
    """Low guidance judged on alignment: classifier-free guidance is the knob that sets how closely a model
    follows its prompt, so a weaker scale is a weaker match by construction (the AGIQA pool's `lowcorr`).

    Removing the AGIQA pool's natural alignment pairs (low guidance and model era) halved the offline
    critic's alignment SRCC (benchmarks/RESULTS.md, run 15); this kind makes the low-guidance part with a
    generator. Same setting (`guidance_fraction`) and image as `low_guidance`; only the aspect differs.
    Opt-in per generator (`negatives.kinds`).
    """

    kind = "low_guidance_alignment"
    aspect = "alignment"


@register
class OverGuidance(GenerationNegative):
    """Multiply the guidance scale: over-saturated, burnt, high-contrast artefacts."""

    kind, config_field = "over_guidance", "guidance_factor"
    needs_guidance = True

    def apply(self, positive, value, image):
        return replace(positive, guidance=max(positive.guidance, 1.0) * value)


@register
class LowResolutionUpscaled(GenerationNegative):
    """Generate at a fraction of each side, then resize back to the positive's size (blur, lost detail)."""

    kind, config_field = "low_resolution_upscaled", "resolution_fraction"

    def apply(self, positive, value, image):
        step = self.side_multiple
        low = tuple(max(step, round(side * value / step) * step) for side in positive.resolution)
        return replace(positive, resolution=low, upscale_to=tuple(positive.resolution))


@register
class LatentNoise(GenerationNegative):
    """Add Gaussian noise to the final latents before decoding (grain, colour blotches)."""

    kind, config_field = "latent_noise", "latent_noise"
    needs_latents = True

    def apply(self, positive, value, image):
        return replace(positive, latent_noise=value)


@register
class SDEdit(GenerationNegative):
    """Re-noise the positive image to `strength` and denoise it again (img2img): re-rendering artefacts.

    Needs the positive's image, so it runs after the positive.
    """

    kind, config_field = "sdedit", "sdedit_strength"

    def apply(self, positive, value, image):
        if image is None:
            raise ValueError("sdedit needs the positive's image (pass image=...)")
        expected = tuple(positive.upscale_to or positive.resolution)
        if (image.shape[1], image.shape[0]) != expected or image.dtype != np.uint8:
            raise ValueError(f"sdedit needs the positive's uint8 image of size {expected}, got {image.shape} {image.dtype}")
        # img2img runs int(steps * strength) denoising steps; a few-step positive needs more to run any
        steps = max(positive.steps or 1, math.ceil(1.0 / value))
        return replace(positive, init_image=image, strength=value, steps=steps)


def alignment_negative(positive: GenerationRequest, perturbed_prompt: str, perturbation: dict[str, Any] | None = None) -> GenerationRequest:
    """An image-side alignment negative: the perturbed prompt with the positive's model, seed and settings.

    `perturbation` (what the prompt engine changed) is recorded in the provenance.
    """
    if perturbed_prompt == positive.prompt:
        raise ValueError("the perturbed prompt is identical to the positive's prompt")
    degradation = {"family": "prompt", "aspect": "alignment", "kind": "perturbed_prompt", "original_prompt": positive.prompt}
    return replace(positive, prompt=perturbed_prompt, degradation=degradation | (perturbation or {}))
