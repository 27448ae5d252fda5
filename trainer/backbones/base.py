"""What every backbone offers the critic: a picklable batch processor and token features.

A backbone turns (image, prompt) items into `TokenFeatures`: per chosen layer, visual tokens and text
tokens with padding masks. The fusion head only sees these, so any model that can expose token states
(a VLM's LM layers, CLIP towers, a CNN + a text encoder) plugs in as one registered class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from trainer.backbones.lora import apply_lora, lora_modules
from trainer.config import LoraOptions


@dataclass
class TokenFeatures:
    """`visual[l]`: [B, N, D_l], `text[l]`: [B, T, D_l]; masks are True on real (non-padding) tokens.
    `similarity` [B]: the backbone's own image-text cosine, from backbones with a shared space
    (`provides_similarity`)."""

    visual: list[Tensor]
    text: list[Tensor]
    visual_mask: Tensor
    text_mask: Tensor
    similarity: Tensor | None = None
    image_embedding: Tensor | None = None
    """[B, E] unit image embeddings in the shared space (`similarity` is their dot product with
    `text_embedding`); set by dual towers so `combine` can recompute the similarity of new combinations."""
    text_embedding: Tensor | None = None

    def cross(self, images: TokenFeatures, texts: Sequence[int]) -> TokenFeatures:
        """Features of every (text `texts[b]` of `self`, image `r` of `images`) combination, text-major:
        item `b * R + r`."""
        count = len(images.visual_mask)
        text_index = torch.as_tensor(list(texts), dtype=torch.long, device=self.text_mask.device).repeat_interleave(count)
        image_index = torch.arange(count, device=images.visual_mask.device).repeat(len(texts))
        return self.combine(images, text_index, image_index)

    def combine(self, images: TokenFeatures, text_index: Tensor, image_index: Tensor) -> TokenFeatures:
        """Features of the items (text `text_index[c]` of `self`, image `image_index[c]` of `images`).
        Valid for dual towers only, whose visual tokens do not depend on the text (`Backbone.separable`)."""
        similarity = None
        if self.similarity is not None:
            if images.image_embedding is None or self.text_embedding is None:
                raise ValueError("these features carry a similarity but no unit embeddings to recombine it from")
            similarity = (images.image_embedding[image_index] * self.text_embedding[text_index]).sum(-1)
        return TokenFeatures(
            visual=[tokens[image_index] for tokens in images.visual],
            text=[tokens[text_index] for tokens in self.text],
            visual_mask=images.visual_mask[image_index],
            text_mask=self.text_mask[text_index],
            similarity=similarity,
            image_embedding=None if images.image_embedding is None else images.image_embedding[image_index],
            text_embedding=None if self.text_embedding is None else self.text_embedding[text_index],
        )


def check_images(images: Sequence[np.ndarray]) -> None:
    """Refuse what a processor would silently misread (grey, RGBA, 16-bit, float)."""
    for index, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"image {index}: expected a uint8 RGB array of shape (H, W, 3), got {got}")


def prepare_inputs(processor: Any, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, Tensor]:
    """Checked images and prompts through a batch processor: model inputs as tensors."""
    check_images(images)
    return processor(list(images), list(prompts))


class Backbone(nn.Module, ABC):
    """Base of all backbones. Subclasses set `processor`, `visual_dims`, `text_dims` in `__init__`.

    `processor(images, prompts)` returns the model inputs as tensors; it is a plain picklable object so
    data-loader workers can run it without a copy of the weights.
    """

    name: ClassVar[str]
    processor: Any
    visual_dims: list[int]
    text_dims: list[int]
    provides_similarity: bool = False
    """Whether `forward` fills `TokenFeatures.similarity` (a head with `similarity: true` needs it)."""
    separable: ClassVar[bool] = False
    """Whether visual tokens are computed without the text (separate towers), so features of one
    batch's images can be joined with another batch's texts (`TokenFeatures.combine`, `TokenFeatures.cross`)."""

    def prepare(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, Tensor]:
        return prepare_inputs(self.processor, images, prompts)

    def preprocess_images(self, images: Sequence[np.ndarray]) -> Tensor:
        check_images(images)
        return self.processor.images(list(images))

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        return self.processor.texts(list(texts))

    @property
    def image_processor(self) -> Any:
        return self.processor.image_processor

    @abstractmethod
    def forward(self, **inputs: Tensor) -> TokenFeatures:
        """Token features of the chosen layers for a prepared batch."""

    def add_lora(self, options: LoraOptions) -> None:
        """Wrap the Hugging Face submodules named by `lora_targets` with peft LoRA adapters."""
        for attribute in self.lora_targets:
            setattr(self, attribute, apply_lora(getattr(self, attribute), options))

    lora_targets: ClassVar[tuple[str, ...]] = ()

    def peft_modules(self) -> dict[str, nn.Module]:
        return lora_modules(self)

    def new_parameter_names(self) -> list[str]:
        """Parameters created here rather than loaded pretrained (projections): saved with the head."""
        return []

    def set_trainable(self, train_backbone: bool) -> None:
        """Freeze everything pretrained; LoRA adapters and new parameters follow `train_backbone`."""
        new = set(self.new_parameter_names())
        for name, parameter in self.named_parameters():
            parameter.requires_grad = train_backbone and ("lora_" in name or name in new)
        self.train(self.training)

    def train(self, mode: bool = True) -> Backbone:
        """Pretrained weights stay frozen, so batch-norm statistics and dropout stay in eval mode
        unless LoRA is being trained (then dropout inside the adapters matters)."""
        super().train(mode and any(p.requires_grad for p in self.parameters()))
        return self


class DualTowerBackbone(Backbone):
    """A backbone with separate image and text towers and pooled embeddings in a shared space.

    `text_input_embeddings` + `encode_text_embeddings` let a caller splice learnable context vectors
    into the token embeddings (CoOp-style prompt learning) on any dual-tower backbone.
    """

    separable = True

    @abstractmethod
    def encode_image(self, pixel_values: Tensor) -> Tensor:
        """Pooled image embeddings [B, E]."""

    @abstractmethod
    def text_input_embeddings(self, input_ids: Tensor) -> Tensor:
        """Token embeddings [B, T, D] (before position embeddings) as the text tower consumes them."""

    @abstractmethod
    def encode_text_embeddings(self, embeds: Tensor, attention_mask: Tensor) -> Tensor:
        """Pooled text embeddings [B, E] from token embeddings [B, T, D]."""

    def encode_text(self, tokens: dict[str, Tensor]) -> Tensor:
        embeds = self.text_input_embeddings(tokens["input_ids"])
        return self.encode_text_embeddings(embeds, tokens["attention_mask"])


def select_layers(hidden_states: Sequence[Tensor], layers: Sequence[int]) -> list[Tensor]:
    """Pick hidden states by index (negative counts from the last); a bad index names the range."""
    count = len(hidden_states)
    for layer in layers:
        if not -count <= layer < count:
            raise ValueError(f"layer {layer} does not exist; this model has hidden states 0..{count - 1}")
    return [hidden_states[layer] for layer in layers]


def full_mask(tokens: Tensor) -> Tensor:
    return torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
