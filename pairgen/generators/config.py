"""Generator configs: one entry per text-to-image model, so adding a model is a config change, not code."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from pairgen.config_base import SEVERITY_MAX, StrictModel, digest

Dtype = Literal["auto", "float32", "bfloat16", "float16"]
CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune"]
PerSeverity = Annotated[tuple[float, float, float, float, float], Field(description="setting for severity 1..5")]


def _monotonic(name: str, values: tuple[float, ...], increasing: bool) -> tuple[float, ...]:
    pairs = list(zip(values, values[1:]))
    if not all((a <= b) if increasing else (a >= b) for a, b in pairs):
        order = "increase" if increasing else "decrease"
        raise ValueError(f"{name} must {order} with severity (severity always means 'worse'), got {list(values)}")
    return values


class GenerationNegativesConfig(StrictModel):
    """Per-severity settings (index 0 is severity 1) of the generation-level negatives of one model.

    Defaults suit a 20-50 step CFG model; a few-step or guidance-distilled model should set its own.
    """

    kinds: list[str] = Field(
        default=["few_steps", "low_guidance", "over_guidance", "low_resolution_upscaled", "latent_noise", "sdedit"],
        description="enabled kinds (names in GENERATION_NEGATIVES; low_guidance_alignment is opt-in)",
    )
    step_fraction: PerSeverity = (0.5, 0.35, 0.25, 0.15, 0.08)
    """few_steps: fraction of the positive's steps (at least 1, always fewer than the positive)."""
    guidance_fraction: PerSeverity = (0.6, 0.45, 0.3, 0.15, 0.0)
    """low_guidance and low_guidance_alignment: guidance becomes 1 + (g - 1) * fraction; 1.0 means no
    classifier-free guidance."""
    guidance_factor: PerSeverity = (2.0, 3.0, 4.0, 6.0, 8.0)
    """over_guidance: guidance becomes max(g, 1) * factor."""
    resolution_fraction: PerSeverity = (0.75, 0.625, 0.5, 0.375, 0.25)
    """low_resolution_upscaled: generate at this fraction of each side, then resize back up (bicubic)."""
    latent_noise: PerSeverity = (0.1, 0.2, 0.35, 0.5, 0.75)
    """latent_noise: std of Gaussian noise added to the final latents, relative to their own std."""
    sdedit_strength: PerSeverity = (0.3, 0.45, 0.6, 0.75, 0.9)
    """sdedit: img2img strength applied to the positive image (same prompt and seed)."""

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, kinds: list[str]) -> list[str]:
        from pairgen.generators.negatives import GENERATION_NEGATIVES

        unknown = [k for k in kinds if k not in GENERATION_NEGATIVES]
        if unknown:
            raise ValueError(f"unknown kind(s) {unknown}; known: {', '.join(GENERATION_NEGATIVES)}")
        return kinds

    @field_validator("step_fraction", "guidance_fraction", "resolution_fraction", "sdedit_strength")
    @classmethod
    def _fraction(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"fractions must be within 0..1, got {list(values)}")
        return values

    @field_validator("step_fraction", "guidance_fraction", "resolution_fraction")
    @classmethod
    def _decreasing(cls, values: tuple[float, ...], info) -> tuple[float, ...]:
        return _monotonic(info.field_name, values, increasing=False)

    @field_validator("guidance_factor", "latent_noise", "sdedit_strength")
    @classmethod
    def _increasing(cls, values: tuple[float, ...], info) -> tuple[float, ...]:
        return _monotonic(info.field_name, values, increasing=True)


assert SEVERITY_MAX == 5, "PerSeverity holds one value per severity 1..5"


