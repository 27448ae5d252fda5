"""ARNIQA-style composition: 1..N conventional distortions from distinct groups, in random order.

A composition is planned (which names, which severities, in which order) and then applied; the
planner in `plan.py` plans it from the config, the registered `composite` corruption plans it
from its own rng with the defaults. Either way the record lists every step with its parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pairgen.config_base import SEVERITY_MAX
from pairgen.corruptions.base import Corruption, check_severity, get_corruption, list_corruptions, register

DEFAULT_MAX_STEPS = 3
UNIFORM_SEVERITY = (1.0,) * SEVERITY_MAX


def composable_names() -> list[str]:
    """Default candidates: every conventional single corruption (not `composite` itself)."""
    return [name for name in list_corruptions(family="conventional") if name != Composite.name]


def plan_steps(
    rng: np.random.Generator,
    names: Sequence[str],
    max_steps: int,
    severity_weights: Sequence[float],
    top: int | None = None,
) -> list[tuple[str, int]]:
    """Draw 1..`max_steps` (name, severity) steps from distinct groups, in random order.

    Severities follow `severity_weights` (for 1..5). With `top`, they are restricted to 1..`top`
    and one step is at `top`. Draws are made as uniforms first, so a higher `top` with the same rng
    state gives the same names with equal or higher severities.
    """
    by_group: dict[str, list[str]] = {}
    for name in names:
        by_group.setdefault(get_corruption(name).group, []).append(name)
    groups = sorted(by_group)
    count = int(rng.integers(1, min(max_steps, len(groups)) + 1))
    chosen = [groups[i] for i in rng.permutation(len(groups))[:count]]
    picks, levels = rng.random(count), rng.random(count)
    weights = np.asarray(severity_weights, float)[: top or SEVERITY_MAX]
    if weights.sum() <= 0:  # the distribution has no mass at or below `top`: fall back to uniform
        weights = np.ones_like(weights)
    cdf = np.cumsum(weights) / weights.sum()
    steps = []
    for i, group in enumerate(chosen):
        name = by_group[group][int(picks[i] * len(by_group[group]))]
        severity = top if top is not None and i == 0 else int(np.searchsorted(cdf, levels[i], side="right")) + 1
        steps.append((name, min(severity, len(cdf))))
    return [steps[i] for i in rng.permutation(count)]


def apply_steps(
    image: np.ndarray, steps: Sequence[tuple[str, int]], rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Apply planned steps in order; each step gets its own child generator of `rng`."""
    records = []
    for (name, severity), child in zip(steps, rng.spawn(len(steps))):
        image, params = get_corruption(name).apply_with_params(image, check_severity(severity), child)
        records.append({"name": name, "severity": severity, "params": params})
    return image, records


@register
class Composite(Corruption):
    """1..3 conventional distortions from distinct groups; one step at `severity`, the others at a
    uniformly drawn severity no higher than it (config: `corruptions.composition`)."""

    name = "composite"
    group = "composition"
    levels = {"max_severity": (1, 2, 3, 4, 5)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        steps = plan_steps(rng, composable_names(), DEFAULT_MAX_STEPS, UNIFORM_SEVERITY, top=params["max_severity"])
        out, params["steps"] = apply_steps(image, steps, rng)
        return out
