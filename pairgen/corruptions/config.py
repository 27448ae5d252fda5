"""Config of the visual-quality negatives, mounted by the top-level config as `corruptions:`.

    corruptions:
      quality:                      # which corruptions, how often, how strong
        - {name: jpeg, weight: 2}   # severity omitted: uniform 1..5
        - {name: lens_blur, severity: 3}        # fixed
        - {name: duplication, severity: [3, 4, 5]}  # uniform choice
      composition: {probability: 0.2, max_steps: 3, severity_weights: [1, 1, 1, 1, 1]}
      qa: {max_psnr: 38, max_ssim: 0.98, on_fail: next_severity}
      erasure:                      # alignment pairs (`pairs.erasures`): content made unrecognizable
        - {name: content_erasure, severity: [4, 5]}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from pairgen.config_base import SEVERITY_MAX, Severity, StrictModel
from pairgen.corruptions.base import get_corruption, list_corruptions
from pairgen.corruptions.composition import DEFAULT_MAX_STEPS, Composite, composable_names


def _severity_kind(value: Any) -> str:
    return "list" if isinstance(value, list) else "int"


# Discriminated so that a bad value reports only its own branch ("int"/"list" are dropped from
# error paths by config_base): `quality[2].severity: must be within 1..5, got 7`.
SeverityChoice = Annotated[
    Annotated[Severity, Tag("int")] | Annotated[list[Severity], Tag("list")], Discriminator(_severity_kind)
]


def _known_name(name: str) -> str:
    get_corruption(name)  # raises with the list of known names
    return name


class CorruptionEntry(StrictModel):
    """One corruption to draw negatives from."""

    name: str
    weight: float = Field(1.0, gt=0, description="relative sampling weight")
    severity: SeverityChoice | None = Field(
        None, description="fixed severity, a list to choose from uniformly, or omitted for uniform 1..5"
    )

    _check_name = field_validator("name")(_known_name)

    @field_validator("severity")
    @classmethod
    def _non_empty(cls, value: int | list[int] | None) -> int | list[int] | None:
        if isinstance(value, list) and not value:
            raise ValueError("must list at least one severity (or be omitted for uniform 1..5)")
        return value


class CompositionConfig(StrictModel):
    """ARNIQA-style compositions of 1..max_steps distortions from distinct groups."""

    probability: float = Field(0.2, ge=0, le=1, description="share of negatives that are compositions")
    max_steps: int = Field(DEFAULT_MAX_STEPS, ge=1, le=5)
    severity_weights: list[float] = Field(
        [1.0] * SEVERITY_MAX, description="relative probability of severity 1..5 for each step"
    )
    names: list[str] | None = Field(None, description="candidate corruptions; default: every conventional one")

    @field_validator("severity_weights")
    @classmethod
    def _five_weights(cls, value: list[float]) -> list[float]:
        if len(value) != SEVERITY_MAX or min(value) < 0 or sum(value) <= 0:
            raise ValueError(f"must be {SEVERITY_MAX} non-negative weights (severity 1..5) with a positive sum, got {value}")
        return value

    @field_validator("names")
    @classmethod
    def _conventional(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            _known_name(name)
            if name not in composable_names():
                raise ValueError(f"{name!r} cannot be composed; allowed: {', '.join(composable_names())}")
        return value

    def candidates(self) -> list[str]:
        return self.names or composable_names()


class NoOpFilterConfig(StrictModel):
    """Pair QA: a negative must differ perceptibly from its positive.

    A negative is a no-op when PSNR >= `max_psnr` AND SSIM >= `max_ssim` (near-identical by both
    measures). On failure it is redrawn at the next severity (up to 5), or dropped.
    """

    enabled: bool = True
    max_psnr: float = Field(38.0, gt=0, description="dB; at or above (with SSIM) counts as no visible change")
    max_ssim: float = Field(0.98, gt=0, le=1, description="at or above (with PSNR) counts as no visible change")
    on_fail: Literal["next_severity", "drop"] = "next_severity"


def _default_quality() -> list[CorruptionEntry]:
    return [CorruptionEntry(name=name) for name in list_corruptions() if name != Composite.name]


def _default_erasure() -> list[CorruptionEntry]:
    """Levels that leave nothing of the prompt recognizable (docs/corruptions.md)."""
    return [CorruptionEntry(name="content_erasure", severity=[SEVERITY_MAX - 1, SEVERITY_MAX])]


def _check_unique(entries: list[CorruptionEntry], field: str) -> None:
    names = [entry.name for entry in entries]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{field} lists {', '.join(repeated)} more than once; merge the entries (use weight)")


class QualityCorruptionsConfig(StrictModel):
    """The `corruptions:` section."""

    quality: list[CorruptionEntry] = Field(default_factory=_default_quality, min_length=1)
    composition: CompositionConfig = CompositionConfig()
    qa: NoOpFilterConfig = NoOpFilterConfig()
    erasure: list[CorruptionEntry] = Field(default_factory=_default_erasure, min_length=1)
    """Content-erasure alignment negatives (`pairs.erasures`): the image with its content made
    unrecognizable no longer shows what the prompt asks for, so it matches the prompt worse. They
    make the alignment score depend on the image itself, which text-side pairs (one shared image)
    never do."""

    @model_validator(mode="after")
    def _unique_names(self) -> QualityCorruptionsConfig:
        _check_unique(self.quality, "quality")
        _check_unique(self.erasure, "erasure")
        return self
