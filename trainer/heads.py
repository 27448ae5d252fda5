"""The critic head: gated fusion of multi-layer, two-modality tokens and a Quality Query Transformer.

Fusion: every (modality, layer) source is projected to a common width; learned softmax gates weigh
the layers within a modality and a learned sigmoid gate per channel scales each modality, so training
decides which depths and which modality matter. The fused sequence is [visual tokens; text tokens]
with a modality embedding. QQT: learnable queries in two groups (quality, alignment) self-attend and
cross-attend over the fused tokens for a few layers; each group is mean-pooled into one scalar score.
Optional conditioning, added to every query so it reaches both scores through the residual stream
rather than having to win attention against dozens of tower tokens: an MLP embedding of the image's
detail statistics (`detail`, see `trainer.detail`) and of the backbone's own image-text similarity
(`similarity`, from backbones with a shared space).
`HeadEnsemble` (`ensemble: K`) trains K such heads side by side and scores with their mean.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainer.backbones.base import TokenFeatures
from trainer.config import HeadConfig
from trainer.detail import DETAIL_FEATURES
from trainer.losses import ASPECT_INDEX, MEMBERS


class GatedFusion(nn.Module):
    def __init__(self, visual_dims: list[int], text_dims: list[int], hidden: int):
        super().__init__()
        self.visual_proj = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden)) for d in visual_dims)
        self.text_proj = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden)) for d in text_dims)
        self.visual_layer_gate = nn.Parameter(torch.zeros(len(visual_dims)))
        self.text_layer_gate = nn.Parameter(torch.zeros(len(text_dims)))
        self.modality_gate = nn.Parameter(torch.zeros(2, hidden))  # sigmoid(0) = 0.5: both modalities start equal
        self.modality_embedding = nn.Parameter(torch.zeros(2, hidden))
        nn.init.normal_(self.modality_embedding, std=0.02)

    @staticmethod
    def _mix(tokens: list[Tensor], projections: nn.ModuleList, gate: Tensor) -> Tensor:
        weights = torch.softmax(gate, dim=0)
        return sum(w * proj(t.float()) for w, proj, t in zip(weights, projections, tokens, strict=True))

    def forward(self, features: TokenFeatures) -> tuple[Tensor, Tensor]:
        """Fused tokens [B, N+T, H] and their validity mask [B, N+T]."""
        visual = self._mix(features.visual, self.visual_proj, self.visual_layer_gate)
        text = self._mix(features.text, self.text_proj, self.text_layer_gate)
        gates = torch.sigmoid(self.modality_gate)
        visual = visual * gates[0] + self.modality_embedding[0]
        text = text * gates[1] + self.modality_embedding[1]
        return torch.cat([visual, text], dim=1), torch.cat([features.visual_mask, features.text_mask], dim=1)


class QualityQueryTransformer(nn.Module):
    def __init__(self, config: HeadConfig):
        super().__init__()
        self.groups = (config.quality_queries, config.alignment_queries)
        self.queries = nn.Parameter(torch.randn(sum(self.groups), config.hidden) * 0.02)
        layer = nn.TransformerDecoderLayer(
            d_model=config.hidden,
            nhead=config.heads,
            dim_feedforward=config.hidden * 2,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.decoder = nn.TransformerDecoder(layer, num_layers=config.layers, norm=nn.LayerNorm(config.hidden))
        self.quality = nn.Sequential(nn.Linear(config.hidden, config.hidden), nn.GELU(), nn.Linear(config.hidden, 1))
        self.alignment = nn.Sequential(nn.Linear(config.hidden, config.hidden), nn.GELU(), nn.Linear(config.hidden, 1))

    def forward(self, tokens: Tensor, mask: Tensor, condition: Tensor | None = None) -> dict[str, Tensor]:
        """`condition` [B, hidden], if given, is added to every query."""
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        if condition is not None:
            queries = queries + condition.unsqueeze(1)
        out = self.decoder(queries, tokens, memory_key_padding_mask=~mask)
        quality, alignment = out.split(self.groups, dim=1)
        return {"quality": self.quality(quality.mean(1)).squeeze(-1), "alignment": self.alignment(alignment.mean(1)).squeeze(-1)}


class CriticHead(nn.Module):
    def __init__(self, visual_dims: list[int], text_dims: list[int], config: HeadConfig):
        super().__init__()
        self.fusion = GatedFusion(visual_dims, text_dims, config.hidden)
        self.qqt = QualityQueryTransformer(config)
        self.detail = _conditioning(len(DETAIL_FEATURES), config.hidden) if config.detail is not None else None
        self.similarity = _conditioning(1, config.hidden) if config.similarity else None

    def forward(self, features: TokenFeatures, detail: Tensor | None = None) -> dict[str, Tensor]:
        if (detail is None) != (self.detail is None):
            raise ValueError("detail statistics are given but the head has no detail config, or the other way round")
        if self.similarity is not None and features.similarity is None:
            raise ValueError("the head conditions on the backbone's image-text similarity, but the backbone gave none")
        conditions = []
        if self.detail is not None:
            conditions.append(self.detail(detail.float()))
        if self.similarity is not None:
            conditions.append(self.similarity(features.similarity.float().unsqueeze(-1)))
        return self.qqt(*self.fusion(features), sum(conditions) if conditions else None)


class HeadEnsemble(nn.Module):
    """K independently initialised `CriticHead`s on the same tower features; the scores are their mean.

    Why: with frozen towers the head is all that trains, and single heads of one run differ on a
    benchmark by up to 0.08 SRCC; the mean of four scored above the members' mean in every checkpoint
    measured (benchmarks/RESULTS.md, runs 11-12), for the price of K small heads, since the tower
    features are computed once. Each member is trained by its own ranking loss
    (`trainer.losses.pairwise_loss`), not through the mean, so the members stay independent estimators.
    """

    def __init__(self, visual_dims: list[int], text_dims: list[int], config: HeadConfig):
        super().__init__()
        self.members = nn.ModuleList(CriticHead(visual_dims, text_dims, config) for _ in range(config.ensemble))

    def forward(self, features: TokenFeatures, detail: Tensor | None = None) -> dict[str, Tensor]:
        outs = [member(features, detail) for member in self.members]
        members = torch.stack([torch.stack([out[name] for name in ASPECT_INDEX], dim=-1) for out in outs], dim=1)
        mean = members.mean(dim=1)
        return {"quality": mean[:, 0], "alignment": mean[:, 1], MEMBERS: members}


def build_head(visual_dims: list[int], text_dims: list[int], config: HeadConfig) -> nn.Module:
    """One head, or an ensemble of `config.ensemble` heads (a single head keeps its flat weight names)."""
    head_class = CriticHead if config.ensemble == 1 else HeadEnsemble
    return head_class(visual_dims, text_dims, config)


def _conditioning(features: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, hidden))
