"""What the critic head is conditioned on besides tower tokens: detail statistics (trainer.detail) and the
dual encoder's imagenet-concepts image-text similarity, on real photos with the packaged weights."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
import torch

from pairgen.config_base import validate_config
from trainer.config import CriticConfig, TrainConfig
from trainer.critic import Critic
from trainer.detail import DETAIL_FEATURES, WithDetail, detail_statistics
from trainer.losses import MEMBERS
from trainer.synthetic import photo, write_synthetic_shards
from trainer.train import train

FEATURE = {name: index for index, name in enumerate(DETAIL_FEATURES)}
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket"]


def stats(image: np.ndarray, side: int = 384) -> dict[str, float]:
    return dict(zip(DETAIL_FEATURES, detail_statistics(image, side).tolist(), strict=True))


@pytest.mark.parametrize("name", PHOTOS)
def test_blur_noise_and_exposure_move_the_statistics_that_measure_them(name):
    image = photo(name)
    clean = stats(image)
    blurred = stats(cv2.GaussianBlur(image, (0, 0), 2.5))
    noisy = stats(np.clip(image + np.random.default_rng(0).normal(0, 20, image.shape), 0, 255).astype(np.uint8))
    dark = stats((image * 0.4).astype(np.uint8))
    assert blurred["laplacian_var_full"] < clean["laplacian_var_full"] - 0.05
    assert blurred["gradient_mean"] < clean["gradient_mean"]
    assert noisy["noise_sigma"] > clean["noise_sigma"] + 0.05
    assert dark["brightness"] < 0.5 * clean["brightness"] and dark["contrast"] < clean["contrast"]
    # coarser octaves are less affected by blur than the finest one
    assert clean["laplacian_var_quarter"] - blurred["laplacian_var_quarter"] < clean["laplacian_var_full"] - blurred["laplacian_var_full"]


def test_images_are_measured_at_one_working_size_and_never_enlarged():
    image = photo("astronaut")  # 512 x 512
    shrunk = cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(detail_statistics(image, 256), detail_statistics(shrunk, 256), atol=1e-5)
    np.testing.assert_allclose(detail_statistics(shrunk, 1024), detail_statistics(shrunk, 256), atol=1e-5)
    assert not np.allclose(detail_statistics(image, 512), detail_statistics(image, 256))
    tiny = detail_statistics(image[:2, :3], 384)  # degenerate sizes still give finite numbers
    assert tiny.shape == (len(DETAIL_FEATURES),) and np.isfinite(tiny).all()


def detail_critic(side: int = 64) -> Critic:
    config = {"backbone": {"name": "dual-encoder", "options": {"image_size": 64}}, "head": {"hidden": 32, "heads": 4, "layers": 1, "detail": {"side": side}}}
    return Critic(CriticConfig.model_validate(config))


def test_critic_processor_adds_detail_pickles_and_scores_depend_on_it(tmp_path):
    critic = detail_critic()
    images = [photo(name) for name in PHOTOS]
    prompts = ["an astronaut", "a cat", "coffee", "a rocket"]
    copy = pickle.loads(pickle.dumps(critic.processor))  # what loader workers receive
    assert isinstance(copy, WithDetail) and copy.max_length == critic.backbone.processor.max_length
    inputs = copy(images, prompts)
    assert inputs["detail"].shape == (4, len(DETAIL_FEATURES))
    torch.testing.assert_close(inputs["detail"], critic.prepare(images, prompts)["detail"])

    before = critic.score(images, prompts)
    with torch.no_grad():
        shifted = critic(**{**inputs, "detail": inputs["detail"] + 0.5})
    assert not torch.allclose(shifted["quality"], before["quality"])

    critic.save_pretrained(tmp_path / "ckpt")
    again = Critic.from_pretrained(tmp_path / "ckpt")
    assert again.config.head.detail.side == 64
    torch.testing.assert_close(again.score(images, prompts)["quality"], before["quality"])


def test_detail_must_match_the_head():
    critic = detail_critic()
    inputs = critic.backbone.prepare([photo("coffee")], ["coffee"])  # no detail statistics
    with pytest.raises(ValueError, match="detail statistics"):
        critic(**inputs)


@pytest.mark.parametrize("ensemble", [1, 3])
def test_detail_critic_learns_blur_and_noise_through_a_loader_worker(tmp_path, ensemble):
    """Synthetic pairs are blur/noise distortions: exactly what the statistics see, so a few steps suffice.
    With a head ensemble, every member has to learn it, not just their mean."""
    shards = write_synthetic_shards(tmp_path / "shards", pairs=160, per_shard=80, size=96, alignment_fraction=0.0)
    config = validate_config(
        TrainConfig,
        {
            "critic": {"backbone": {"name": "dual-encoder", "options": {"image_size": 32}}, "head": {"hidden": 32, "heads": 4, "layers": 1, "detail": {"side": 96}, "ensemble": ensemble}},
            "data": {"shards": str(shards), "batch_size": 16, "heldout_percent": 25, "num_workers": 1},
            "stages": [{"kind": "pairwise", "steps": 30, "lr": 3e-3}],
            "optim": {"warmup_steps": 3},
            "output": str(tmp_path / "run"),
            "eval_every": 10,
            "progress": False,
        },
    )
    train(config)
    critic = Critic.from_pretrained(tmp_path / "run" / "final")
    assert critic.config.head.detail is not None
    rng = np.random.default_rng(1)
    clean = [cv2.resize(photo(name), (96, 96), interpolation=cv2.INTER_AREA) for name in PHOTOS]
    blurred = [cv2.GaussianBlur(image, (0, 0), 2.0) for image in clean]
    noisy = [np.clip(image + rng.normal(0, 30, image.shape), 0, 255).astype(np.uint8) for image in clean]
    prompts = ["x"] * len(clean)
    quality = {name: critic.score(images, prompts)["quality"] for name, images in (("clean", clean), ("blurred", blurred), ("noisy", noisy))}
    assert (quality["clean"] > quality["blurred"]).all() and (quality["clean"] > quality["noisy"]).all()
    if ensemble > 1:
        with torch.no_grad():
            members = {name: critic(**critic.prepare(images, prompts))[MEMBERS][..., 0] for name, images in (("clean", clean), ("blurred", blurred), ("noisy", noisy))}
        assert members["clean"].shape == (len(clean), ensemble)
        mean = {name: scores.mean(0) for name, scores in members.items()}  # per member, over the photos
        assert (mean["clean"] > mean["blurred"]).all() and (mean["clean"] > mean["noisy"]).all()


# --- the dual encoder's imagenet-concepts space and the similarity-conditioned head -------------


@pytest.fixture(scope="module")
def concept_critic() -> Critic:
    config = {
        "backbone": {"name": "dual-encoder", "options": {"image_size": 224, "shared_space": "imagenet-concepts"}},
        "head": {"hidden": 32, "heads": 4, "layers": 1, "similarity": True},
    }
    return Critic(CriticConfig.model_validate(config))


def test_imagenet_concepts_match_photos_with_their_captions(concept_critic):
    """The packaged weights, never trained together, agree on what is in a photo through the ImageNet
    class names: for most captions the photo it describes beats the other photos (chance: 0.5)."""
    from trainer.synthetic import PHOTOS

    backbone = concept_critic.backbone
    names = list(PHOTOS)
    images = [photo(name) for name in names]
    with torch.no_grad():
        columns = [backbone(**backbone.prepare(images, [PHOTOS[name]] * len(names))).similarity for name in names]
    similarity = torch.stack(columns, dim=1)  # rows: photos, columns: captions
    beaten = [(similarity[i, i] > torch.cat([similarity[:i, i], similarity[i + 1 :, i]])).float().mean() for i in range(len(names))]
    assert float(torch.stack(beaten).mean()) >= 0.75
    assert backbone.new_parameter_names() == []  # no random projections in this space
    with torch.no_grad():
        image = torch.nn.functional.normalize(backbone.encode_image(backbone.preprocess_images(images[:1])), dim=-1)
        text = torch.nn.functional.normalize(backbone.encode_text(backbone.tokenize([PHOTOS[names[0]]])), dim=-1)
    torch.testing.assert_close((image * text).sum(-1), similarity[:1, 0])  # cosine baseline = the head's input


def test_similarity_head_uses_it_and_needs_a_backbone_that_has_it(concept_critic, tmp_path):
    images, prompts = [photo("chelsea")] * 2, ["a photo of a tabby cat", "a rocket on a launch pad"]
    inputs = concept_critic.prepare(images, prompts)
    features = concept_critic.backbone(**inputs)
    with torch.no_grad():
        scores = concept_critic.head(features)
        moved = concept_critic.head(type(features)(features.visual, features.text, features.visual_mask, features.text_mask, features.similarity + 1))
    assert not torch.allclose(scores["alignment"], moved["alignment"])
    concept_critic.save_pretrained(tmp_path / "ckpt")
    torch.testing.assert_close(Critic.from_pretrained(tmp_path / "ckpt").score(images, prompts)["alignment"], concept_critic.score(images, prompts)["alignment"])
    with pytest.raises(ValueError, match="head.similarity needs a backbone with a shared image-text space"):
        Critic(CriticConfig.model_validate({"backbone": {"name": "dual-encoder", "options": {"image_size": 32}}, "head": {"hidden": 32, "similarity": True}}))
    with pytest.raises(ValueError, match="shared_space must be one of"):
        Critic(CriticConfig.model_validate({"backbone": {"name": "dual-encoder", "options": {"shared_space": "clip"}}}))
