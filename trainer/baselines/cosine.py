"""Alignment as the untrained cosine similarity of a dual-tower backbone's image and text embeddings.

With a contrastively trained pair of towers (CLIP) this is CLIPScore; with the offline dual encoder
(EfficientNet-Lite0 + MiniLM, never trained together) it measures what the towers give for free.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.baselines import register_baseline
from trainer.benchmarks import BenchmarkError


def load_dual_tower(name: str, options: dict[str, Any] | None = None, seed: int = 0) -> torch.nn.Module:
    """A registered backbone with separate image and text towers, in eval mode.

    Backbones may create new projections with random weights (the dual encoder does); `seed` fixes
    them so an untrained baseline gives the same numbers on every run.
    """
    from trainer.backbones import get_backbone

    torch.manual_seed(seed)
    backbone = get_backbone(name, **(options or {}))
    missing = [m for m in ("encode_image", "encode_text") if not hasattr(backbone, m)]
    if missing:
        raise ValueError(f"backbone {name!r} is not a dual-tower backbone (no {', '.join(missing)})")
    return backbone.eval()


class CosineScorer:
    def __init__(self, backbone: torch.nn.Module):
        self.backbone = backbone

    @torch.no_grad()
    def score(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        image = F.normalize(self.backbone.encode_image(self.backbone.preprocess_images(images)), dim=-1)
        text = F.normalize(self.backbone.encode_text(self.backbone.tokenize(prompts)), dim=-1)
        return {"alignment": (image * text).sum(-1)}


def parse_backbone_options(text: str) -> dict[str, Any]:
    """Backbone options given on a command line as a JSON object, e.g. '{"model": "path"}'."""
    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"backbone options must be a JSON object, got {text!r} ({exc.msg})") from None
    if not isinstance(options, dict):
        raise BenchmarkError(f"backbone options must be a JSON object, got {text!r}")
    return options


@register_baseline("cosine")
def make_cosine(backbone: str = "dual-encoder", backbone_options: str = "", seed: str | int = 0) -> CosineScorer:
    return CosineScorer(load_dual_tower(backbone, parse_backbone_options(backbone_options), int(seed)))
