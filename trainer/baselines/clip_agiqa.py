"""CLIP-AGIQA: a supervised baseline with CoOp prompt learning on frozen dual-tower features.

Six quality classes (terrible .. perfect) share one learnable context of `n_ctx` token embeddings,
spliced after the start token of "<class> quality."; the frozen text tower turns them into six
class features. A head reads the normalized image feature, the six class features and the six
image-class cosines, and an MLP regresses the MOS (MSE). A cross-entropy on the cosines against MOS
bins (cut at the training split's sextiles) trains the context to order the classes. One model is
fitted per MOS dimension; both towers stay frozen, so image features are computed once.

It is SUPERVISED: it is trained on human scores of a prompt-disjoint training part of a benchmark
and may only be evaluated on the other part (the checkpoint stores its training prompts and
`trainer.evaluate` refuses to score them).

    python -m trainer.baselines.clip_agiqa --benchmark agiqa3k --root ../shared/benchmarks/agiqa3k-dev --out out/clip_agiqa
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainer.baselines import register_baseline
from trainer.baselines.cosine import load_dual_tower, parse_backbone_options
from trainer.benchmarks import Benchmark, BenchmarkError, load_benchmark, load_image, prompt_disjoint_split

QUALITY_CLASSES = ("terrible", "bad", "poor", "average", "good", "perfect")
CONFIG_NAME, WEIGHTS_NAME = "clip_agiqa.json", "clip_agiqa.safetensors"
SUPERVISION_NOTE = (
    "CLIP-AGIQA is supervised: trained on MOS of {n_train} images ({n_train_prompts} prompts) of {benchmark}, "
    "evaluated only on prompt-disjoint images (test fraction {test_fraction} by prompt hash)"
)


@dataclass
class ClipAgiqaConfig:
    backbone: str = "dual-encoder"
    backbone_options: dict[str, Any] = field(default_factory=dict)
    n_ctx: int = 16
    hidden: int = 256
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    class_loss_weight: float = 1.0
    test_fraction: float = 0.3
    split_salt: str = ""
    seed: int = 0


class PromptLearner(nn.Module):
    """CoOp context shared by all classes: [start] ctx_1..ctx_n "<class> quality." [end/padding]."""

    def __init__(self, backbone: nn.Module, classes: Sequence[str], n_ctx: int):
        super().__init__()
        tokens = backbone.tokenize([f"{name} quality." for name in classes])
        with torch.no_grad():
            embeds = backbone.text_input_embeddings(tokens["input_ids"])
        self.register_buffer("class_embeds", embeds, persistent=False)
        self.register_buffer("class_mask", tokens["attention_mask"], persistent=False)
        self.ctx = nn.Parameter(torch.randn(n_ctx, embeds.shape[-1]) * 0.02)

    def forward(self, backbone: nn.Module) -> Tensor:
        """Normalized class text features [C, E]."""
        count = self.class_embeds.shape[0]
        ctx = self.ctx.unsqueeze(0).expand(count, -1, -1).to(self.class_embeds.dtype)
        embeds = torch.cat([self.class_embeds[:, :1], ctx, self.class_embeds[:, 1:]], dim=1)
        ones = torch.ones(count, self.ctx.shape[0], dtype=self.class_mask.dtype)
        mask = torch.cat([self.class_mask[:, :1], ones, self.class_mask[:, 1:]], dim=1)
        return F.normalize(backbone.encode_text_embeddings(embeds, mask), dim=-1)


class ClipAgiqaHead(nn.Module):
    """[image feature, class features, image-class cosines] -> MLP -> score, plus class logits."""

    def __init__(self, embed_dim: int, n_classes: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim * (1 + n_classes) + n_classes, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, 1)
        )
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def forward(self, image: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
        cosines = image @ classes.T
        inputs = torch.cat([image, classes.flatten().expand(image.shape[0], -1), cosines], dim=1)
        return self.mlp(inputs).squeeze(-1), self.logit_scale.exp() * cosines


class DimensionModel(nn.Module):
    def __init__(self, backbone: nn.Module, embed_dim: int, config: ClipAgiqaConfig):
        super().__init__()
        self.prompts = PromptLearner(backbone, QUALITY_CLASSES, config.n_ctx)
        self.head = ClipAgiqaHead(embed_dim, len(QUALITY_CLASSES), config.hidden)

    def forward(self, backbone: nn.Module, image: Tensor) -> tuple[Tensor, Tensor]:
        return self.head(image, self.prompts(backbone))


def quantile_bins(mos: np.ndarray, n_classes: int = len(QUALITY_CLASSES)) -> np.ndarray:
    """Inner bin edges at the training MOS quantiles, so each class holds about 1/n of the images."""
    return np.quantile(mos, np.arange(1, n_classes) / n_classes)


@torch.no_grad()
def image_features(backbone: nn.Module, paths: Sequence[Path], batch_size: int = 32) -> Tensor:
    """Normalized frozen image features [N, E], computed once."""
    chunks = []
    for start in range(0, len(paths), batch_size):
        batch = [load_image(p) for p in paths[start : start + batch_size]]
        chunks.append(F.normalize(backbone.encode_image(backbone.preprocess_images(batch)), dim=-1))
    return torch.cat(chunks)


def fit_dimension(backbone: nn.Module, features: Tensor, mos: np.ndarray, config: ClipAgiqaConfig) -> tuple[DimensionModel, list[float]]:
    """Train context and head for one MOS column; returns the model and the loss of every epoch."""
    edges = quantile_bins(mos)
    labels = torch.as_tensor(np.digitize(mos, edges), dtype=torch.long)
    targets = torch.as_tensor(mos, dtype=torch.float32)
    model = DimensionModel(backbone, features.shape[1], config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    model.train()
    for _ in range(config.epochs):
        order, total = torch.randperm(len(targets), generator=generator), 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            score, logits = model(backbone, features[idx])
            loss = F.mse_loss(score, targets[idx]) + config.class_loss_weight * F.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / len(order))
    return model.eval(), history


class ClipAgiqa:
    """A trained CLIP-AGIQA baseline: one `DimensionModel` per MOS dimension on a frozen backbone."""

    def __init__(self, backbone: nn.Module, models: dict[str, DimensionModel], targets: dict[str, str], meta: dict[str, Any]):
        self.backbone, self.models, self.targets, self.meta = backbone, models, targets, meta

    @property
    def train_prompts(self) -> set[str]:
        return set(self.meta["train_prompts"])

    @property
    def note(self) -> str:
        return SUPERVISION_NOTE.format(**self.meta)

    @torch.no_grad()
    def score(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, Tensor]:
        """Scores keyed by dimension name and by target (quality/alignment) of the first such dimension."""
        image = F.normalize(self.backbone.encode_image(self.backbone.preprocess_images(images)), dim=-1)
        result: dict[str, Tensor] = {}
        for dim, model in self.models.items():
            result[dim] = model(self.backbone, image)[0]
            result.setdefault(self.targets[dim], result[dim])
        return result

    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        new = set(getattr(self.backbone, "new_parameter_names", list)())
        tensors = {f"backbone.{k}": v for k, v in self.backbone.state_dict().items() if k in new}
        for dim, model in self.models.items():
            tensors.update({f"{dim}.{k}": v for k, v in model.state_dict().items()})
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(directory / WEIGHTS_NAME))
        meta = {**self.meta, "targets": self.targets}
        (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> ClipAgiqa:
        """Rebuild the frozen backbone (with its saved random projections, if any) and the heads."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file() or not (directory / WEIGHTS_NAME).is_file():
            raise BenchmarkError(f"not a CLIP-AGIQA checkpoint (needs {CONFIG_NAME} and {WEIGHTS_NAME}): {directory}")
        meta = json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
        config = ClipAgiqaConfig(**meta["config"])
        tensors = load_file(str(directory / WEIGHTS_NAME))
        backbone = load_dual_tower(config.backbone, config.backbone_options, config.seed)
        saved = {k.removeprefix("backbone."): v for k, v in tensors.items() if k.startswith("backbone.")}
        backbone.load_state_dict(saved, strict=False)
        models = {}
        for dim in meta["targets"]:
            model = DimensionModel(backbone, meta["embed_dim"], config)
            model.load_state_dict({k.removeprefix(f"{dim}."): v for k, v in tensors.items() if k.startswith(f"{dim}.")})
            models[dim] = model.eval()
        return cls(backbone, models, meta.pop("targets"), meta)


