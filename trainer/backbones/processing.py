"""Picklable batch processors: (uint8 RGB images, prompts) -> model input tensors.

They hold only tokenizers and image settings, never weights, so webdataset workers can run them and
the main process receives ready tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class ResizeNormalize:
    """Square resize (area interpolation when shrinking) and per-channel normalisation, for CNN towers."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, images: Sequence[np.ndarray]) -> Tensor:
        batch = np.stack([_resize(image, self.size) for image in images]).astype(np.float32)
        batch = (batch - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    shrinking = min(image.shape[:2]) > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


@dataclass(frozen=True)
class HFImages:
    """A Hugging Face image processor called on a list of arrays."""

    image_processor: Any

    def __call__(self, images: Sequence[np.ndarray]) -> Tensor:
        return self.image_processor(images=list(images), return_tensors="pt")["pixel_values"]


@dataclass(frozen=True)
class DualTowerProcessor:
    """Images through `image_fn`, prompts through the tower's tokenizer (padded, truncated)."""

    image_fn: Any
    tokenizer: Any
    max_length: int

    @property
    def image_processor(self) -> Any:
        return getattr(self.image_fn, "image_processor", self.image_fn)

    def images(self, images: list[np.ndarray]) -> Tensor:
        return self.image_fn(images)

    def texts(self, texts: list[str]) -> dict[str, Tensor]:
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}

    def __call__(self, images: list[np.ndarray], prompts: list[str]) -> dict[str, Tensor]:
        return {"pixel_values": self.images(images), **self.texts(prompts)}
