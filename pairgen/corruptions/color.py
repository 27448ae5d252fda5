"""KADID-10k colour distortions (group `color`)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import (
    from_255,
    from_lab,
    gaussian_blur,
    pixel_scale,
    random_angle,
    smooth_blur,
    to_lab,
)


@register
class ColorDiffusion(Corruption):
    """Colour bleeding: the Lab chroma channels are blurred with sigma = 1.5 * amount + 2 (KADID).

    Unlike ARNIQA's port we do not also multiply chroma by `amount`: that is a saturation change,
    which `saturation_lab` already covers.
    """

    name = "color_diffusion"
    group = "color"
    levels = {"amount": (1, 3, 6, 8, 12)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        lab = to_lab(image)
        sigma = (1.5 * params["amount"] + 2) * pixel_scale(image, params)
        lab[..., 1:] = smooth_blur(np.ascontiguousarray(lab[..., 1:]), sigma)
        return from_lab(lab)


@register
class ColorShift(Corruption):
    """Chromatic misregistration: the green channel is shifted `amount` px in a random direction,
    blended in where edges are strong (normalised, blurred gradient magnitude), as in KADID."""

    name = "color_shift"
    group = "color"
    levels = {"amount": (1, 3, 6, 8, 12)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        angle = np.deg2rad(random_angle(rng, params, 0.0, 360.0))
        shift = params["amount"] * pixel_scale(image, params)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        edges = gaussian_blur(cv2.magnitude(cv2.Sobel(gray, -1, 1, 0), cv2.Sobel(gray, -1, 0, 1)), 4.0)
        low, high = np.percentile(edges[::4, ::4], (1, 99))
        weight = np.clip((edges - low) / max(high - low, 1e-6), 0, 1)
        height, width = gray.shape
        matrix = np.float32([[1, 0, shift * np.cos(angle)], [0, 1, shift * np.sin(angle)]])
        green = image[..., 1].astype(np.float32)
        moved = cv2.warpAffine(green, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = image.copy()
        out[..., 1] = from_255(moved * weight + green * (1 - weight))
        return out


@register
class ColorQuantization(Corruption):
    """Palette reduction to `colors` colours with Floyd-Steinberg dithering (Pillow octree palette)."""

    name = "color_quantization"
    group = "color"
    levels = {"colors": (64, 48, 32, 16, 8)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        pil = Image.fromarray(image)
        palette = pil.quantize(params["colors"], method=Image.Quantize.FASTOCTREE)
        dithered = pil.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        return np.asarray(dithered.convert("RGB"))


@register
class SaturationHSV(Corruption):
    """HSV saturation times `factor` (0 = gray, negative = complementary tint), as KADID.

    Scaling S at fixed H and V is exactly `c' = V - factor * (V - c)` per channel, V = max(R,G,B).
    """

    name = "saturation_hsv"
    group = "color"
    levels = {"factor": (0.4, 0.2, 0.1, 0.0, -0.4)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        factor = params["factor"]
        red, green, blue = cv2.split(image)
        value = cv2.cvtColor(cv2.max(cv2.max(red, green), blue), cv2.COLOR_GRAY2RGB)
        return cv2.addWeighted(value, 1 - factor, image, factor, 0)  # rounds and saturates to uint8


@register
class SaturationLab(Corruption):
    """Lab chroma (a, b) times `factor`. Published level 1 (x1) is the identity, so it is x1.5."""

    name = "saturation_lab"
    group = "color"
    levels = {"factor": (1.5, 2.0, 3.0, 6.0, 9.0)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        lab = to_lab(image)
        lab[..., 1:] *= params["factor"]
        return from_lab(lab)
