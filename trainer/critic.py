"""The critic: a backbone's token features -> gated fusion + QQT -> quality and alignment scores.

A checkpoint folder holds `critic.json` (the `CriticConfig`, enough to rebuild the model),
`model.safetensors` (the weights that are not pretrained: head and new backbone projections) and
`adapters/<module>/` (peft LoRA adapters in peft's own layout) and, with `reference_images`,
`references.npz` (the reference images that centre the alignment score, `trainer.references`).
Pretrained backbone weights are loaded from where the config names them, so checkpoints stay small.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from pairgen.config_base import validate_config
from trainer.backbones import get_backbone
from trainer.backbones.base import TokenFeatures, check_images, prepare_inputs
from trainer.backbones.lora import load_adapters, save_adapters
from trainer.config import CriticConfig
from trainer.detail import DetailStatistics, WithDetail
from trainer.heads import build_head
from trainer.losses import ALIGNMENT, CROSSED, MEMBERS

CONFIG_NAME = "critic.json"
WEIGHTS_NAME = "model.safetensors"
ADAPTERS_DIR = "adapters"
REFERENCES_NAME = "references.npz"
OFFSET_CHUNK = 8  # prompts whose reference combinations go through the head at once (bounds memory)


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
        if config.reference_images and not self.backbone.separable:
            raise ValueError(
                f"reference_images needs a backbone with separate image and text towers; {config.backbone.name!r} computes "
                "visual tokens together with the text, so reference images cannot be joined with new prompts"
            )
        self.head = build_head(self.backbone.visual_dims, self.backbone.text_dims, config.head)
        self.references: list[np.ndarray] = []
        self._reference_features: tuple[TokenFeatures, Tensor | None] | None = None
        self._offsets: dict[str, Tensor] = {}
        detail = config.head.detail
        self.processor = self.backbone.processor if detail is None else WithDetail(self.backbone.processor, DetailStatistics(detail.side))
        """Picklable (images, prompts) -> model inputs, for data-loader workers: the backbone's, plus
        the detail statistics when the head uses them."""

    def prepare(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, Tensor]:
        return prepare_inputs(self.processor, images, prompts)

    def forward(
        self, labels: Tensor | None = None, detail: Tensor | None = None, crossings: Tensor | None = None, **inputs: Tensor
    ) -> dict[str, Tensor]:
        """Scores, or with `labels` the backbone's LM loss (instruction stage); one entry point so
        DistributedDataParallel sees both. `crossings` [C, 2] (text item, image item): also score these
        recombinations of the batch's items, under `CROSSED` (`trainer.losses.text_pair_crossings`)."""
        if labels is not None:
            return {"lm_loss": self.backbone.lm_loss({**inputs, "labels": labels})}
        features = self.backbone(**inputs)
        out = self.head(features, detail)
        if crossings is not None:
            text_index, image_index = crossings.unbind(-1)
            out[CROSSED] = self.head(features.combine(features, text_index, image_index), None if detail is None else detail[image_index])
        return out

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def train(self, mode: bool = True) -> Critic:
        """A change of mode also forgets the cached reference features and offsets (weights may have
        changed in training); staying in eval mode keeps them, so scoring batch after batch computes
        them once."""
        if mode != self.training:
            self._forget_references_cache()
        return super().train(mode)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Critic:
        """`to()`, `float()` and the like also drop the cache, which holds tensors of the old device/dtype."""
        self._forget_references_cache()
        return super()._apply(fn, recurse)

    def _forget_references_cache(self) -> None:
        self._reference_features = None
        self._offsets = {}

    def set_references(self, images: Sequence[np.ndarray]) -> None:
        """The reference images of `reference_images` (uint8 RGB arrays, any sizes)."""
        if len(images) != self.config.reference_images:
            raise ValueError(f"critic.reference_images is {self.config.reference_images}, got {len(images)} reference image(s)")
        check_images(images)
        self.references = [np.ascontiguousarray(image) for image in images]
        self._forget_references_cache()

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], prompts: Sequence[str], centre: bool = True) -> dict[str, Tensor]:
        """The scores of one batch as users get them (call in eval mode): the head's outputs, with
        the alignment centred on the reference images when the critic has them (`centre=False`: the
        head's raw alignment, for diagnostics)."""
        features, detail = self._features(images, prompts)
        out = self.head(features, detail)
        if self.config.reference_images and centre:
            offsets = self._alignment_offsets(features, list(prompts))
            out["alignment"] = out["alignment"] - offsets[:, 0]
            if MEMBERS in out:
                out[MEMBERS][..., ALIGNMENT] -= offsets[:, 1:]
        return out

    def _features(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> tuple[TokenFeatures, Tensor | None]:
        """Tower features of a batch, and its detail statistics when the head uses them."""
        inputs = {k: v.to(self.device) for k, v in self.prepare(images, prompts).items()}
        detail = inputs.pop("detail", None)
        return self.backbone(**inputs), detail

    def _alignment_offsets(self, features: TokenFeatures, prompts: list[str]) -> Tensor:
        """[B, 1 + K]: per item, its prompt's mean alignment over the reference images (the score,
        then each ensemble member's), cached per prompt."""
        first_uncached: dict[str, int] = {}
        for index, prompt in enumerate(prompts):
            if prompt not in self._offsets:
                first_uncached.setdefault(prompt, index)
        new = list(first_uncached.values())
        if new:
            references, detail = self._reference_bank()
            count = len(self.references)
            for start in range(0, len(new), OFFSET_CHUNK):
                chunk = new[start : start + OFFSET_CHUNK]
                out = self.head(features.cross(references, chunk), None if detail is None else detail.repeat(len(chunk), 1))
                columns = [out["alignment"].unsqueeze(-1)] + ([out[MEMBERS][..., ALIGNMENT]] if MEMBERS in out else [])
                means = torch.cat(columns, dim=-1).float().view(len(chunk), count, -1).mean(1)
                self._offsets.update({prompts[index]: mean for index, mean in zip(chunk, means, strict=True)})
        return torch.stack([self._offsets[prompt] for prompt in prompts])

    def _reference_bank(self) -> tuple[TokenFeatures, Tensor | None]:
        """Tower features (and detail statistics) of the reference images, computed once per eval."""
        self._require_references()
        if self._reference_features is None:
            self._reference_features = self._features(self.references, [""] * len(self.references))
        return self._reference_features

    def _require_references(self) -> None:
        if len(self.references) != self.config.reference_images:
            raise ValueError(
                f"critic.reference_images is {self.config.reference_images} but no reference images are set: trainer.train "
                "draws them from the training shards; for an existing checkpoint, python -m trainer.references adds them"
            )

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
                scores = self.predict(images[start : start + batch_size], prompts[start : start + batch_size])
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
        self._require_references()  # a checkpoint that could not score alignment is never written
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(self.config.model_dump(mode="json"), indent=1), encoding="utf-8")
        save_file(self.own_state(), str(directory / WEIGHTS_NAME))
        save_adapters(self.backbone, directory / ADAPTERS_DIR)
        if self.config.reference_images:
            np.savez_compressed(directory / REFERENCES_NAME, *self.references)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Critic:
        """The saved critic, in eval mode (as transformers' `from_pretrained` returns models): it is
        loaded to score, and `Critic.score` then keeps its reference cache from batch to batch."""
        critic = cls(read_config(directory))
        critic.load_weights(directory)
        return critic.eval()

    def load_weights(self, directory: str | Path) -> None:
        """Load a checkpoint's trained weights, and its reference images when the config asks for them,
        into this (identically configured) critic."""
        directory = Path(directory)
        self.load_trained_weights(directory)
        if self.config.reference_images:
            path = directory / REFERENCES_NAME
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: the critic config asks for {self.config.reference_images} reference images")
            with np.load(path, allow_pickle=False) as archive:
                self.set_references([archive[f"arr_{index}"] for index in range(len(archive.files))])

    def load_trained_weights(self, directory: str | Path) -> None:
        """A checkpoint's head, new backbone parameters and LoRA adapters (not its reference images)."""
        self.load_own_state(load_file(str(Path(directory) / WEIGHTS_NAME)), str(directory))
        load_adapters(self.backbone, Path(directory) / ADAPTERS_DIR)
        self._forget_references_cache()  # computed with the weights replaced just now

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


def read_config(directory: str | Path) -> CriticConfig:
    """The `CriticConfig` a checkpoint folder was saved with."""
    config_path = Path(directory) / CONFIG_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"not a critic checkpoint: {config_path} is missing")
    return validate_config(CriticConfig, json.loads(config_path.read_text(encoding="utf-8")), source=str(config_path))
