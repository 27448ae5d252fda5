"""KADID-10k spatial distortions (group `spatial`)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import apply_lut, pixel_scale

JITTER_ITERATIONS = 5
PATCH_SIZE = 16  # non-eccentricity patch side at KADID size
PATCH_RADIUS = 16  # displacement range of a non-eccentricity patch (+-radius/2)
BLOCK_SIZE = 32  # colour block side at KADID size


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 x and y coordinate maps for cv2.remap."""
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


def random_corners(rng: np.random.Generator, count: int, height: int, width: int, size: int) -> np.ndarray:
    """`count` random (y, x) top-left corners of `size` px squares that fit in height x width.

    Callers draw the largest count of their level table and use a prefix, so for one seed a lower
    severity damages a subset of what a higher one damages.
    """
    return (rng.random((count, 2)) * [height - size, width - size]).astype(int)


@register
class Jitter(Corruption):
    """Pixel scatter: 5 rounds of moving every pixel by a N(0, amount) px random offset."""

    name = "jitter"
    group = "spatial"
    levels = {"amount": (0.05, 0.1, 0.2, 0.5, 1.0)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        amount = np.float32(params["amount"] * pixel_scale(image, params))
        grid_x, grid_y = pixel_grid(height, width)
        out = image
        for _ in range(JITTER_ITERATIONS):
            offsets = rng.standard_normal((2, height, width), dtype=np.float32) * amount
            out = cv2.remap(out, grid_x + offsets[0], grid_y + offsets[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out


@register
class NonEccentricityPatch(Corruption):
    """`count` small patches copied to a slightly displaced position (local structure breaks)."""

    name = "non_eccentricity_patch"
    group = "spatial"
    levels = {"count": (20, 40, 60, 80, 100)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        scale = pixel_scale(image, params)
        height, width = image.shape[:2]
        # small images (down to 32 px) keep patch + displacement inside the frame
        size = min(round(PATCH_SIZE * scale), min(height, width) // 2)
        radius = min(round(PATCH_RADIUS * scale), (min(height, width) - size) // 2)
        count_max = self.levels["count"][-1]
        # sources keep `radius` away from the border so the displaced copy stays inside
        sources = random_corners(rng, count_max, height - 2 * radius, width - 2 * radius, size) + radius
        moves = np.rint((rng.random((count_max, 2)) - 0.5) * radius).astype(int)
        out = image.copy()
        for (y, x), (dy, dx) in zip(sources[: params["count"]], moves[: params["count"]]):
            out[y + dy : y + dy + size, x + dx : x + dx + size] = image[y : y + size, x : x + size]
        return out


@register
class Pixelate(Corruption):
    """Down-sample by box averaging to (0.95 - strength^0.6) of the size, up-sample by nearest."""

    name = "pixelate"
    group = "spatial"
    levels = {"strength": (0.01, 0.05, 0.1, 0.2, 0.5)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        factor = 0.95 - params["strength"] ** 0.6
        small = cv2.resize(image, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


@register
class ContentErasure(Corruption):
    """The image reduced to a `cells`-pixel long side (box average), then smoothly upscaled (bicubic).

    Unlike `pixelate` (KADID's levels keep objects recognizable), the top levels leave only a colour
    layout: nothing the prompt names can be seen any more. The default of the content-erasure
    alignment pairs (`pairs.erasures`)."""

    name = "content_erasure"
    group = "spatial"
    levels = {"cells": (48, 32, 20, 12, 8)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        height, width = image.shape[:2]
        scale = min(1.0, params["cells"] / max(height, width))
        small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


@register
class Quantization(Corruption):
    """Posterisation: every channel quantised to `steps` uniform levels (reconstructed at bin centres)."""

    name = "quantization"
    group = "spatial"
    levels = {"steps": (20, 16, 13, 10, 7)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        steps = params["steps"]
        bins = np.minimum(np.arange(256) * steps // 256, steps - 1)
        return apply_lut(image, ((bins + 0.5) / steps).astype(np.float32))


@register
class ColorBlock(Corruption):
    """`count` uniformly coloured squares (32 px at KADID size) pasted at random positions."""

    name = "color_block"
    group = "spatial"
    levels = {"count": (2, 4, 6, 8, 10)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        size = round(BLOCK_SIZE * pixel_scale(image, params))
        count_max = self.levels["count"][-1]
        corners = random_corners(rng, count_max, *image.shape[:2], size)
        colors = rng.integers(0, 256, (count_max, 3), dtype=np.uint8)
        out = image.copy()
        for (y, x), color in zip(corners[: params["count"]], colors[: params["count"]]):
            out[y : y + size, x : x + size] = color
        return out
