"""KADID-10k blur distortions (group `blur`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import (
    disk_kernel,
    filter_image,
    gaussian_blur,
    line_kernel,
    pixel_scale,
    random_angle,
)


@register
class GaussianBlur(Corruption):
    """Isotropic Gaussian blur. Published level 1 (sigma 0.1) leaves uint8 pixels unchanged, so it is 0.4."""

    name = "gaussian_blur"
    group = "blur"
    levels = {"sigma": (0.4, 0.5, 1.0, 2.0, 5.0)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        return gaussian_blur(image, params["sigma"] * pixel_scale(image, params))


@register
class LensBlur(Corruption):
    """Out-of-focus blur: convolution with an anti-aliased disk of the given radius."""

    name = "lens_blur"
    group = "blur"
    levels = {"radius": (1, 2, 4, 6, 8)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        radius = round(params["radius"] * pixel_scale(image, params), 2)
        return filter_image(image, disk_kernel(radius))


@register
class MotionBlur(Corruption):
    """Linear camera shake: a line kernel of the given length at a random angle (recorded).

    Published length 1 is a single-pixel kernel, i.e. the identity, so the lengths start at 2.
    """

    name = "motion_blur"
    group = "blur"
    levels = {"length": (2, 3, 4, 6, 10)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        angle = random_angle(rng, params)
        length = params["length"] * pixel_scale(image, params)
        taps = np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, int(np.ceil(length)) * 2))
        return filter_image(image, line_kernel(taps, np.ones_like(taps), angle))
