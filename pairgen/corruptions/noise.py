"""KADID-10k noise distortions (group `noise`). Levels are variances on the 0..1 intensity scale."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import to_float, to_uint8


def gaussian_noise(shape: tuple[int, ...], variance: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean float32 noise of `variance` (drawn as unit normals first, so levels share draws)."""
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(variance))


def wiener(x: np.ndarray, noise_variance: float, window: int) -> np.ndarray:
    """Adaptive Wiener filter (MATLAB `wiener2`): shrink towards the local mean where local
    variance is close to the noise variance, keep detail where it is well above."""
    size = (window, window)
    mean = cv2.blur(x, size, borderType=cv2.BORDER_REPLICATE)
    variance = np.maximum(cv2.blur(x * x, size, borderType=cv2.BORDER_REPLICATE) - mean * mean, 0)
    gain = np.maximum(variance - noise_variance, 0) / np.maximum(variance, noise_variance)
    return mean + gain * (x - mean)


@register
class WhiteNoise(Corruption):
    """Additive white Gaussian noise in RGB."""

    name = "white_noise"
    group = "noise"
    levels = {"variance": (0.001, 0.002, 0.003, 0.005, 0.01)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        return to_uint8(to_float(image) + gaussian_noise(image.shape, params["variance"], rng))


@register
class WhiteNoiseYCbCr(Corruption):
    """White Gaussian noise added to Y, Cb and Cr (coloured noise after conversion back to RGB)."""

    name = "white_noise_ycbcr"
    group = "noise"
    levels = {"variance": (0.0001, 0.0005, 0.001, 0.002, 0.003)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        ycrcb = cv2.cvtColor(to_float(image), cv2.COLOR_RGB2YCrCb)
        ycrcb += gaussian_noise(image.shape, params["variance"], rng)
        return to_uint8(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB))


@register
class ImpulseNoise(Corruption):
    """Salt-and-pepper noise: a `density` fraction of channel values set to 0 or 255 (half each)."""

    name = "impulse_noise"
    group = "noise"
    levels = {"density": (0.001, 0.005, 0.01, 0.02, 0.03)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        hit = rng.random(image.shape, dtype=np.float32)
        out = image.copy()
        density = np.float32(params["density"])
        out[hit < density / 2] = 0
        out[(hit >= density / 2) & (hit < density)] = 255
        return out


@register
class MultiplicativeNoise(Corruption):
    """Speckle-like noise proportional to intensity: x + x * n, n ~ N(0, variance)."""

    name = "multiplicative_noise"
    group = "noise"
    levels = {"variance": (0.001, 0.005, 0.01, 0.02, 0.05)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        x = to_float(image)
        return to_uint8(x + x * gaussian_noise(image.shape, params["variance"], rng))


@register
class Denoise(Corruption):
    """Denoising artefacts: white noise of `variance`, then an adaptive Wiener filter that knows
    that variance. What survives is the blotchy, detail-less texture of a denoised photo."""

    name = "denoise"
    group = "noise"
    levels = {"variance": (0.01, 0.03, 0.05, 0.1, 0.15)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        noisy = to_float(image) + gaussian_noise(image.shape, params["variance"], rng)
        params["window"] = 7
        return to_uint8(wiener(noisy, params["variance"], params["window"]))
