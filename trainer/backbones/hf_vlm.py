"""`hf-vlm`: any Hugging Face image-text-to-text model (`AutoModelForImageTextToText` + `AutoProcessor`).

For scoring, each (image, prompt) becomes one chat turn (an image and an instruction naming the
prompt); the language model's hidden states at chosen layers are split into visual tokens (positions
of the image placeholder token) and text tokens (the rest). For instruction tuning the same processor
builds conversations with labels on the answer only, and the model's LM head gives the loss.

Nothing here assumes one image layout: the processor's outputs go to the model as they are, so
fixed-size models (LLaVA: `pixel_values` [B, C, H, W], a fixed token count) and dynamic-resolution
ones (Qwen2.5-VL: flattened patches of all images + `image_grid_thw`, a token count per image) both
work; visual tokens are found by the image token id and padded per row. Tested on tiny random LLaVA
and Qwen2.5-VL models (`trainer.tiny_models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from peft import PeftModel
from torch import Tensor
from transformers import AutoConfig, AutoModelForImageTextToText

from trainer.backbones.base import Backbone, TokenFeatures, check_images, select_layers
from trainer.backbones.processing import load_hf_processor
from trainer.backbones.registry import register_backbone
from trainer.instructions import Conversation
from trainer.losses import lm_loss

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEFAULT_INSTRUCTION = "Rate the visual quality of this image and how well it matches the prompt '{prompt}'."


def user_turn(question: str, images: int) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image"}] * images + [{"type": "text", "text": question}]}


@dataclass(frozen=True)
class VLMProcessor:
    """Chat-formats prompts with the model's own template and runs the model's own processor."""

    hf_processor: Any
    instruction: str

    @property
    def image_processor(self) -> Any:
        return self.hf_processor.image_processor

    def _chat(self, messages: list[dict[str, Any]], generation: bool) -> str:
        return self.hf_processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)

    def images(self, images: list[np.ndarray]) -> Tensor:
        return self.image_processor(images=images, return_tensors="pt")["pixel_values"]

    def texts(self, texts: list[str]) -> dict[str, Tensor]:
        return dict(self.hf_processor.tokenizer(texts, padding=True, return_tensors="pt"))

    def __call__(self, images: list[np.ndarray], prompts: list[str]) -> dict[str, Tensor]:
        texts = [self._chat([user_turn(self.instruction.format(prompt=p), 1)], True) for p in prompts]
        return dict(self.hf_processor(text=texts, images=images, padding=True, return_tensors="pt"))

    def conversations(self, conversations: Sequence[Conversation]) -> dict[str, Tensor]:
        """Inputs with `labels`: -100 everywhere except the answer tokens (right padding)."""
        prompts, fulls, images = [], [], []
        for conv in conversations:
            check_images(conv.images)
            user = user_turn(conv.question, len(conv.images))
            prompts.append(self._chat([user], True))
            fulls.append(self._chat([user, {"role": "assistant", "content": [{"type": "text", "text": conv.answer}]}], False))
            images.extend(conv.images)
        self.hf_processor.tokenizer.padding_side = "right"
        batch = dict(self.hf_processor(text=fulls, images=images, padding=True, return_tensors="pt"))
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = -100
        start = 0
        for row, (conv, prompt) in enumerate(zip(conversations, prompts, strict=True)):
            own = images[start : start + len(conv.images)]
            start += len(conv.images)
            prefix = self.hf_processor(text=[prompt], images=own, return_tensors="pt")["input_ids"].shape[1]
            labels[row, :prefix] = -100
        batch["labels"] = labels
        return batch


def gather_tokens(hidden: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The positions where `mask` is True, left-aligned and padded: ([B, M, D], valid [B, M])."""
    count = int(mask.sum(1).max().item()) if mask.any() else 1
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :count]
    tokens = torch.gather(hidden, 1, order.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
    return tokens, torch.gather(mask, 1, order)


@register_backbone("hf-vlm")
class HFVLM(Backbone):
    lora_targets = ("model",)

    def __init__(
        self,
        model: str,
        layers: Sequence[int] = (-1, -8),
        dtype: str = "float32",
        random_init: bool = False,
        instruction: str = DEFAULT_INSTRUCTION,
        attn_implementation: str | None = None,
        processor_options: dict[str, Any] | None = None,
    ):
        """`processor_options` go to the processor's `from_pretrained`, e.g. `{size: {shortest_edge: 3136,
        longest_edge: 200704}}` (min/max pixels) to cap the image tokens of a dynamic-resolution model
        (Qwen2-VL family: one token per 28x28 pixels)."""
        super().__init__()
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        if random_init:  # a real architecture with random weights: benchmarks, never training runs
            config = AutoConfig.from_pretrained(model)
            self.model = AutoModelForImageTextToText.from_config(config, dtype=DTYPES[dtype], **kwargs)
        else:
            self.model = AutoModelForImageTextToText.from_pretrained(model, dtype=DTYPES[dtype], **kwargs)
        self.processor = VLMProcessor(load_hf_processor(model, **(processor_options or {})), instruction)
        config = self.model.config
        self.image_token_id = getattr(config, "image_token_id", None) or config.image_token_index
        self.layers = list(layers)
        hidden = config.text_config.hidden_size
        self.visual_dims = [hidden] * len(self.layers)
        self.text_dims = [hidden] * len(self.layers)

    def base_model(self) -> torch.nn.Module:
        """The VLM without the LM head (LoRA layers, when added, are inside it)."""
        model = self.model.get_base_model() if isinstance(self.model, PeftModel) else self.model
        return model.model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **inputs: Tensor) -> TokenFeatures:
        out = self.base_model()(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **inputs)
        states = select_layers(out.hidden_states, self.layers)
        image = input_ids == self.image_token_id
        text = attention_mask.bool() & ~image
        visual = [gather_tokens(h, image) for h in states]
        words = [gather_tokens(h, text) for h in states]
        return TokenFeatures([v for v, _ in visual], [w for w, _ in words], visual[0][1], words[0][1])

    def lm_loss(self, batch: dict[str, Tensor]) -> Tensor:
        labels = batch["labels"]
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return lm_loss(self.model(**inputs).logits, labels)
