"""Variance of the Laplacian: a plain sharpness statistic, the floor a learned critic must beat.

It has no notion of a prompt, so the same number is reported for quality and alignment (on
AGIQA-3K, blurry low-effort generations also tend to miss the prompt, hence a non-zero SRCC there).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from trainer.baselines import register_baseline


def laplacian_variance(image: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of the 8-bit grey image (higher = sharper)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


class LaplacianScorer:
    def score(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, np.ndarray]:
        values = np.array([laplacian_variance(image) for image in images])
        return {"quality": values, "alignment": values}


@register_baseline("laplacian")
def make_laplacian() -> LaplacianScorer:
    return LaplacianScorer()
