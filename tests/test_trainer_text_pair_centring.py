"""Centring during training (`loss.text_pair_references`): a text-side alignment pair is ranked on
alignment scores minus each prompt's mean over other positive images of the batch. Real photos,
packaged weights (EfficientNet-Lite0 + MiniLM in the imagenet-concepts space)."""

from __future__ import annotations

import pytest
import torch

from pairgen.config_base import ConfigError, validate_config
from trainer.config import LossConfig, TrainConfig
from trainer.data import PairBatch
from trainer.losses import CROSSED, MEMBERS, RANKING_LOSSES, centre_text_pairs, pairwise_loss, text_pair_crossings
from trainer.synthetic import photo
from trainer.train import score_pairs
from test_trainer_references import raw, reference_critic

# (positive image, negative image, prompt, negative's prompt or None, aspect)
PAIRS = [
    ("astronaut", "astronaut", "an astronaut", "a cat", "alignment"),  # text-side
    ("chelsea", "chelsea-blurred", "a cat", None, "quality"),
    ("rocket", "rocket", "a rocket on a launch pad", "a rocket in the sea", "alignment"),  # text-side
    ("coffee", "camera", "a cup of coffee", None, "alignment"),  # image-side
]
TEXT_SIDE = [0, 2]


def image(name: str):
    if name.endswith("-blurred"):
        import cv2

        return cv2.GaussianBlur(photo(name.removesuffix("-blurred")), (0, 0), 4.0)
    return photo(name)


def train_config(references: int, batch_size: int = 4) -> TrainConfig:
    return validate_config(TrainConfig, {
        "data": {"shards": "unused", "batch_size": batch_size},
        "stages": [{"kind": "pairwise", "steps": 1}],
        "loss": {"text_pair_references": references},
        "output": "unused",
    })


@pytest.fixture(scope="module")
def critic():
    return reference_critic(references=0)


@pytest.fixture(scope="module")
def batch(critic) -> PairBatch:
    images = [image(p[0]) for p in PAIRS] + [image(p[1]) for p in PAIRS]
    prompts = [p[2] for p in PAIRS] + [p[3] or p[2] for p in PAIRS]
    aspect = torch.tensor([0 if p[4] == "quality" else 1 for p in PAIRS])
    text_side = torch.tensor([p[3] is not None for p in PAIRS])
    return PairBatch(critic.prepare(images, prompts), aspect, text_side, [str(i) for i in range(len(PAIRS))])


def test_text_side_pairs_are_ranked_on_scores_centred_on_the_batchs_other_images(critic, batch):
    """Equal to scoring every (other positive image, prompt) combination directly, for the ensemble's
    mean and for each member's loss; quality and image-side pairs keep their raw difference."""
    references = 2
    pos_images = [image(p[0]) for p in PAIRS]
    direct_pos = raw(critic, pos_images, [p[2] for p in PAIRS])
    direct_neg = raw(critic, [image(p[1]) for p in PAIRS], [p[3] or p[2] for p in PAIRS])
    with torch.no_grad():
        out = score_pairs(critic, batch, train_config(references))
        uncentred = score_pairs(critic, batch, train_config(0))

    def centred(scores: dict, index: int, prompt: str) -> torch.Tensor:
        """[1 + K] alignment of item `index` (mean, then members) minus the prompt's mean over the
        positive images of the `references` pairs after it."""
        others = [(index + step) % len(PAIRS) for step in range(1, references + 1)]
        offsets = raw(critic, [pos_images[j] for j in others], [prompt] * references)
        own = torch.cat([scores["alignment"][index : index + 1], scores[MEMBERS][index, :, 1]])
        return own - torch.cat([offsets["alignment"].mean(0, keepdim=True), offsets[MEMBERS][:, :, 1].mean(0)])

    member_diffs = (direct_pos[MEMBERS] - direct_neg[MEMBERS])[torch.arange(len(PAIRS)), :, batch.aspect]
    expected_diff = torch.where(batch.aspect == 0, direct_pos["quality"] - direct_neg["quality"], direct_pos["alignment"] - direct_neg["alignment"])
    torch.testing.assert_close(uncentred["diff"], expected_diff, atol=1e-4, rtol=1e-4)
    for index in TEXT_SIDE:
        _, _, prompt, neg_prompt, _ = PAIRS[index]
        both = centred(direct_pos, index, prompt) - centred(direct_neg, index, neg_prompt)
        expected_diff[index], member_diffs[index] = both[0], both[1:]
        assert not torch.isclose(out["diff"][index], uncentred["diff"][index], atol=1e-3)  # centring changes them
    torch.testing.assert_close(out["diff"], expected_diff, atol=1e-4, rtol=1e-4)
    expected_loss = RANKING_LOSSES["bradley_terry"](member_diffs, LossConfig()).mean()
    torch.testing.assert_close(out["loss"], expected_loss, atol=1e-4, rtol=1e-4)


