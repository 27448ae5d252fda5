"""Baselines that score like the critic (`score(images, prompts) -> {"quality"?, "alignment"?}`).

A baseline is a factory registered by name; `make_baseline` builds one from CLI options. Modules
are imported here so that registering is a side effect of importing the package.
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


def make_baseline(name: str, **options: Any) -> Any:
    """Build baseline `name`; unknown names or options raise errors that list the valid ones."""
    from trainer.benchmarks import BenchmarkError

    if name not in BASELINES:
        raise BenchmarkError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    check_options(BASELINES[name], options, f"baseline {name!r}")
    return BASELINES[name](**options)


from trainer.baselines import brisque_iqa, clip_agiqa, cosine, laplacian  # noqa: E402,F401  (registration)