def train_clip_agiqa(benchmark: Benchmark, config: ClipAgiqaConfig, log: Any = None) -> tuple[ClipAgiqa, list[int]]:
    """Fit on the prompt-disjoint training part of `benchmark`; returns the model and the test indices."""
    train, test = prompt_disjoint_split(benchmark.prompts, config.test_fraction, config.split_salt)
    if not train or not test:
        raise BenchmarkError(f"{benchmark.name}: the prompt split left an empty part (train {len(train)}, test {len(test)})")
    backbone = load_dual_tower(config.backbone, config.backbone_options, config.seed)
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    part = benchmark.subset(train)
    features = image_features(backbone, [item.path for item in part.items], config.batch_size)
    models = {}
    for dim in benchmark.dimensions:
        torch.manual_seed(config.seed)
        models[dim.name], history = fit_dimension(backbone, features, part.mos(dim.name), config)
        if log:
            log(f"{dim.name}: loss {history[0]:.3f} -> {history[-1]:.3f} over {len(history)} epochs")
    meta = {
        "config": asdict(config),
        "benchmark": f"{benchmark.name} ({benchmark.root})",
        "embed_dim": int(features.shape[1]),
        "n_train": len(train),
        "n_train_prompts": len(set(part.prompts)),
        "test_fraction": config.test_fraction,
        "train_prompts": sorted(set(part.prompts)),
    }
    targets = {dim.name: dim.target for dim in benchmark.dimensions}
    return ClipAgiqa(backbone, models, targets, meta), test


@register_baseline("clip_agiqa", supervised=True)
def make_clip_agiqa(checkpoint: str = "") -> ClipAgiqa:
    if not checkpoint:
        raise BenchmarkError(
            "clip_agiqa needs checkpoint=DIR (train one with: python -m trainer.baselines.clip_agiqa --benchmark ... --out DIR)"
        )
    return ClipAgiqa.load(checkpoint)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.baselines.clip_agiqa", description="Train the supervised CLIP-AGIQA baseline.")
    parser.add_argument("--benchmark", default="agiqa3k")
    parser.add_argument("--root", required=True)
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    defaults = ClipAgiqaConfig()
    for name in ("backbone", "n_ctx", "hidden", "epochs", "batch_size", "lr", "class_loss_weight", "test_fraction", "seed"):
        value = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--backbone-options", default="", help='backbone options as JSON, e.g. \'{"model": "DIR"}\' for hf-clip')
    args = parser.parse_args(argv)
    try:
        fields = {k: v for k, v in vars(args).items() if k in ClipAgiqaConfig.__dataclass_fields__}
        config = ClipAgiqaConfig(**{**fields, "backbone_options": parse_backbone_options(args.backbone_options)})
        benchmark = load_benchmark(args.benchmark, args.root)
        model, test = train_clip_agiqa(benchmark, config, log=lambda line: print(line, file=sys.stderr))
    except (BenchmarkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model.save(args.out)
    print(f"{model.note}; {len(test)} test images; saved {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