def test_centring_cancels_a_prompt_only_offset():
    """What the centring is for: adding any constant per prompt to every score of that prompt (the
    pair's own item and its crossed items alike) leaves centred differences unchanged; raw ones move."""
    generator = torch.Generator().manual_seed(0)
    batch, references, members = 6, 3, 2
    text_side = torch.tensor([True, False, True, True, False, False])
    crossings = text_pair_crossings(text_side, references)
    assert crossings.shape == (3 * 2 * references, 2)
    assert set(crossings[:, 1].tolist()) <= set(range(batch))  # only positive images are crossed
    assert all(image != text % batch for text, image in crossings.tolist())  # never the pair's own image

    def scores(count: int) -> dict[str, torch.Tensor]:
        return {"alignment": torch.randn(count, generator=generator), MEMBERS: torch.randn(count, members, 2, generator=generator)}

    items, crossed = scores(2 * batch), scores(len(crossings))
    prompt_offset = torch.randn(2 * batch, generator=generator)  # one constant per text item (its prompt)

    def shifted(values: dict[str, torch.Tensor], texts: torch.Tensor) -> dict[str, torch.Tensor]:
        offset = prompt_offset[texts]
        return {"alignment": values["alignment"] + offset, MEMBERS: values[MEMBERS] + offset[:, None, None]}

    def centred_diff(items: dict, crossed: dict) -> torch.Tensor:
        pos = {k: v[:batch] for k, v in items.items()}
        neg = {k: v[batch:] for k, v in items.items()}
        pos, neg = centre_text_pairs(pos, neg, crossed, text_side)
        return torch.cat([(pos["alignment"] - neg["alignment"]).unsqueeze(-1), pos[MEMBERS][..., 1] - neg[MEMBERS][..., 1]], dim=-1)

    before = centred_diff(items, crossed)
    after = centred_diff(shifted(items, torch.arange(2 * batch)), shifted(crossed, crossings[:, 0]))
    torch.testing.assert_close(after[text_side], before[text_side])
    raw_shift = prompt_offset[:batch] - prompt_offset[batch:]
    assert (raw_shift[text_side].abs() > 1e-3).all()  # the raw differences of those pairs did move


def test_the_offsets_keep_their_gradient():
    """The loss also teaches how other images fit the prompt: its gradient reaches every crossed score
    (ensemble mean and members), not only the pairs' own."""
    generator = torch.Generator().manual_seed(1)
    batch, references, members = 4, 2, 3
    text_side = torch.tensor([True, False, True, False])
    crossed_count = len(text_pair_crossings(text_side, references))
    items = {"quality": torch.randn(2 * batch, generator=generator), "alignment": torch.randn(2 * batch, generator=generator),
             MEMBERS: torch.randn(2 * batch, members, 2, generator=generator)}
    crossed = {"alignment": torch.randn(crossed_count, generator=generator), MEMBERS: torch.randn(crossed_count, members, 2, generator=generator)}
    for tensor in crossed.values():
        tensor.requires_grad_(True)
    pos, neg = ({k: v[:batch] for k, v in items.items()}, {k: v[batch:] for k, v in items.items()})
    pos, neg = centre_text_pairs(pos, neg, crossed, text_side)
    pairwise_loss(pos, neg, torch.tensor([1, 0, 1, 0]), LossConfig())["loss"].backward()
    assert (crossed[MEMBERS].grad[..., 1] != 0).all()  # each member's loss reaches each of its offsets
    assert (crossed[MEMBERS].grad[..., 0] == 0).all()  # quality is never centred


