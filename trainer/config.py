"""Trainer configuration: the critic (backbone + head) and how to train it.

`CriticConfig` is saved with every checkpoint and is all that is needed to rebuild the model;
`TrainConfig` adds data, stages, optimisation, Ray and output. Both use the toolkit's `StrictModel`,
so a typo in a YAML file is reported as one readable line that lists the valid keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pairgen.config_base import StrictModel, load_config

LossName = Literal["margin", "bradley_terry", "fidelity"]


class LoraOptions(StrictModel):
    """peft LoRA on the backbone's Hugging Face modules (`target_modules` are module-name suffixes)."""

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])


class BackboneConfig(StrictModel):
    """`name` is a key of `trainer.backbones.BACKBONES`; `options` go to its constructor."""

    name: str = "dual-encoder"
    options: dict[str, Any] = Field(default_factory=dict)
    lora: LoraOptions | None = None


class DetailConfig(StrictModel):
    """Detail statistics of the image (`trainer.detail`) that condition the head's queries."""

    side: int = Field(384, ge=32)
    """Longer side every image is shrunk to before measuring; use the size the training pairs were stored at."""


class HeadConfig(StrictModel):
    """Gated fusion width, the Quality Query Transformer's shape and optional detail statistics."""

    hidden: int = Field(256, ge=8)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    quality_queries: int = Field(4, ge=1)
    alignment_queries: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    detail: DetailConfig | None = None
    similarity: bool = False
    """Condition the queries on the backbone's own image-text similarity (backbones that provide one,
    e.g. the dual encoder with `shared_space: imagenet-concepts`)."""
    ensemble: int = Field(1, ge=1)
    """Independently initialised heads trained side by side, scoring with their mean (`heads.HeadEnsemble`)."""

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> HeadConfig:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        return self


class CriticConfig(StrictModel):
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    head: HeadConfig = Field(default_factory=HeadConfig)
    reference_images: int = Field(0, ge=0)
    """Score alignment relative to the prompt's mean over this many reference images (0: off); see
    `trainer.references`. Needs a backbone with separate towers (`Backbone.separable`)."""


class DataConfig(StrictModel):
    """Pair shards: a folder (manifest or completion markers) or a list of shard files."""

    shards: str | list[str]
    heldout_percent: float = Field(10.0, gt=0.0, lt=100.0)
    """Share of split groups (prompts; source images for pairs without one) held out for model selection."""
    heldout_max_pairs: int = Field(512, ge=1)
    heldout_exclude: list[str] = Field(default_factory=list)
    """`corruption` patterns (fnmatch, e.g. `text:whole_swap`) of held-out pairs left out of model
    selection; they are held out all the same (never trained on). For towers that share no image-text
    space: a text-side prompt swap of an unseen prompt measures prompt memorisation, not alignment
    (benchmarks/RESULTS.md, issue 8)."""
    batch_size: int = Field(16, ge=1)
    num_workers: int = Field(0, ge=0)
    shuffle_buffer: int = Field(256, ge=0)
    resampled: bool = True
    on_error: Literal["raise", "skip"] = "raise"
    seed: int = 0


class StageConfig(StrictModel):
    """One training stage. `instruct`: LM loss on instruction conversations (needs an hf-vlm with LoRA);
    `pairwise`: aspect-specific ranking losses on the head (and the LoRA adapters if `train_backbone`)."""

    kind: Literal["instruct", "pairwise"]
    steps: int = Field(ge=1)
    lr: float = Field(1e-3, gt=0.0)
    train_backbone: bool = False


class OptimConfig(StrictModel):
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_steps: int = Field(20, ge=0)
    grad_clip: float = Field(1.0, gt=0.0)
    precision: Literal["fp32", "bf16"] = "fp32"


class LossConfig(StrictModel):
    name: LossName = "bradley_terry"
    margin: float = Field(0.5, ge=0.0)
    temperature: float = Field(1.0, gt=0.0)
    text_pair_references: int = Field(0, ge=0)
    """Rank a text-side alignment pair (one image, its prompt against a perturbed one) on scores centred
    on this many other positive images of the batch (0: raw scores). A prompt-only offset then cancels,
    so the pair rewards only what the image adds to the prompt; the training-time twin of
    `critic.reference_images` (`trainer.losses.centre_text_pairs`). Needs separate towers."""


class RayConfig(StrictModel):
    """Ray Train's TorchTrainer; `enabled: false` trains in this process."""

    enabled: bool = False
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0.0)
    address: str | None = None  # None: embedded local Ray (num_cpus = num_workers * cpus_per_worker)


class TrainConfig(StrictModel):
    critic: CriticConfig = Field(default_factory=CriticConfig)
    data: DataConfig
    stages: list[StageConfig] = Field(min_length=1)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    output: str
    eval_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    progress: bool = True

    @field_validator("output")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name an output folder")
        return value

    @model_validator(mode="after")
    def _text_pair_references_fit_the_batch(self) -> TrainConfig:
        if self.loss.text_pair_references >= self.data.batch_size:
            raise ValueError(
                f"loss.text_pair_references ({self.loss.text_pair_references}) must be below data.batch_size "
                f"({self.data.batch_size}): the references are the batch's other positive images"
            )
        return self

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    def stage_at(self, step: int) -> tuple[int, StageConfig, int]:
        """(stage index, stage, first global step of that stage) for global step `step` (0-based)."""
        start = 0
        for index, stage in enumerate(self.stages):
            if step < start + stage.steps:
                return index, stage, start
            start += stage.steps
        return len(self.stages) - 1, self.stages[-1], start - self.stages[-1].steps


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    return load_config(TrainConfig, path, overrides)
