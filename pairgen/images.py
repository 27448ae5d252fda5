"""Image input checks shared by every stage: one place decides what an acceptable image is.

Every corruption, scorer and writer works on uint8 RGB `HxWx3` arrays. `as_rgb_uint8` converts the
inputs that have one obvious meaning (grayscale, RGBA, 16-bit, PIL images) and refuses the rest
with a message that says what was received and what to do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_SIDE = 32
"""Smallest accepted height/width: below it windowed filters and 8x8 JPEG blocks are meaningless."""


def _composite_alpha(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Flatten transparency onto white (how viewers show transparent AI images on a page)."""
    a = alpha.astype(np.float32)[..., None] / np.float32(np.iinfo(alpha.dtype).max)
    white = np.float32(np.iinfo(color.dtype).max)
    return (color.astype(np.float32) * a + white * (1.0 - a)).round().astype(color.dtype)


def as_rgb_uint8(image: Any, name: str = "image") -> np.ndarray:
    """Return `image` as a C-contiguous uint8 RGB `HxWx3` array, converting or refusing.

    Converted: grayscale (`HxW`, `HxWx1`), gray+alpha and RGBA (composited onto white), uint16
    (scaled by 257), bool, and anything with `__array__` such as a PIL image. Refused with a
    ValueError/TypeError naming `name`: floats (0..1 or 0..255 is ambiguous), other integer types,
    other channel counts, and images smaller than 32 px on a side. A valid uint8 RGB input is
    returned without copying, so callers must not write into the result.
    """
    if not isinstance(image, np.ndarray):
        if not hasattr(image, "__array__") and not hasattr(image, "__array_interface__"):
            raise TypeError(f"{name}: expected a numpy array or PIL image, got {type(image).__name__}")
        image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"{name}: expected HxW or HxWxC array, got shape {image.shape}")
    height, width, channels = image.shape
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"{name}: {height}x{width} px is too small; at least {MIN_SIDE}x{MIN_SIDE} px required")

    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * np.uint8(255)
    elif np.issubdtype(image.dtype, np.floating):
        raise TypeError(
            f"{name}: float images ({image.dtype}) are ambiguous (0..1 or 0..255); convert to uint8 first"
        )
    elif image.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"{name}: unsupported dtype {image.dtype}; expected uint8 or uint16")

    if channels == 2:
        image = _composite_alpha(image[..., :1], image[..., 1])
    elif channels == 4:
        image = _composite_alpha(image[..., :3], image[..., 3])
    elif channels not in (1, 3):
        raise ValueError(f"{name}: expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels, got {channels}")

    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)