def test_a_short_batch_crosses_each_pair_with_the_others_it_holds_never_itself():
    """`heldout_batches` ends with a partial batch: with fewer pairs than `text_pair_references` + 1,
    each text-side pair is centred on every other pair's image, and a single pair is not centred."""
    crossings = text_pair_crossings(torch.tensor([True, True]), references=5)
    assert crossings.tolist() == [[0, 1], [2, 1], [1, 0], [3, 0]]
    with pytest.raises(ValueError, match="got a batch of 1"):
        text_pair_crossings(torch.tensor([True]), references=5)


def test_text_pair_references_must_fit_in_the_batch():
    with pytest.raises(ConfigError, match=r"loss.text_pair_references \(4\) must be below data.batch_size \(4\)"):
        train_config(4, batch_size=4)
    assert train_config(3, batch_size=4).loss.text_pair_references == 3


def test_a_head_sees_recombined_items_exactly_as_direct_ones(critic, batch):
    """`TokenFeatures.combine` of a batch's own features equals a forward on the recombined inputs."""
    images = [image(p[0]) for p in PAIRS]
    prompts = [p[2] for p in PAIRS]
    crossings = torch.tensor([[1, 0], [0, 3], [2, 2]])
    with torch.no_grad():
        out = critic(**critic.prepare(images, prompts), crossings=crossings)[CROSSED]
    direct = raw(critic, [images[i] for _, i in crossings.tolist()], [prompts[t] for t, _ in crossings.tolist()])
    torch.testing.assert_close(out["alignment"], direct["alignment"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["quality"], direct["quality"], atol=1e-4, rtol=1e-4)


def test_a_training_run_with_centred_text_pairs_trains_and_evaluates_on_them(tmp_path, monkeypatch):
    """End to end through the loader, the loop and held-out evaluation, on synthetic shards whose
    alignment pairs are all text-side prompt swaps."""
    import csv
    import math

    from trainer import train as train_module
    from trainer.synthetic import write_synthetic_shards
    from trainer.train import train

    shards = write_synthetic_shards(tmp_path / "shards", pairs=60, per_shard=30, size=64, alignment_fraction=0.5)
    config = validate_config(TrainConfig, {
        "critic": {"backbone": {"name": "dual-encoder", "options": {"image_size": 64}}, "head": {"hidden": 32, "heads": 4, "layers": 1}},
        "data": {"shards": str(shards), "batch_size": 6, "heldout_percent": 20},
        "stages": [{"kind": "pairwise", "steps": 6, "lr": 1e-3}],
        "loss": {"text_pair_references": 5},
        "output": str(tmp_path / "run"), "eval_every": 3, "checkpoint_every": 3, "progress": False,
    })
    centred_batches = []
    monkeypatch.setattr(train_module, "centre_text_pairs", lambda *args: centred_batches.append(args[-1]) or centre_text_pairs(*args))
    train(config)
    assert sum(int(text_side.sum()) for text_side in centred_batches) > 6  # text-side pairs were centred, in training and held out
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert all(math.isfinite(float(row["loss"])) for row in rows)
    assert any(row.get("loss_alignment") for row in rows)  # text-side pairs were trained on
    assert rows[-1]["heldout_accuracy_alignment"]


def test_backbones_whose_visual_tokens_read_the_prompt_are_refused(monkeypatch, tmp_path):
    """Recombining a batch's images and prompts is only valid for separate towers; a joint VLM's visual
    tokens depend on the text. Both centring options say so before anything trains."""
    from trainer.backbones.dual_encoder import DualEncoder
    from trainer.train import train

    monkeypatch.setattr(DualEncoder, "separable", False)  # as a joint VLM declares itself
    with pytest.raises(ValueError, match="reference_images needs a backbone with separate image and text towers"):
        reference_critic(references=2)
    config = validate_config(TrainConfig, {
        "critic": {"backbone": {"name": "dual-encoder", "options": {"image_size": 64}}, "head": {"hidden": 32, "heads": 4, "layers": 1}},
        "data": {"shards": str(tmp_path / "no-shards-needed"), "batch_size": 4},
        "stages": [{"kind": "pairwise", "steps": 1}],
        "loss": {"text_pair_references": 2},
        "output": str(tmp_path / "run"), "progress": False,
    })
    with pytest.raises(ConfigError, match="loss.text_pair_references: needs a backbone with separate image and text towers"):
        train(config)
    assert not (tmp_path / "run" / "checkpoints").exists()
