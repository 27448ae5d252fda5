"""KADID-10k compression distortions (group `compression`), through the real codecs."""

from __future__ import annotations

import io
import os
from typing import Any

import cv2
import numpy as np
from PIL import Image

from pairgen.corruptions.base import Corruption, register

# OpenJPEG reads this when a codec is created; two threads halve JPEG2000 encoding time.
os.environ.setdefault("OPJ_NUM_THREADS", "2")


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode/decode with libjpeg (4:2:0, like most cameras and web encoders)."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@register
class Jpeg2000(Corruption):
    """JPEG2000 at a fixed compression ratio (OpenJPEG via Pillow, lossy 9/7 wavelet)."""

    name = "jpeg2000"
    group = "compression"
    levels = {"ratio": (16, 32, 45, 120, 400)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(
            buffer, format="JPEG2000", quality_mode="rates", quality_layers=[params["ratio"]], irreversible=True
        )
        buffer.seek(0)
        return np.asarray(Image.open(buffer).convert("RGB"))


@register
class Jpeg(Corruption):
    """Baseline JPEG at the given quality."""

    name = "jpeg"
    group = "compression"
    levels = {"quality": (43, 36, 24, 7, 4)}

    def _apply(self, image: np.ndarray, params: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
        return jpeg_roundtrip(image, params["quality"])
