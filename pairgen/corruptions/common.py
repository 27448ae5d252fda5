"""Helpers shared by several corruptions: float conversion, colour spaces, kernels, tone curves."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from scipy.interpolate import CubicSpline

KADID_SHORT_SIDE = 384
"""KADID-10k images are 512x384; its pixel-sized parameters are meant for that size."""


def pixel_scale(image: np.ndarray, params: dict[str, Any]) -> float:
    """Factor for pixel-sized KADID parameters on larger images (recorded; never shrinks).

    A 6 px lens blur is strong on KADID's 384 px short side but faint on a 1024 px AI image, so
    pixel sizes grow with `min(h, w) / 384`. Smaller images keep the published pixel values.
    """
    scale = max(1.0, min(image.shape[:2]) / KADID_SHORT_SIDE)
    params["pixel_scale"] = round(scale, 4)
    return scale


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in 0..1."""
    return image.astype(np.float32) * np.float32(1 / 255)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float32 in 0..1 (any range; clipped) -> rounded uint8."""
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def from_255(x: np.ndarray) -> np.ndarray:
    """float in 0..255 (clipped) -> rounded uint8."""
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def to_lab(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIELAB (L 0..100, a/b roughly -128..127)."""
    return cv2.cvtColor(to_float(image), cv2.COLOR_RGB2Lab)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float32 CIELAB -> uint8 RGB (out-of-gamut colours clipped)."""
    return to_uint8(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB))


def apply_lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per-value lookup (0..1 float curve sampled at 256 points) on a uint8 image."""
    return cv2.LUT(image, to_uint8(table))


def spline_curve(x_points: tuple[float, ...], y_points: tuple[float, ...]) -> np.ndarray:
    """MATLAB-style (not-a-knot) tone curve through control points, sampled at 256 values, clipped.

    Three points give the parabola MATLAB's `spline` returns for three points.
    """
    grid = np.linspace(0.0, 1.0, 256)
    if len(x_points) == 3:
        curve = np.polyval(np.polyfit(x_points, y_points, 2), grid)
    else:
        curve = CubicSpline(x_points, y_points, bc_type="not-a-knot")(grid)
    return np.clip(curve, 0.0, 1.0).astype(np.float32)


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with replicated borders (the MATLAB `imfilter(..., 'replicate')` convention)."""
    return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def smooth_blur(x: np.ndarray, sigma: float, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
    """Gaussian blur for large sigmas, computed on a copy reduced by ~sigma/2 and upsampled.

    A wide Gaussian leaves nothing above the reduced copy's Nyquist rate, so the result matches a
    full-resolution blur closely at a fraction of the cost.
    """
    factor = max(1, int(sigma // 2))
    if factor == 1:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=border)
    height, width = x.shape[:2]
    small = cv2.resize(x, (max(1, width // factor), max(1, height // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=border)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def filter_image(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate every channel with `kernel`, replicated borders; uint8 stays uint8 (rounded)."""
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE)


@lru_cache(maxsize=64)
def disk_kernel(radius: float) -> np.ndarray:
    """Anti-aliased disk of `radius` px (pixel coverage by 8x supersampling), normalised to sum 1."""
    half = int(np.ceil(radius))
    sub = 8
    coords = (np.arange((2 * half + 1) * sub) + 0.5) / sub - (half + 0.5)
    inside = (coords[None, :] ** 2 + coords[:, None] ** 2) <= radius**2
    kernel = inside.reshape(2 * half + 1, sub, 2 * half + 1, sub).mean(axis=(1, 3)).astype(np.float32)
    return kernel / kernel.sum()


def line_kernel(taps: np.ndarray, weights: np.ndarray, angle_deg: float) -> np.ndarray:
    """Kernel with `weights[i]` at distance `taps[i]` px along `angle_deg` (bilinear splats).

    Used for motion blur (uniform weights, centred taps) and the ImageNet-C snow streaks.
    """
    theta = np.deg2rad(angle_deg)
    dx, dy = taps * np.cos(theta), -taps * np.sin(theta)
    half = int(np.ceil(np.abs(taps).max())) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float32)
    x0, y0 = np.floor(dx).astype(int), np.floor(dy).astype(int)
    fx, fy = dx - x0, dy - y0
    for ox, oy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + oy + half, x0 + ox + half), weights * w)
    return kernel / kernel.sum()


def random_angle(rng: np.random.Generator, params: dict[str, Any], low: float = 0.0, high: float = 180.0) -> float:
    """Draw and record an angle in degrees."""
    angle = float(rng.uniform(low, high))
    params["angle"] = round(angle, 3)
    return angle