class GeneratorConfig(StrictModel):
    """One text-to-image model: where to load it from, its defaults, its share of prompts, how to run it."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$", description="short name used in pair keys")
    model: str = Field(min_length=1, description="Hub id (org/name) or local pipeline folder")
    revision: str | None = None
    """Hub branch, tag or commit; pin a commit for reproducible jobs."""
    variant: str | None = None
    """weights variant on the Hub, e.g. 'fp16'."""
    dtype: Dtype = "auto"
    """'auto': bfloat16 on CUDA, float32 elsewhere."""
    device: str = "auto"
    """'auto': cuda if available, else cpu; or any torch device string ('cuda:1', 'cpu')."""
    share: float = Field(default=1.0, gt=0, description="relative share of prompts (weights, need not sum to 1)")
    steps: int = Field(default=25, ge=1, le=1000)
    guidance: float = Field(default=7.5, ge=0)
    resolution: int | tuple[int, int] = 512
    """Square side or [width, height]; multiples of 8."""
    scheduler: str | None = None
    """A diffusers scheduler class name replacing the pipeline's own (built from its config)."""
    batch_size: int = Field(default=8, ge=1)
    decode_batch_size: int | None = Field(default=None, ge=1)
    """Images per VAE decode call; None: the whole denoising batch."""
    num_gpus: float = Field(default=1.0, ge=0)
    """GPUs per Ray actor running this generator (fractions share a GPU)."""
    reuse_text_embeddings: bool = True
    """Encode each distinct prompt once (negatives of the same prompt reuse it); known pipeline classes only."""
    channels_last: bool = True
    """channels_last memory format for the UNet and VAE (CUDA only)."""
    compile: CompileMode = "off"
    """torch.compile the denoiser and VAE decoder (CUDA only); 'reduce-overhead' adds CUDA graphs."""
    negatives: GenerationNegativesConfig = Field(default_factory=GenerationNegativesConfig)

    @field_validator("resolution")
    @classmethod
    def _multiple_of_8(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        sides = (value, value) if isinstance(value, int) else value
        if not all(s >= 8 and s % 8 == 0 for s in sides):
            raise ValueError(f"sides must be positive multiples of 8, got {value}")
        return value

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return (self.resolution, self.resolution) if isinstance(self.resolution, int) else tuple(self.resolution)


def _unique_ids(configs: list[GeneratorConfig]) -> list[GeneratorConfig]:
    ids = [c.id for c in configs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"generator ids must be unique, repeated: {', '.join(duplicates)}")
    return configs


GeneratorList = Annotated[list[GeneratorConfig], AfterValidator(_unique_ids)]
"""The `generators:` list of a job config (may be empty when every positive comes from a collection)."""

RUNTIME_FIELDS = frozenset({"batch_size", "decode_batch_size", "num_gpus", "device", "compile", "channels_last", "reuse_text_embeddings"})
"""GeneratorConfig fields that say how fast or where to generate, not what: left out of config hashes."""


def assign_generators(configs: list[GeneratorConfig], prompt_ids: list[str]) -> dict[str, str]:
    """Map each prompt id to a generator id, in proportion to `share`, deterministically.

    Rule (weighted rendezvous hashing): every (prompt, generator) pair gets a uniform number u from a
    digest of both ids; the prompt goes to the generator with the smallest -ln(u) / share. A generator
    wins a prompt with probability share / sum(shares), independently of the other prompts, so:
    - the result does not depend on the order of prompts or of generators, nor on the other prompts;
    - adding a generator only moves prompts *to* it; removing one only moves *its* prompts;
      changing one share only moves prompts to or from that generator.
    Counts are proportional to shares in expectation (binomial spread), not exactly.
    """
    _unique_ids(configs)
    if not configs:
        raise ValueError("assign_generators needs at least one generator config")

    def score(prompt_id: str, config: GeneratorConfig) -> float:
        u = (int(digest(["assign", prompt_id, config.id], size=8), 16) + 0.5) / 2.0**64
        return -math.log(u) / config.share

    return {pid: min(configs, key=lambda c: (score(pid, c), c.id)).id for pid in prompt_ids}
