"""Backbones and the critic: forward + backward on the real dual encoder, a tiny CLIP and a tiny VLM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.backbones import BACKBONES, DualTowerBackbone, get_backbone
from trainer.backbones.dual_encoder import LITE_MEAN, LITE_STD
from trainer.backbones.processing import ResizeNormalize
from trainer.config import CriticConfig
from trainer.critic import Critic
from trainer.instructions import Conversation
from trainer.synthetic import photo
from trainer.tiny_models import build_tiny_clip, build_tiny_llava

RNG = np.random.default_rng(0)
IMAGES = [RNG.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8) for i in range(4)]
PROMPTS = ["a cat", "a red dog on a sofa", "coffee", "a rocket"]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"clip": str(build_tiny_clip(root / "clip")), "llava": str(build_tiny_llava(root / "llava"))}


def critic_config(name: str, options: dict, lora: dict | None = None) -> CriticConfig:
    return CriticConfig.model_validate({"backbone": {"name": name, "options": options, "lora": lora}, "head": {"hidden": 32, "heads": 4, "layers": 1}})


def pairwise_backward(critic: Critic) -> None:
    inputs = critic.backbone.prepare(IMAGES, PROMPTS)
    scores = critic(**inputs)
    assert scores["quality"].shape == scores["alignment"].shape == (4,)
    loss = torch.nn.functional.softplus(-(scores["quality"][:2] - scores["quality"][2:])).mean() + scores["alignment"].pow(2).mean()
    loss.backward()


def grad_norm(module: torch.nn.Module, needle: str) -> float:
    return sum(float(p.grad.norm()) for n, p in module.named_parameters() if needle in n and p.grad is not None)


def test_unknown_backbone_lists_known_ones():
    with pytest.raises(ValueError, match="known backbones: dual-encoder, hf-clip, hf-vlm"):
        get_backbone("resnet")
    assert {"dual-encoder", "hf-clip", "hf-vlm"} <= set(BACKBONES)


def test_unknown_backbone_option_lists_valid_ones():
    with pytest.raises(ValueError, match="valid options: .*image_size"):
        get_backbone("dual-encoder", image_sise=64)


def test_dual_encoder_uses_real_imagenet_weights_and_trains_the_head():
    critic = Critic(critic_config("dual-encoder", {"image_size": 64}))
    backbone = critic.backbone
    # The packaged EfficientNet-Lite0 weights classify skimage's cat as "Egyptian cat" (ImageNet 285).
    with torch.no_grad():
        logits = backbone.image_model(ResizeNormalize(224, LITE_MEAN, LITE_STD)([photo("chelsea")]))
    assert int(logits.argmax()) == 285
    pairwise_backward(critic)
    assert grad_norm(critic.head, "") > 0
    assert all(p.grad is None for p in backbone.parameters()), "a frozen backbone must get no gradients"


def test_dual_tower_prompt_context_path(tiny_dirs):
    """CoOp-style: embeddings -> encode_text_embeddings equals encode_text, and context vectors get gradients."""
    for backbone in (get_backbone("dual-encoder", image_size=64), get_backbone("hf-clip", model=tiny_dirs["clip"], vision_layers=[-1], text_layers=[-1])):
        assert isinstance(backbone, DualTowerBackbone)
        tokens = backbone.tokenize(PROMPTS[:2])
        embeds = backbone.text_input_embeddings(tokens["input_ids"])
        assert torch.allclose(backbone.encode_text_embeddings(embeds, tokens["attention_mask"]), backbone.encode_text(tokens), atol=1e-5)
        context = torch.zeros(1, 2, embeds.shape[-1], requires_grad=True)
        spliced = torch.cat([embeds[:, :1], context.expand(2, -1, -1), embeds[:, 1:]], dim=1)
        mask = torch.cat([torch.ones(2, 2, dtype=tokens["attention_mask"].dtype), tokens["attention_mask"]], dim=1)
        text = backbone.encode_text_embeddings(spliced, mask)
        image = backbone.encode_image(backbone.preprocess_images(IMAGES[:2]))
        assert text.shape == image.shape
        torch.nn.functional.cosine_similarity(text, image).sum().backward()
        assert context.grad is not None and context.grad.abs().sum() > 0


def test_clip_text_embeddings_match_get_text_features(tiny_dirs):
    backbone = get_backbone("hf-clip", model=tiny_dirs["clip"], vision_layers=[-1, 1], text_layers=[-1, 1])
    tokens = backbone.tokenize(PROMPTS)
    reference = backbone.model.get_text_features(**tokens)
    reference = reference if isinstance(reference, torch.Tensor) else reference.pooler_output
    assert torch.allclose(backbone.encode_text(tokens), reference, atol=1e-5)


def test_clip_similarity_is_the_towers_cosine_and_conditions_the_head(tiny_dirs):
    backbone = get_backbone("hf-clip", model=tiny_dirs["clip"], vision_layers=[-1], text_layers=[-1])
    inputs = backbone.prepare(IMAGES, PROMPTS)
    with torch.no_grad():
        similarity = backbone(**inputs).similarity
        image = backbone.encode_image(inputs["pixel_values"])
        text = backbone.encode_text({k: inputs[k] for k in ("input_ids", "attention_mask")})
    torch.testing.assert_close(similarity, torch.nn.functional.cosine_similarity(image, text), atol=1e-5, rtol=1e-4)
    config = critic_config("hf-clip", {"model": tiny_dirs["clip"], "vision_layers": [-1], "text_layers": [-1]}).model_copy(deep=True)
    config.head.similarity = True
    critic = Critic(config)  # refused before: hf-clip did not hand over its similarity
    pairwise_backward(critic)
    assert grad_norm(critic.head.similarity, "") > 0  # the similarity reaches the scores


def test_tiny_clip_with_lora_forward_backward(tiny_dirs):
    critic = Critic(critic_config("hf-clip", {"model": tiny_dirs["clip"], "vision_layers": [-1, 1], "text_layers": [-1]}, {"r": 4, "target_modules": ["q_proj", "v_proj"]}))
    critic.backbone.set_trainable(True)
    pairwise_backward(critic)
    assert grad_norm(critic.backbone, "lora_B") > 0
    assert grad_norm(critic.head.fusion, "visual_layer_gate") > 0


def test_tiny_vlm_pairwise_and_lm_loss_backward(tiny_dirs):
    critic = Critic(critic_config("hf-vlm", {"model": tiny_dirs["llava"], "layers": [-1, 1]}, {"r": 4, "target_modules": ["q_proj", "v_proj"]}))
    features = critic.backbone(**critic.backbone.prepare(IMAGES[:2], PROMPTS[:2]))
    assert features.visual[0].shape[1] == 16 and bool(features.visual_mask.all())  # 32 px / patch 8 = 16 image tokens
    critic.backbone.set_trainable(True)
    pairwise_backward(critic)
    assert grad_norm(critic.backbone, "lora_B") > 0
    critic.zero_grad()
    conversations = [
        Conversation("a", IMAGES[:2], ["pos", "neg"], "Which image has better visual quality?", "Image 1."),
        Conversation("b", IMAGES[2:3], ["pos"], "Is the visual quality of this image good or poor?", "Poor."),
    ]
    batch = critic.backbone.processor.conversations(conversations)
    tokenizer = critic.backbone.processor.hf_processor.tokenizer
    answers = [tokenizer.decode(row[row != -100]).strip() for row in batch["labels"]]
    assert answers == ["Image 1.</s>", "Poor.</s>"]
    loss = critic(**batch)["lm_loss"]
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert grad_norm(critic.backbone, "lora_") > 0


@pytest.mark.parametrize("kind", ["dual-encoder", "hf-vlm"])
def test_save_load_gives_identical_scores(tmp_path, tiny_dirs, kind):
    if kind == "dual-encoder":
        config = critic_config("dual-encoder", {"image_size": 64})
    else:
        config = critic_config("hf-vlm", {"model": tiny_dirs["llava"], "layers": [-1]}, {"r": 4, "target_modules": ["q_proj", "v_proj"]})
    critic = Critic(config)
    saved = set(critic.own_state())
    with torch.no_grad():  # move adapters and new projections off their initial values so loading matters
        for name, parameter in critic.named_parameters():
            if "lora_B" in name or (name in saved and name.startswith("backbone.")):
                parameter.add_(0.05 * torch.randn_like(parameter))
    before = critic.score(IMAGES, PROMPTS)
    critic.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "critic.json").is_file() and (tmp_path / "ckpt" / "model.safetensors").is_file()
    if kind == "hf-vlm":
        assert (tmp_path / "ckpt" / "adapters" / "model" / "adapter_config.json").is_file()
    loaded = Critic.from_pretrained(tmp_path / "ckpt")
    after = loaded.score(IMAGES, PROMPTS)
    fresh = Critic(config).score(IMAGES, PROMPTS)
    for name in ("quality", "alignment"):
        assert torch.equal(before[name], after[name])
        assert not torch.allclose(before[name], fresh[name]), "a freshly built critic must differ, or this test proves nothing"


def test_score_rejects_bad_image_modes():
    critic = Critic(critic_config("dual-encoder", {"image_size": 64}))
    grey = np.zeros((32, 32), np.uint8)
    with pytest.raises(ValueError, match="image 1: expected a uint8 RGB array"):
        critic.score([IMAGES[0], grey], ["a", "b"])
    with pytest.raises(ValueError, match="image 0: expected a uint8 RGB array"):
        critic.score([np.zeros((8, 8, 4), np.uint8)], ["a"])
