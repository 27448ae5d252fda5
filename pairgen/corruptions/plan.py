"""Planning and making visual-quality negatives, with the no-op filter.

`plan_quality_negatives` turns the config into `CorruptionSpec`s (cheap, seedable, part of the pair
key). `make_quality_negative` applies one spec to a positive, checks that the result differs
perceptibly (PSNR/SSIM), redraws at the next severity or drops it, and counts what happened per
corruption in a `QAStats` that the caller passes in and aggregates across workers with `merge`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pairgen.config_base import SEVERITY_MAX, SEVERITY_MIN
from pairgen.corruptions.base import check_severity, get_corruption
from pairgen.corruptions.composition import Composite, apply_steps, plan_steps
from pairgen.corruptions.config import CorruptionEntry, NoOpFilterConfig, QualityCorruptionsConfig
from pairgen.corruptions.qa import psnr, ssim
from pairgen.images import as_rgb_uint8


@dataclass(frozen=True)
class CorruptionSpec:
    """What to do to a positive: a corruption at a severity; a composite also lists its steps."""

    name: str
    severity: int
    steps: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"name": self.name, "severity": self.severity}
        if self.steps:
            record["steps"] = [{"name": name, "severity": severity} for name, severity in self.steps]
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorruptionSpec:
        """Inverse of `to_dict` (specs travel as JSON in build plans)."""
        steps = tuple((step["name"], int(step["severity"])) for step in data.get("steps", ()))
        return cls(data["name"], int(data["severity"]), steps)

    def stronger(self) -> CorruptionSpec | None:
        """The same spec one severity up (every composite step too), or None at the maximum."""
        if self.severity >= SEVERITY_MAX:
            return None
        steps = tuple((name, min(SEVERITY_MAX, severity + 1)) for name, severity in self.steps)
        return replace(self, severity=self.severity + 1, steps=steps)


@dataclass
class QualityNegative:
    """An accepted negative. `spec` is what was finally applied (after redraws), `requested` the plan."""

    image: np.ndarray
    spec: CorruptionSpec
    requested: CorruptionSpec
    params: dict[str, Any]
    metrics: dict[str, float]


@dataclass
class QAStats:
    """Per-corruption counts of the no-op filter: accepted, redrawn (one per retry) and dropped."""

    accepted: Counter[str] = field(default_factory=Counter)
    redrawn: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    def merge(self, other: QAStats) -> QAStats:
        """Add `other`'s counts into this one (for aggregating worker stats); returns self."""
        self.accepted.update(other.accepted)
        self.redrawn.update(other.redrawn)
        self.dropped.update(other.dropped)
        return self

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {key: dict(sorted(getattr(self, key).items())) for key in ("accepted", "redrawn", "dropped")}


def _draw_severity(choice: int | list[int] | None, rng: np.random.Generator) -> int:
    if choice is None:
        return int(rng.integers(SEVERITY_MIN, SEVERITY_MAX + 1))
    if isinstance(choice, list):
        return int(choice[int(rng.integers(len(choice)))])
    return int(choice)


def _draw_entry(entries: list[CorruptionEntry], rng: np.random.Generator) -> CorruptionSpec:
    """One entry drawn by weight, at its severity choice."""
    weights = np.array([entry.weight for entry in entries], float)
    entry = entries[int(rng.choice(len(weights), p=weights / weights.sum()))]
    return CorruptionSpec(entry.name, _draw_severity(entry.severity, rng))


def plan_quality_negatives(config: QualityCorruptionsConfig, rng: np.random.Generator, n: int) -> list[CorruptionSpec]:
    """`n` specs: a composition with `composition.probability`, else a `quality` entry drawn by weight."""
    composition = config.composition
    specs = []
    for _ in range(n):
        if rng.random() < composition.probability:
            steps = plan_steps(rng, composition.candidates(), composition.max_steps, composition.severity_weights)
            specs.append(CorruptionSpec(Composite.name, max(s for _, s in steps), tuple(steps)))
        else:
            specs.append(_draw_entry(config.quality, rng))
    return specs


def plan_erasure_negatives(config: QualityCorruptionsConfig, rng: np.random.Generator, n: int) -> list[CorruptionSpec]:
    """`n` content-erasure specs, each an `erasure` entry drawn by weight (never a composition)."""
    return [_draw_entry(config.erasure, rng) for _ in range(n)]


def _apply_spec(image: np.ndarray, spec: CorruptionSpec, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    if spec.steps:
        out, records = apply_steps(image, spec.steps, rng)
        return out, {"steps": records}
    return get_corruption(spec.name).apply_with_params(image, check_severity(spec.severity), rng)


def is_noop(positive: np.ndarray, negative: np.ndarray, qa_config: NoOpFilterConfig) -> tuple[bool, dict[str, float]]:
    """Whether `negative` is imperceptibly different from `positive` (both PSNR and SSIM at or above
    their thresholds), with the measures. Same-size images; a disabled filter never flags."""
    if positive.shape != negative.shape:
        return False, {}  # a resized or re-framed negative is a visible change by construction
    # identical images have infinite PSNR; records are strict JSON, so it is capped at 100 dB
    metrics = {"psnr": round(min(psnr(positive, negative), 100.0), 3), "ssim": round(ssim(positive, negative), 5)}
    no_op = qa_config.enabled and metrics["psnr"] >= qa_config.max_psnr and metrics["ssim"] >= qa_config.max_ssim
    return no_op, metrics


def make_quality_negative(
    image: np.ndarray,
    spec: CorruptionSpec,
    qa_config: NoOpFilterConfig,
    seed: int,
    stats: QAStats | None = None,
) -> QualityNegative | None:
    """Apply `spec` with `seed`; if the result is a no-op, redraw one severity up (same seed, so the
    same random draws, only stronger) or drop it, per `qa_config.on_fail`.

    Returns None for a dropped negative; `stats` (if given) counts accepted/redrawn/dropped by
    corruption name. The image is checked/converted with `as_rgb_uint8` first.
    """
    image = as_rgb_uint8(image)
    stats = stats if stats is not None else QAStats()
    current: CorruptionSpec | None = spec
    while current is not None:
        out, params = _apply_spec(image, current, seed)
        no_op, metrics = is_noop(image, out, qa_config)
        if not no_op:
            stats.accepted[spec.name] += 1
            return QualityNegative(image=out, spec=current, requested=spec, params=params, metrics=metrics)
        current = current.stronger() if qa_config.on_fail == "next_severity" else None
        if current is not None:
            stats.redrawn[spec.name] += 1
    stats.dropped[spec.name] += 1
    return None
