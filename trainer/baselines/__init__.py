"""Baselines that score like the critic (`score(images, prompts) -> {"quality"?, "alignment"?}`).

A baseline is a factory registered by name; `make_baseline` builds one from CLI options. The
modules register themselves when `available_baselines` first imports them (not at package import,
so `python -m trainer.baselines.clip_agiqa` does not import its own module twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainer.benchmarks import check_options

BASELINES: dict[str, Callable[..., Any]] = {}
SUPERVISED: set[str] = set()


def register_baseline(name: str, supervised: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a factory; `supervised` marks baselines trained on human scores (reported as such)."""

    def add(factory: Callable[..., Any]) -> Callable[..., Any]:
        BASELINES[name] = factory
        if supervised:
            SUPERVISED.add(name)
        return factory

    return add


def available_baselines() -> dict[str, Callable[..., Any]]:
    """The registry, with every baseline module imported."""
    from trainer.baselines import brisque_iqa, clip_agiqa, cosine, laplacian  # noqa: F401  (registration)

    return BASELINES


def make_baseline(name: str, **options: Any) -> Any:
    """Build baseline `name`; unknown names or options raise errors that list the valid ones."""
    from trainer.benchmarks import BenchmarkError

    if name not in available_baselines():
        raise BenchmarkError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    check_options(BASELINES[name], options, f"baseline {name!r}")
    return BASELINES[name](**options)
