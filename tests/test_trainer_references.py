"""Alignment centred on reference images (`critic.reference_images`, `trainer.references`): the
score is the head's alignment minus the prompt's mean over fixed reference images. Real photos,
packaged weights (EfficientNet-Lite0 + MiniLM in the imagenet-concepts space)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.config import CriticConfig
from trainer.critic import REFERENCES_NAME, Critic
from trainer.losses import MEMBERS
from trainer.references import add_references, draw_references
from trainer.synthetic import photo

IMAGES = [photo(name) for name in ("astronaut", "chelsea", "coffee", "rocket")]
PROMPTS = ["an astronaut", "a cat", "an astronaut", "a rocket on a launch pad"]
REFERENCES = [photo(name) for name in ("camera", "hubble_deep_field", "immunohistochemistry")]


def reference_critic(references: int = 3, lora: dict | None = None) -> Critic:
    torch.manual_seed(0)
    config = {
        "backbone": {"name": "dual-encoder", "options": {"image_size": 64, "shared_space": "imagenet-concepts"}, "lora": lora},
        "head": {"hidden": 32, "heads": 4, "layers": 1, "detail": {"side": 64}, "similarity": True, "ensemble": 2},
        "reference_images": references,
    }
    return Critic(CriticConfig.model_validate(config)).eval()


@pytest.fixture(scope="module")
def critic() -> Critic:
    critic = reference_critic()
    critic.set_references(REFERENCES)
    return critic


def raw(critic: Critic, images: list[np.ndarray], prompts: list[str]) -> dict[str, torch.Tensor]:
    """The head's own scores of (image, prompt) items, each computed directly, with no centring."""
    with torch.no_grad():
        return critic(**critic.prepare(images, prompts))


def test_alignment_is_centred_on_the_prompts_mean_over_the_references(critic):
    """Equal to scoring every (reference, prompt) combination directly: the recombined tower features
    (tokens, detail statistics, concept-space similarity) are those a direct forward computes."""
    direct = raw(critic, IMAGES, PROMPTS)
    out = critic.predict(IMAGES, PROMPTS)
    for index, prompt in enumerate(PROMPTS):
        offsets = raw(critic, REFERENCES, [prompt] * len(REFERENCES))
        torch.testing.assert_close(out["alignment"][index], direct["alignment"][index] - offsets["alignment"].mean(), atol=1e-4, rtol=1e-4)
        expected_members = direct[MEMBERS][index, :, 1] - offsets[MEMBERS][:, :, 1].mean(0)
        torch.testing.assert_close(out[MEMBERS][index, :, 1], expected_members, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["quality"], direct["quality"])  # quality is not centred
    torch.testing.assert_close(out[MEMBERS][..., 0], direct[MEMBERS][..., 0])
    # one prompt's images keep their order: only a per-prompt constant is removed
    same = [0, 2]
    assert torch.sign(out["alignment"][same[0]] - out["alignment"][same[1]]) == torch.sign(direct["alignment"][same[0]] - direct["alignment"][same[1]])
    torch.testing.assert_close(critic.score(IMAGES, PROMPTS, batch_size=3)["alignment"], out["alignment"])  # cache across batches


def test_reference_features_are_computed_once_while_scoring_and_again_after_training(tmp_path, monkeypatch):
    """`Critic.score`, called batch after batch (as `trainer.evaluate` and `trainer.score` do), passes
    the references through the towers once; training mode or new weights make it compute them afresh."""
    saved = reference_critic()
    saved.set_references(REFERENCES)
    saved.save_pretrained(tmp_path / "ckpt")
    critic = Critic.from_pretrained(tmp_path / "ckpt")  # as trainer.score and trainer.evaluate load it
    calls = []
    features = critic._features
    monkeypatch.setattr(critic, "_features", lambda images, prompts: calls.append(len(images)) or features(images, prompts))
    first = critic.score(IMAGES, PROMPTS, batch_size=2)
    critic.score(IMAGES, PROMPTS, batch_size=2)
    assert calls.count(len(REFERENCES)) == 1 and len(calls) == 1 + 4  # the bank once, then the 4 batches
    critic.train()
    critic.score(IMAGES, PROMPTS, batch_size=4)
    assert calls.count(len(REFERENCES)) == 2
    critic.eval()
    with torch.no_grad():
        for parameter in critic.head.parameters():
            parameter.add_(0.1)
    moved = critic.score(IMAGES, PROMPTS)  # fills the cache with the moved weights, and stays in eval mode
    assert not torch.allclose(moved["alignment"], first["alignment"])
    critic.load_trained_weights(tmp_path / "ckpt")  # back to the saved weights: the cached offsets are stale
    torch.testing.assert_close(critic.score(IMAGES, PROMPTS)["alignment"], first["alignment"])
    assert calls.count(len(REFERENCES)) == 4  # once more for the moved weights, once more after the reload
    critic.to(torch.float64)
    assert critic._reference_features is None  # a new dtype or device also forgets it


