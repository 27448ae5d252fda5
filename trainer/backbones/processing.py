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


# ----------------------------------------------------------------------------- Hugging Face processors


def load_hf_processor(model: str, **kwargs: Any) -> Any:
    """`AutoProcessor.from_pretrained(model)`, or without its video sub-processor where torchvision is
    missing.

    Several image-text-to-text processors (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision, ...) hold a video
    processor, and in transformers 5 every video processor needs torchvision, so `AutoProcessor` raises
    ImportError without it although the image processor falls back to a PIL implementation (e.g.
    `Qwen2VLImageProcessorPil`). Training and scoring here never pass videos, so the same processor
    class is loaded with its `video_processor` attribute left out (see `without_video_processor`).
    """
    from transformers import AutoConfig, AutoProcessor
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
    from transformers.utils import is_torchvision_available

    try:
        return AutoProcessor.from_pretrained(model, **kwargs)
    except ImportError:
        if is_torchvision_available():
            raise
        config = AutoConfig.from_pretrained(model)
        if type(config) not in PROCESSOR_MAPPING:
            raise
        cls = PROCESSOR_MAPPING[type(config)]
        if "video_processor" not in cls.get_attributes():
            raise
        return without_video_processor(cls).from_pretrained(model, **kwargs)


_IMAGE_ONLY: dict[type, type] = {}


def without_video_processor(cls: type) -> type:
    """A subclass of the processor class `cls` whose sub-processors are all but `video_processor`.

    `ProcessorMixin` takes its sub-processors from `get_attributes()`, checks each one's class, and
    only touches `video_processor` when videos are passed (`hasattr` guards), so leaving it out gives
    the model's own text/image processing (chat template, image-token expansion, grid sizes) without
    torchvision. The subclass keeps `cls.__name__`, so `save_pretrained` writes the real
    `processor_class`; instances pickle as (the real class, their state) and unpickle into this subclass.
    """
    if cls not in _IMAGE_ONLY:

        def get_attributes(klass: type) -> list[str]:
            return [name for name in cls.get_attributes() if name != "video_processor"]

        def __reduce__(self: Any) -> tuple:
            return _rebuild_without_video, (cls, self.__dict__)

        _IMAGE_ONLY[cls] = type(cls.__name__, (cls,), {"get_attributes": classmethod(get_attributes), "__reduce__": __reduce__,
                                                       "__module__": cls.__module__})
    return _IMAGE_ONLY[cls]


def _rebuild_without_video(cls: type, state: dict[str, Any]) -> Any:
    processor = object.__new__(without_video_processor(cls))
    processor.__dict__.update(state)
    return processor
