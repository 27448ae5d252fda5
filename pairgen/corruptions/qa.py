"""Full-reference measures for the no-op filter: a negative must differ perceptibly from its positive."""

from __future__ import annotations

import cv2
import numpy as np

_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all channels (inf for identical images)."""
    mse = float(np.mean((reference.astype(np.float32) - image.astype(np.float32)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    """Mean SSIM over RGB channels with the Gaussian window of Wang et al. (sigma 1.5).

    Same definition as `skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=2)`, but with cv2 filters
    (several times faster, which matters because every negative is checked).
    """
    x, y = reference.astype(np.float32), image.astype(np.float32)

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    den = (mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2)
    pad = 5  # skimage crops the window radius at each border before averaging
    return float((num / den)[pad:-pad, pad:-pad].mean())