def test_references_survive_a_round_trip_and_are_required(critic, tmp_path):
    critic.save_pretrained(tmp_path / "ckpt")
    again = Critic.from_pretrained(tmp_path / "ckpt")
    assert len(again.references) == 3 and all(np.array_equal(a, b) for a, b in zip(again.references, REFERENCES, strict=True))
    torch.testing.assert_close(again.score(IMAGES, PROMPTS)["alignment"], critic.score(IMAGES, PROMPTS)["alignment"])

    (tmp_path / "ckpt" / REFERENCES_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=REFERENCES_NAME):
        Critic.from_pretrained(tmp_path / "ckpt")
    unset = reference_critic()
    with pytest.raises(ValueError, match="no reference images are set"):
        unset.save_pretrained(tmp_path / "never")
    assert not (tmp_path / "never").exists()
    with pytest.raises(ValueError, match="no reference images are set"):
        unset.predict(IMAGES, PROMPTS)
    with pytest.raises(ValueError, match="reference_images is 3, got 2"):
        unset.set_references(REFERENCES[:2])


def test_references_are_drawn_from_distinct_positives_deterministically(shard_dir):
    first = draw_references(shard_dir, 3, seed=0)
    assert len(first) == 3
    assert len({image.tobytes() for image in first}) == 3  # distinct images (the shards repeat each photo)
    assert all(np.array_equal(a, b) for a, b in zip(first, draw_references(shard_dir, 3, seed=0), strict=True))
    others = [draw_references(shard_dir, 3, seed=seed) for seed in (1, 2, 3)]
    assert any(not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True)) for other in others)
    with pytest.raises(ValueError, match="asked for 9 reference images, the shards hold 8 distinct"):
        draw_references(shard_dir, 9)


def test_add_references_writes_a_new_checkpoint_and_never_touches_the_old(shard_dir, tmp_path):
    """The copy keeps every trained weight, LoRA adapters included (moved off their zero start here,
    so a copy without them would score differently)."""
    plain = reference_critic(references=0, lora={"r": 2, "target_modules": ["query", "value"]})
    with torch.no_grad():
        for name, parameter in plain.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    plain.save_pretrained(tmp_path / "plain")
    before = sorted(path.name for path in (tmp_path / "plain").iterdir())
    out = add_references(tmp_path / "plain", shard_dir, 2, tmp_path / "centred")
    centred = Critic.from_pretrained(out)
    assert centred.config.reference_images == 2 and len(centred.references) == 2
    torch.testing.assert_close(centred.score(IMAGES, PROMPTS)["quality"], plain.score(IMAGES, PROMPTS)["quality"])
    torch.testing.assert_close(centred.backbone.state_dict(), plain.backbone.state_dict())
    assert sorted(path.name for path in (tmp_path / "plain").iterdir()) == before
    with pytest.raises(FileExistsError, match="centred exists"):
        add_references(tmp_path / "plain", shard_dir, 2, tmp_path / "centred")


def test_training_draws_references_from_its_shards_and_saves_them(tmp_path):
    from pairgen.config_base import validate_config
    from trainer.config import TrainConfig
    from trainer.synthetic import write_synthetic_shards
    from trainer.train import train

    shards = write_synthetic_shards(tmp_path / "shards", pairs=40, per_shard=20, size=64, alignment_fraction=0.5)
    config = validate_config(TrainConfig, {
        "critic": {"backbone": {"name": "dual-encoder", "options": {"image_size": 64}}, "head": {"hidden": 32, "heads": 4, "layers": 1}, "reference_images": 2},
        "data": {"shards": str(shards), "batch_size": 4, "heldout_percent": 20},
        "stages": [{"kind": "pairwise", "steps": 4, "lr": 1e-3}],
        "output": str(tmp_path / "run"), "eval_every": 2, "checkpoint_every": 2, "progress": False,
    })
    train(config)
    saved = Critic.from_pretrained(tmp_path / "run" / "final")
    expected = draw_references(shards, 2, seed=config.seed)
    assert all(np.array_equal(a, b) for a, b in zip(saved.references, expected, strict=True))
    scores = saved.score(IMAGES, PROMPTS)
    assert torch.isfinite(scores["alignment"]).all()
