"""Pairwise ranking losses (aspect-specific) and the language-model loss of the instruction stage.

A pair only trains the score of its own aspect: quality pairs the quality score, alignment pairs the
alignment score. Ranking losses take score differences d = s(pos) - s(neg):
margin: max(0, m - d); Bradley-Terry: -log sigmoid(d / T); fidelity: 1 - sqrt(sigmoid(d / T))
(the fidelity loss of Tsai et al. with target probability 1). A head ensemble's members are ranked
one by one (the mean of their losses), so each member learns on its own rather than through the mean.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.config import LossConfig

ASPECT_INDEX = {"quality": 0, "alignment": 1}
MEMBERS = "members"
"""Key of a head ensemble's per-member scores [B, K, 2] (last axis in `ASPECT_INDEX` order), given
next to the mean scores; `pairwise_loss` ranks each member on its own."""
RankingLoss = Callable[[Tensor, LossConfig], Tensor]


def _margin(diff: Tensor, config: LossConfig) -> Tensor:
    return F.relu(config.margin - diff)


def _bradley_terry(diff: Tensor, config: LossConfig) -> Tensor:
    return F.softplus(-diff / config.temperature)


def _fidelity(diff: Tensor, config: LossConfig) -> Tensor:
    return 1.0 - torch.sqrt(torch.sigmoid(diff / config.temperature) + 1e-8)


RANKING_LOSSES: dict[str, RankingLoss] = {"margin": _margin, "bradley_terry": _bradley_terry, "fidelity": _fidelity}


def aspect_scores(scores: dict[str, Tensor], aspect: Tensor) -> Tensor:
    """Per item, the score of its pair's aspect (`aspect`: 0 quality, 1 alignment)."""
    return torch.where(aspect == ASPECT_INDEX["quality"], scores["quality"], scores["alignment"])


def pairwise_loss(pos: dict[str, Tensor], neg: dict[str, Tensor], aspect: Tensor, config: LossConfig) -> dict[str, Tensor]:
    """Mean ranking loss (`loss`), per-aspect means and the batch's pairwise accuracy (detached)."""
    diff = aspect_scores(pos, aspect) - aspect_scores(neg, aspect)
    if MEMBERS in pos:
        rows = torch.arange(len(aspect), device=aspect.device)
        member_diff = pos[MEMBERS][rows, :, aspect] - neg[MEMBERS][rows, :, aspect]  # [B, K]
        per_pair = RANKING_LOSSES[config.name](member_diff, config).mean(dim=-1)
    else:
        per_pair = RANKING_LOSSES[config.name](diff, config)
    out = {"loss": per_pair.mean(), "accuracy": (diff > 0).float().mean().detach()}
    for name, index in ASPECT_INDEX.items():
        chosen = aspect == index
        if chosen.any():
            out[f"loss_{name}"] = per_pair[chosen].mean().detach()
    return out


def lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Next-token cross-entropy over positions whose label is not -100 (the answers)."""
    shifted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    targets = labels[:, 1:].reshape(-1)
    if not (targets != -100).any():
        raise ValueError("no answer tokens to train on: every label is -100 (answers truncated away?)")
    return F.cross_entropy(shifted, targets, ignore_index=-100)
