"""Region masks for AIGC structure artifacts: a random ellipse or the most salient blob,
covering a given fraction of the image, with feathered edges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pairgen.corruptions.common import smooth_blur

MAP_SIDE = 64  # saliency is computed on a map with this short side
FEATHER = 0.06  # feather sigma as a fraction of the region's equivalent diameter
REGION_KINDS = ("ellipse", "saliency")


@dataclass(frozen=True)
class Region:
    """A region: `hard` (bool) is the shape, `soft` (float32 0..1) its feathered version,
    `box` = (y0, y1, x0, x1) bounds `soft`, `record` is JSON-able."""

    hard: np.ndarray
    soft: np.ndarray
    box: tuple[int, int, int, int]
    record: dict[str, Any]

    @property
    def diameter(self) -> float:
        """Diameter of the disk with the region's area (the artifact's length scale)."""
        return equivalent_diameter(self.hard)


def equivalent_diameter(hard: np.ndarray) -> float:
    return float(2 * np.sqrt(hard.sum() / np.pi))


def saliency_map(image: np.ndarray) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) on a small gray map, smoothed."""
    height, width = image.shape[:2]
    scale = MAP_SIDE / min(height, width)
    size = (max(MAP_SIDE, round(width * scale)), max(MAP_SIDE, round(height * scale)))
    gray = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA).astype(np.float32)
    spectrum = np.fft.fft2(gray)
    log_amplitude = np.log(np.abs(spectrum) + 1e-6).astype(np.float32)
    residual = log_amplitude - cv2.blur(log_amplitude, (3, 3))
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    return cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), MAP_SIDE / 16)


def _salient_blob(image: np.ndarray, fraction: float) -> np.ndarray:
    """The connected above-threshold blob around the saliency peak, grown until it covers `fraction`."""
    saliency = saliency_map(image)
    peak = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    ranked = np.sort(saliency, axis=None)[::-1]
    blob = np.zeros(saliency.shape, np.uint8)
    for share in np.linspace(fraction, min(1.0, 4 * fraction), 12):
        threshold = ranked[min(len(ranked) - 1, int(share * len(ranked)))]
        _, labels = cv2.connectedComponents((saliency >= threshold).astype(np.uint8))
        blob = (labels == labels[peak]).astype(np.float32)
        if blob.mean() >= fraction:
            break
    soft = cv2.resize(blob, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    return soft > 0.5


def _ellipse(shape: tuple[int, int], fraction: float, draws: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """Filled ellipse of `fraction` of the area; `draws` (4 uniforms) set aspect, angle and centre."""
    height, width = shape
    ratio = 0.5 + 0.5 * draws[0]
    semi_major = np.sqrt(fraction * height * width / (np.pi * ratio))
    semi_minor = ratio * semi_major
    angle = 180.0 * draws[1]
    reach = min(semi_major, min(height, width) / 2)
    centre = (reach + draws[2] * (width - 2 * reach), reach + draws[3] * (height - 2 * reach))
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (centre, (2 * semi_major, 2 * semi_minor), angle), 1, -1)
    record.update(centre=[round(c, 1) for c in centre], axes=[round(semi_major, 1), round(semi_minor, 1)], angle=round(angle, 2))
    return mask.astype(bool)


def region_mask(image: np.ndarray, fraction: float, rng: np.random.Generator, kind: str | None = None) -> Region:
    """A region covering about `fraction` of `image`: an ellipse or the salient blob (drawn if `kind` is None)."""
    draws = rng.random(5)
    kind = kind or REGION_KINDS[int(draws[0] * len(REGION_KINDS))]
    record: dict[str, Any] = {"kind": kind}
    if kind == "ellipse":
        hard = _ellipse(image.shape[:2], fraction, draws[1:], record)
    elif kind == "saliency":
        hard = _salient_blob(image, fraction)
    else:
        raise ValueError(f"region kind must be one of {REGION_KINDS}, got {kind!r}")
    if not hard.any():  # degenerate saliency (flat image): fall back to a centred ellipse
        hard = _ellipse(image.shape[:2], fraction, np.full(4, 0.5), record)
    record["area"] = round(float(hard.mean()), 4)
    sigma = max(1.0, FEATHER * equivalent_diameter(hard))
    x, y, w, h = cv2.boundingRect(hard.astype(np.uint8))
    margin = int(np.ceil(3 * sigma))
    height, width = hard.shape
    box = (max(0, y - margin), min(height, y + h + margin), max(0, x - margin), min(width, x + w + margin))
    soft = np.zeros(hard.shape, np.float32)  # feathering only needs the box plus 3 sigma
    y0, y1, x0, x1 = box
    soft[y0:y1, x0:x1] = np.clip(smooth_blur(hard[y0:y1, x0:x1].astype(np.float32), sigma, cv2.BORDER_CONSTANT), 0, 1)
    return Region(hard=hard, soft=soft, box=box, record=record)
