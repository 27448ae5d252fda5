"""Detail statistics: what a 224-px image tower cannot see, measured on the image itself.

A CNN or ViT tower looks at the image squashed to its input size (224 px for the offline dual
encoder), which averages away most of what separates a crisp generation from a soft, noisy or
washed-out one: fine texture, noise, contrast, clipped highlights. A few classical statistics of the
image at a fixed working size keep that information. `DetailConfig` on the head turns them on: the
processor appends them to every batch as `detail` [B, len(DETAIL_FEATURES)] and the head conditions
its queries on them, so training on pairs decides how they count (blur lowers the Laplacian, noise
raises it; only the pairs say which direction means "better").

The working size matters: statistics of the same picture differ with its resolution, and training
pairs and benchmark images come at different sizes, so every image is first shrunk (never enlarged)
to the same longer side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

DETAIL_FEATURES = (
    "laplacian_var_full",  # log1p(variance of the 3x3 Laplacian): fine detail / sharpness
    "laplacian_var_half",  # the same one octave down: detail that survives a 2x reduction
    "laplacian_var_quarter",  # and two octaves down: structure rather than texture
    "gradient_mean",  # log1p(mean Sobel gradient magnitude): edge strength
    "noise_sigma",  # log1p(Immerkaer's noise estimate): high-frequency noise
    "contrast",  # grey standard deviation / 128
    "brightness",  # grey mean / 255
    "colourfulness",  # Hasler-Suesstrunk colourfulness / 100
    "clipped",  # share of grey pixels at 0-2 or 253-255 (blown out or crushed)
)

# Immerkaer (1996), "Fast noise variance estimation": the difference of two Laplacians cancels
# image structure to second order and leaves the noise.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_LOG_SCALE = 10.0  # log1p of the statistics above is at most ~14 for 8-bit images: inputs stay within ~[0, 1.4]


def _laplacian_var(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def detail_statistics(image: np.ndarray, side: int) -> np.ndarray:
    """The `DETAIL_FEATURES` of one uint8 RGB image, after shrinking its longer side to `side`."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    half = cv2.pyrDown(grey) if min(grey.shape) >= 2 else grey
    quarter = cv2.pyrDown(half) if min(half.shape) >= 2 else half
    gradient = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    noise = float(np.sqrt(np.pi / 2) * np.abs(cv2.filter2D(grey, -1, _NOISE_KERNEL)[1:-1, 1:-1]).mean() / 6) if min(grey.shape) > 2 else 0.0
    rgb = image.astype(np.float32)
    red_green = rgb[..., 0] - rgb[..., 1]
    yellow_blue = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourfulness = np.hypot(red_green.std(), yellow_blue.std()) + 0.3 * np.hypot(red_green.mean(), yellow_blue.mean())
    logs = np.log1p([_laplacian_var(grey), _laplacian_var(half), _laplacian_var(quarter), float(gradient.mean()), noise]) / _LOG_SCALE
    plain = [grey.std() / 128.0, grey.mean() / 255.0, colourfulness / 100.0, float(((grey <= 2) | (grey >= 253)).mean())]
    return np.concatenate([logs, plain]).astype(np.float32)


@dataclass(frozen=True)
class DetailStatistics:
    """Batch form of `detail_statistics`: uint8 RGB images -> [B, len(DETAIL_FEATURES)] float32."""

    side: int

    def __call__(self, images: Sequence[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.stack([detail_statistics(image, self.side) for image in images]))


@dataclass(frozen=True, eq=False)
class WithDetail:
    """A backbone processor plus `detail` statistics in every batch it prepares.

    Picklable like the processor it wraps, so data-loader workers compute the statistics next to the
    pixels. Everything else (`images`, `texts`, `conversations`, ...) is the wrapped processor's.
    """

    processor: Any
    statistics: DetailStatistics

    def __call__(self, images: list[np.ndarray], prompts: list[str]) -> dict[str, Tensor]:
        return {**self.processor(images, prompts), "detail": self.statistics(images)}

    def __getattr__(self, name: str) -> Any:
        if name in ("processor", "statistics"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.processor, name)
