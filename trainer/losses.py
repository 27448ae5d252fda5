"""Pairwise ranking losses (aspect-specific) and the language-model loss of the instruction stage.

A pair only trains the score of its own aspect: quality pairs the quality score, alignment pairs the
alignment score. Ranking losses take score differences d = s(pos) - s(neg):
margin: max(0, m - d); Bradley-Terry: -log sigmoid(d / T); fidelity: 1 - sqrt(sigmoid(d / T))
(the fidelity loss of Tsai et al. with target probability 1). A head ensemble's members are ranked
one by one (the mean of their losses), so each member learns on its own rather than through the mean.
With `text_pair_references: R`, a text-side alignment pair is ranked on scores centred on R other
images of the batch (`centre_text_pairs`).
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
ALIGNMENT = ASPECT_INDEX["alignment"]
"""Index of the alignment score on the last axis of `MEMBERS`."""
CROSSED = "crossed"
"""Key of the scores of recombined (text, image) items of a batch (`Critic.forward`'s `crossings`)."""
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
    """Mean ranking loss (`loss`), per-aspect means, the batch's pairwise accuracy and per-pair score
    differences (`diff`; all but `loss` detached)."""
    diff = aspect_scores(pos, aspect) - aspect_scores(neg, aspect)
    if MEMBERS in pos:
        rows = torch.arange(len(aspect), device=aspect.device)
        member_diff = pos[MEMBERS][rows, :, aspect] - neg[MEMBERS][rows, :, aspect]  # [B, K]
        per_pair = RANKING_LOSSES[config.name](member_diff, config).mean(dim=-1)
    else:
        per_pair = RANKING_LOSSES[config.name](diff, config)
    out = {"loss": per_pair.mean(), "accuracy": (diff > 0).float().mean().detach(), "diff": diff.detach()}
    for name, index in ASPECT_INDEX.items():
        chosen = aspect == index
        if chosen.any():
            out[f"loss_{name}"] = per_pair[chosen].mean().detach()
    return out


def text_pair_crossings(text_side: Tensor, references: int) -> Tensor:
    """[P * 2 * R', 2] (text item, image item) of a batch of B pairs (2B items, positives first): for
    each of its P text-side pairs `i`, both prompts (items i and B + i) on the positive images of the
    R' = min(references, B - 1) pairs that follow it, cyclically, so never on its own image (a short
    last batch has fewer others). Those are other prompts' images (a batch holds sibling pairs of a
    prompt rarely), so their mean estimates what the prompt alone scores."""
    batch = len(text_side)
    count = min(references, batch - 1)
    if count < 1:
        raise ValueError(f"centring needs another pair in the batch to cross with, got a batch of {batch}")
    pairs = text_side.nonzero().squeeze(-1)
    texts = torch.stack([pairs, pairs + batch], dim=-1)  # [P, 2]
    images = (pairs.unsqueeze(-1) + torch.arange(1, count + 1, device=pairs.device)) % batch  # [P, R']
    return torch.stack([texts.repeat_interleave(count, dim=1), images.repeat(1, 2)], dim=-1).reshape(-1, 2)


def centre_text_pairs(pos: dict[str, Tensor], neg: dict[str, Tensor], crossed: dict[str, Tensor], text_side: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """`pos` and `neg` with each text-side pair's alignment (and every member's) minus its prompt's mean
    over the crossed images of `text_pair_crossings` (`crossed`: their scores, in that order). The
    difference of a pair then no longer holds what either prompt scores on any image, only how much
    better this image fits its own prompt. The offsets keep their gradient: lowering the other images'
    fit to the prompt is part of the lesson."""
    pairs = text_side.nonzero().squeeze(-1)
    count = len(crossed["alignment"]) // (2 * len(pairs))

    def shifted(scores: Tensor, crossed_scores: Tensor, side: int, where: tuple) -> Tensor:
        offsets = crossed_scores.view(len(pairs), 2, count, *crossed_scores.shape[1:]).mean(2)[:, side]
        shift = torch.zeros_like(scores)
        shift[where] = offsets
        return scores - shift

    centred = []
    for side, scores in enumerate((pos, neg)):
        scores = {**scores, "alignment": shifted(scores["alignment"], crossed["alignment"], side, (pairs,))}
        if MEMBERS in scores:
            scores[MEMBERS] = shifted(scores[MEMBERS], crossed[MEMBERS][..., ALIGNMENT], side, (pairs, slice(None), ALIGNMENT))
        centred.append(scores)
    return centred[0], centred[1]


def lm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Next-token cross-entropy over positions whose label is not -100 (the answers)."""
    shifted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    targets = labels[:, 1:].reshape(-1)
    if not (targets != -100).any():
        raise ValueError("no answer tokens to train on: every label is -100 (answers truncated away?)")
    return F.cross_entropy(shifted, targets, ignore_index=-100)
