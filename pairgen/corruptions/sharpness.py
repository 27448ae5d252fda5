"""KADID-10k sharpness and contrast distortions (group `sharpness`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import apply_lut, from_lab, pixel_scale, spline_curve, to_lab

SHARPEN_RADIUS = 3  # KADID: Gaussian of sigma ceil(2 * radius) on a (4 * radius + 1)^2 support


@lru_cache(maxsize=32)
def contrast_curve(offset: float) -> np.ndarray:
    """Tone curve through (.3, .3 - offset) and (.7, .7 + offset): > 0 raises contrast, < 0 lowers it."""
    return spline_curve((0.0, 0.3, 0.5, 0.7, 1.0), (0.0, 0.3 - offset, 0.5, 0.7 + offset, 1.0))


@register
class HighSharpen(Corruption):
    """Over-sharpening: unsharp masking of Lab lightness with gain `amount` (halos, clipped edges)."""

    name = "high_sharpen"
    group = "sharpness"
    levels = {"amount": (1, 2, 3, 6, 12)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        lab = to_lab(image)
        scale = pixel_scale(image, params)
        support = 2 * round(2 * SHARPEN_RADIUS * scale) + 1
        lightness = lab[..., 0]
        blurred = cv2.GaussianBlur(lightness, (support, support), 2 * SHARPEN_RADIUS * scale, borderType=cv2.BORDER_REPLICATE)
        lab[..., 0] = lightness + params["amount"] * (lightness - blurred)
        return from_lab(lab)


@register
class ContrastChange(Corruption):
    """Contrast change with KADID's 5-point tone curve.

    KADID's curve `curves(x, [.25 - a/4, .75 + a/4])` is `contrast_curve(.05 + a/4)`: its published
    a = .3, .15, 0, -.4, -.6 are offsets .125, .0875, .05, -.05, -.1, which mix directions, and a = 0
    is not the identity. Here severity sets |offset| and the direction is drawn (recorded): raising
    contrast clips, so its offsets are smaller for comparable damage.
    """

    name = "contrast_change"
    group = "sharpness"
    levels = {"decrease": (0.04, 0.07, 0.1, 0.13, 0.16), "increase": (0.04, 0.07, 0.1, 0.13, 0.16)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        direction = "increase" if rng.random() < 0.5 else "decrease"
        offset = params[direction] if direction == "increase" else -params[direction]
        params["direction"], params["offset"] = direction, offset
        return apply_lut(image, contrast_curve(offset))
