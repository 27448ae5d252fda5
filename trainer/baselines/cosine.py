"""Alignment as the untrained cosine similarity of a dual-tower backbone's image and text embeddings.

With a contrastively trained pair of towers (CLIP) this is CLIPScore; with the offline dual encoder
(EfficientNet-Lite0 + MiniLM, never trained together) it measures what the towers give for free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from trainer.baselines import register_baseline


def load_dual_tower(name: str, **options: object) -> torch.nn.Module:
    """A registered backbone that has separate image and text towers, in eval mode."""
    from trainer.backbones import get_backbone

    backbone = get_backbone(name, **options)
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


@register_baseline("cosine")
def make_cosine(backbone: str = "dual-encoder") -> CosineScorer:
    return CosineScorer(load_dual_tower(backbone))
