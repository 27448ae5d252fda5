"""The corruption registry: one small class per corruption, registered with `@register`.

A corruption maps a severity (1 = barely visible .. 5 = strongest) to named parameters through its
`levels` table and applies them to a uint8 RGB image. Every random draw comes from the
`np.random.Generator` passed in, so the same seed always gives the same negative. Random draws
that shape the result (an angle, a region) are written into the parameter record, so a pair's
metadata says exactly what was done.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from pairgen.config_base import SEVERITY_MAX, SEVERITY_MIN
from pairgen.images import as_rgb_uint8

FAMILIES = ("conventional", "aigc_structure")


class UnknownCorruptionError(KeyError, ValueError):
    """An unknown corruption name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return str(self.args[0])


def check_severity(severity: Any) -> int:
    """Refuse anything but an int in 1..5, naming the allowed range."""
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)):
        raise TypeError(f"severity must be an int within {SEVERITY_MIN}..{SEVERITY_MAX}, got {severity!r}")
    if not SEVERITY_MIN <= severity <= SEVERITY_MAX:
        raise ValueError(f"severity must be within {SEVERITY_MIN}..{SEVERITY_MAX}, got {severity}")
    return int(severity)


def to_jsonable(value: Any) -> Any:
    """numpy scalars/arrays and tuples -> plain JSON types (records are hashed into pair keys)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


class Corruption:
    """Base class. Subclasses set the class attributes and implement `_apply`.

    `levels` maps each parameter name to its five values (severity 1..5, each worse than the last).
    `_apply(image, params, rng)` receives a fresh copy of that level's parameters and may add the
    random draws it makes to it; the input image is never modified.
    """

    name: ClassVar[str]
    group: ClassVar[str]
    family: ClassVar[str] = "conventional"
    aspect: ClassVar[str] = "quality"
    levels: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def parameters(self, severity: int) -> dict[str, Any]:
        """The JSON-able parameters of `severity` (before any random draws)."""
        index = check_severity(severity) - 1
        return {key: to_jsonable(values[index]) for key, values in self.levels.items()}

    def apply_with_params(
        self, image: np.ndarray, severity: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Apply at `severity`; return the image and the full parameter record (incl. random draws)."""
        params = self.parameters(severity)
        image = as_rgb_uint8(image)
        out = self._apply(image, params, rng)
        if out.shape != image.shape or out.dtype != np.uint8:
            raise RuntimeError(f"{self.name} returned {out.dtype} {out.shape} for uint8 {image.shape}")
        return out, to_jsonable(params)

    def apply(self, image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
        """Apply at `severity`: uint8 RGB HxWx3 in, same shape out, deterministic for a given rng state."""
        return self.apply_with_params(image, severity, rng)[0]

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} group={self.group} family={self.family}>"


_REGISTRY: dict[str, Corruption] = {}


def register(cls: type[Corruption]) -> type[Corruption]:
    """Class decorator: check the declaration and add one instance to the registry."""
    if cls.name in _REGISTRY:
        raise ValueError(f"corruption {cls.name!r} registered twice")
    if cls.family not in FAMILIES:
        raise ValueError(f"{cls.name}: family must be one of {FAMILIES}, got {cls.family!r}")
    bad = {k: len(v) for k, v in cls.levels.items() if len(v) != SEVERITY_MAX}
    if bad:
        raise ValueError(f"{cls.name}: every level table needs {SEVERITY_MAX} values, got {bad}")
    _REGISTRY[cls.name] = cls()
    return cls


def list_corruptions(family: str | None = None, group: str | None = None) -> list[str]:
    """Registered names (sorted), optionally filtered by family and/or group."""
    return sorted(
        name
        for name, c in _REGISTRY.items()
        if (family is None or c.family == family) and (group is None or c.group == group)
    )


def get_corruption(name: str) -> Corruption:
    """The registered corruption `name`; an unknown name raises an error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCorruptionError(
            f"unknown corruption {name!r}; known: {', '.join(list_corruptions())}"
        ) from None


def apply_corruption(image: np.ndarray, name: str, severity: int, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply corruption `name` at `severity` with `np.random.default_rng(seed)`; return image and params."""
    return get_corruption(name).apply_with_params(image, severity, np.random.default_rng(seed))
