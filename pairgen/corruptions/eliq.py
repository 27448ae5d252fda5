"""ELIQ's technical-quality recipe: Gaussian sensor-like noise, then repeated JPEG re-compression
(the generation loss of images that are saved, shared and re-saved)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pairgen.corruptions.base import Corruption, register
from pairgen.corruptions.common import from_255
from pairgen.corruptions.compression import jpeg_roundtrip

QUALITY_JITTER = 5  # each re-save draws its quality within +-5 of the level's quality (recorded)


@register
class EliqJpegNoise(Corruption):
    """Noise of std `noise_std` (0..255 scale), then `rounds` JPEG saves around `quality`."""

    name = "eliq_jpeg_noise"
    group = "compression"
    levels = {
        "noise_std": (2.0, 3.0, 5.0, 7.0, 10.0),
        "rounds": (2, 2, 3, 3, 4),
        "quality": (60, 50, 40, 30, 20),
    }

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(params["noise_std"])
        jitter = rng.integers(-QUALITY_JITTER, QUALITY_JITTER + 1, size=self.levels["rounds"][-1])
        qualities = [int(max(2, params["quality"] + j)) for j in jitter[: params["rounds"]]]
        params["qualities"] = qualities
        out = from_255(image + noise)
        for quality in qualities:
            out = jpeg_roundtrip(out, quality)
        return out
