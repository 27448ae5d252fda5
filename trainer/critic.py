"""The critic: a backbone's token features -> gated fusion + QQT -> quality and alignment scores.

A checkpoint folder holds `critic.json` (the `CriticConfig`, enough to rebuild the model),
`model.safetensors` (the weights that are not pretrained: head and new backbone projections) and
`adapters/<module>/` (peft LoRA adapters in peft's own layout). Pretrained backbone weights are
loaded from where the config names them, so checkpoints stay small.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from pairgen.config_base import validate_config
from trainer.backbones import get_backbone
from trainer.backbones.base import prepare_inputs
from trainer.backbones.lora import load_adapters, save_adapters
from trainer.config import CriticConfig
from trainer.detail import DetailStatistics, WithDetail
from trainer.heads import build_head

CONFIG_NAME = "critic.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTERS_DIR = "adapters"


class Critic(nn.Module):
    def __init__(self, config: CriticConfig):
        super().__init__()
        self.config = config
        self.backbone = get_backbone(config.backbone.name, **config.backbone.options)
        if config.backbone.lora is not None:
            self.backbone.add_lora(config.backbone.lora)
        self.backbone.set_trainable(False)
        if config.head.similarity and not self.backbone.provides_similarity:
            raise ValueError(
                f"head.similarity needs a backbone with a shared image-text space; {config.backbone.name!r} with options "
                f"{config.backbone.options} has none (the dual encoder has one with shared_space: imagenet-concepts)"
            )
        self.head = build_head(self.backbone.visual_dims, self.backbone.text_dims, config.head)
        detail = config.head.detail
        self.processor = self.backbone.processor if detail is None else WithDetail(self.backbone.processor, DetailStatistics(detail.side))
        """Picklable (images, prompts) -> model inputs, for data-loader workers: the backbone's, plus
        the detail statistics when the head uses them."""

    def prepare(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, Tensor]:
        return prepare_inputs(self.processor, images, prompts)

    def forward(self, labels: Tensor | None = None, detail: Tensor | None = None, **inputs: Tensor) -> dict[str, Tensor]:
        """Scores, or with `labels` the backbone's LM loss (instruction stage); one entry point so
        DistributedDataParallel sees both."""
        if labels is not None:
            return {"lm_loss": self.backbone.lm_loss({**inputs, "labels": labels})}
        return self.head(self.backbone(**inputs), detail)

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    @torch.no_grad()
    def score(self, images: Sequence[np.ndarray], prompts: Sequence[str], batch_size: int = 32) -> dict[str, Tensor]:
        """Scores for (image, prompt) items, in eval mode, as CPU float tensors [B]."""
        if len(images) != len(prompts):
            raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
        was_training = self.training
        self.eval()
        out: dict[str, list[Tensor]] = {"quality": [], "alignment": []}
        try:
            for start in range(0, len(images), batch_size):
                inputs = self.prepare(images[start : start + batch_size], prompts[start : start + batch_size])
                scores = self(**{k: v.to(self.device) for k, v in inputs.items()})
                for name in out:
                    out[name].append(scores[name].float().cpu())
        finally:
            self.train(was_training)
        return {name: torch.cat(parts) if parts else torch.empty(0) for name, parts in out.items()}

    def own_state(self) -> dict[str, Tensor]:
        """Weights saved in `model.safetensors`: the head and the backbone's new parameters."""
        new = {f"backbone.{name}" for name in self.backbone.new_parameter_names()}
        return {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items() if k.startswith("head.") or k in new}

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config.model_dump(mode="json"), indent=1), encoding="utf-8")
        save_file(self.own_state(), str(directory / WEIGHTS_NAME))
        save_adapters(self.backbone, directory / ADAPTERS_DIR)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Critic:
        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise FileNotFoundError(f"not a critic checkpoint: {config_path} is missing")
        config = validate_config(CriticConfig, json.loads(config_path.read_text(encoding="utf-8")), source=str(config_path))
        critic = cls(config)
        critic.load_weights(directory)
        return critic

    def load_weights(self, directory: str | Path) -> None:
        """Load a checkpoint's own weights and adapters into this (identically configured) critic."""
        directory = Path(directory)
        self.load_own_state(load_file(str(directory / WEIGHTS_NAME)), str(directory))
        load_adapters(self.backbone, directory / ADAPTERS_DIR)

    def load_own_state(self, state: dict[str, Tensor], where: str) -> None:
        expected = self.own_state()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        shapes = [k for k in expected if k in state and expected[k].shape != state[k].shape]
        if missing or unexpected or shapes:
            raise ValueError(
                f"{where}: weights do not match the critic config: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                f"shape mismatch {shapes[:5]}"
            )
        self.load_state_dict(state, strict=False)
