"""KADID-10k brightness distortions (group `brightness`): tone curves and a mean shift."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import apply_lut, spline_curve


@lru_cache(maxsize=32)
def midtone_curve(midpoint: float) -> np.ndarray:
    """KADID's `curves(x, c)`: the parabola through (0,0), (0.5, c), (1,1), clipped to 0..1."""
    return spline_curve((0.0, 0.5, 1.0), (0.0, midpoint, 1.0))


@register
class Brighten(Corruption):
    """Lift the mid-tones: 2/3 RGB tone curve + 1/3 the same curve on Lab lightness (KADID)."""

    name = "brighten"
    group = "brightness"
    levels = {"amount": (0.1, 0.2, 0.4, 0.7, 1.1)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        curve = midtone_curve(0.5 + params["amount"] / 2)
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)  # 8-bit Lab: L scaled to 0..255, so a LUT applies
        lab[..., 0] = apply_lut(lab[..., 0], curve)
        lab_rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
        return cv2.addWeighted(apply_lut(image, curve), 2 / 3, lab_rgb, 1 / 3, 0)


@register
class Darken(Corruption):
    """Push the mid-tones down with the RGB tone curve through (0.5, 0.5 - amount / 2) (KADID)."""

    name = "darken"
    group = "brightness"
    levels = {"amount": (0.05, 0.1, 0.2, 0.4, 0.8)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        return apply_lut(image, midtone_curve(0.5 - params["amount"] / 2))


@register
class MeanShift(Corruption):
    """Add a constant to every channel value (clipped).

    Published shifts .15, .08, 0, -.08, -.15 mix directions and include a no-op. Here severity sets
    the magnitude (.03 .. .15, the published maximum) and the sign is drawn at random (recorded).
    """

    name = "mean_shift"
    group = "brightness"
    levels = {"magnitude": (0.03, 0.06, 0.09, 0.12, 0.15)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        shift = params["magnitude"] * (1 if rng.random() < 0.5 else -1)
        params["shift"] = shift
        table = np.clip(np.arange(256) / 255 + shift, 0, 1).astype(np.float32)
        return apply_lut(image, table)
