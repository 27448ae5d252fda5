"""A head ensemble (`head.ensemble: K`): K independently initialised heads on the same tower features,
scoring with their mean, each trained by its own ranking loss. Real photos, packaged weights."""

from __future__ import annotations

import cv2
import pytest
import torch

from trainer.config import CriticConfig, LossConfig
from trainer.critic import Critic
from trainer.losses import MEMBERS, pairwise_loss
from trainer.synthetic import photo

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]
PROMPTS = ["an astronaut", "a cat", "a cup of coffee", "a rocket"]


def ensemble_critic(members: int) -> Critic:
    config = {"backbone": {"name": "dual-encoder", "options": {"image_size": 64}}, "head": {"hidden": 32, "heads": 4, "layers": 1, "detail": {"side": 64}, "ensemble": members}}
    return Critic(CriticConfig.model_validate(config))


def test_scores_are_the_mean_of_distinct_members_and_survive_a_round_trip(tmp_path):
    torch.manual_seed(0)
    critic = ensemble_critic(3)
    images = [photo(name) for name in PHOTOS]
    with torch.no_grad():
        out = critic.eval()(**critic.prepare(images, PROMPTS))
    assert out[MEMBERS].shape == (len(images), 3, 2)
    torch.testing.assert_close(out["quality"], out[MEMBERS][..., 0].mean(1))
    torch.testing.assert_close(out["alignment"], out[MEMBERS][..., 1].mean(1))
    assert not torch.allclose(out[MEMBERS][:, 0], out[MEMBERS][:, 1])  # independently initialised
    assert any(name.startswith("head.members.2.qqt.") for name in critic.own_state())

    scores = critic.score(images, PROMPTS)
    critic.save_pretrained(tmp_path / "ckpt")
    again = Critic.from_pretrained(tmp_path / "ckpt")
    assert again.config.head.ensemble == 3
    for name in ("quality", "alignment"):
        torch.testing.assert_close(again.score(images, PROMPTS)[name], scores[name])
    with pytest.raises(ValueError, match="do not match the critic config"):
        ensemble_critic(1).load_weights(tmp_path / "ckpt")


def test_each_member_is_ranked_by_its_own_loss_not_through_the_mean():
    """The gradient reaching member k depends on member k's scores only, and equals 1/K of that member's
    own loss gradient; a loss on the mean score would couple them."""
    torch.manual_seed(0)
    critic = ensemble_critic(2)
    clean = [cv2.resize(photo(name), (64, 64), interpolation=cv2.INTER_AREA) for name in PHOTOS]
    blurred = [cv2.GaussianBlur(image, (0, 0), 2.0) for image in clean]
    with torch.no_grad():
        out = critic(**critic.prepare(clean + blurred, PROMPTS + PROMPTS))
    aspect = torch.tensor([0, 1, 0, 1])
    config = LossConfig()

    def member_gradient(members: torch.Tensor) -> torch.Tensor:
        members = members.clone().requires_grad_(True)
        mean = members.mean(1)
        n = len(PHOTOS)
        pos = {"quality": mean[:n, 0], "alignment": mean[:n, 1], MEMBERS: members[:n]}
        neg = {"quality": mean[n:, 0], "alignment": mean[n:, 1], MEMBERS: members[n:]}
        pairwise_loss(pos, neg, aspect, config)["loss"].backward()
        return members.grad

    gradient = member_gradient(out[MEMBERS])
    shifted = out[MEMBERS].clone()
    shifted[:, 1] += torch.linspace(-3, 3, len(shifted)).unsqueeze(-1)  # move member 1 only
    torch.testing.assert_close(member_gradient(shifted)[:, 0], gradient[:, 0])
    assert not torch.allclose(member_gradient(shifted)[:, 1], gradient[:, 1])

    alone = out[MEMBERS][:, 0].clone().requires_grad_(True)
    n = len(PHOTOS)
    pairwise_loss({"quality": alone[:n, 0], "alignment": alone[:n, 1]}, {"quality": alone[n:, 0], "alignment": alone[n:, 1]}, aspect, config)["loss"].backward()
    torch.testing.assert_close(gradient[:, 0], alone.grad / 2)
