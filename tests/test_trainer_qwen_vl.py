"""The `hf-vlm` backbone on a tiny random-weight Qwen2.5-VL (the family configs/train_eliq.yaml names).

The fixture is a real Qwen2.5-VL architecture (windowed ViT, 2x2 patch merging, M-RoPE Qwen2 LM) with
the real processor classes and chat template, saved with save_pretrained and loaded back through the
backbone's own `from_pretrained` path, so what runs here is what runs on the cluster, only smaller.
"""

from __future__ import annotations

import csv
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pairgen.shards import iter_pairs
from trainer.backbones import get_backbone
from trainer.config import CriticConfig
from trainer.critic import Critic
from trainer.data import ConversationBatcher, ErrorPolicy
from trainer.instructions import conversations_for_pair
from trainer.synthetic import write_synthetic_shards
from trainer.tiny_models import build_tiny_qwen2_5_vl
from trainer.train import main

REPO = Path(__file__).resolve().parents[1]
ELIQ = yaml.safe_load((REPO / "configs" / "train_eliq.yaml").read_text())
ELIQ_BACKBONE = ELIQ["critic"]["backbone"]
RNG = np.random.default_rng(0)
IMAGES = [RNG.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8) for i in range(4)]
PROMPTS = ["a cat", "a red dog on a sofa", "coffee", "a rocket"]


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory) -> str:
    return str(build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "qwen2_5_vl"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("shards"), pairs=48, per_shard=16, size=64, alignment_fraction=0.3)


def eliq_critic(qwen_dir: str) -> Critic:
    """The critic of configs/train_eliq.yaml (layers, LoRA targets) on the tiny model, float32, small head."""
    options = {**ELIQ_BACKBONE["options"], "model": qwen_dir, "dtype": "float32"}
    config = {"backbone": {**ELIQ_BACKBONE, "options": options}, "head": {"hidden": 32, "heads": 4, "layers": 1}}
    return Critic(CriticConfig.model_validate(config))


def grad_norm(module: torch.nn.Module, needle: str) -> float:
    return sum(float(p.grad.norm()) for n, p in module.named_parameters() if needle in n and p.grad is not None)


def test_tiny_qwen_loads_through_hf_vlm_with_its_own_processor(qwen_dir):
    backbone = get_backbone("hf-vlm", model=qwen_dir, layers=ELIQ_BACKBONE["options"]["layers"])
    assert type(backbone.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    hf = backbone.processor.hf_processor
    assert type(hf).__name__ == "Qwen2_5_VLProcessor" and type(hf.image_processor).__name__.startswith("Qwen2VLImageProcessor")
    inputs = backbone.prepare(IMAGES, PROMPTS)
    copy = pickle.loads(pickle.dumps(backbone.processor))  # what loader workers and Ray actors receive
    assert type(copy.hf_processor).__name__ == "Qwen2_5_VLProcessor"
    assert all(torch.equal(inputs[k], v) for k, v in copy(IMAGES, PROMPTS).items())
    grid = inputs["image_grid_thw"]
    merge = hf.image_processor.merge_size
    # pixel_values are flattened patches of all images (not [B, C, H, W]); one image token per 2x2 merged patches
    assert inputs["pixel_values"].shape == (int(grid.prod(1).sum()), 3 * 2 * 14 * 14)
    assert ((inputs["input_ids"] == backbone.image_token_id).sum(1) == grid.prod(1) // merge**2).all()
    text = hf.tokenizer.decode(inputs["input_ids"][0])
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>")
    assert "'a cat'" in text and "<|im_start|>assistant\n" in text

    with torch.no_grad():
        features = backbone(**inputs)
        hidden = backbone.base_model()(**inputs, output_hidden_states=True).hidden_states
    assert len(hidden) == backbone.model.config.text_config.num_hidden_layers + 1 == 17
    image = inputs["input_ids"] == backbone.image_token_id
    assert features.visual_mask.sum(1).tolist() == image.sum(1).tolist()
    for index, layer in enumerate(ELIQ_BACKBONE["options"]["layers"]):  # [-1, -8, -16]: the layers configured, in order
        for row in range(len(IMAGES)):
            count = int(image[row].sum())
            assert torch.equal(features.visual[index][row, :count], hidden[layer][row][image[row]])
    assert not torch.allclose(features.visual[0], features.visual[1])


def test_processor_options_cap_the_image_tokens(qwen_dir):
    backbone = get_backbone("hf-vlm", model=qwen_dir, layers=[-1], processor_options={"size": {"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 4}})
    big = [np.zeros((1024, 1024, 3), np.uint8), np.zeros((1024, 512, 3), np.uint8)]
    inputs = backbone.prepare(big, PROMPTS[:2])
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 2]]  # aspect ratio kept, at most 28 * 28 * 4 px
    assert (inputs["input_ids"] == backbone.image_token_id).sum(1).tolist() == [4, 2]
    default = get_backbone("hf-vlm", model=qwen_dir, layers=[-1]).prepare(big, PROMPTS[:2])
    assert default["image_grid_thw"].tolist() == [[1, 8, 8], [1, 10, 4]]  # the fixture's own max_pixels (28 * 28 * 16)


def test_lora_on_the_eliq_target_modules_pairwise_backward(qwen_dir):
    critic = eliq_critic(qwen_dir)
    targets = ELIQ_BACKBONE["lora"]["target_modules"]
    adapted = {n.rsplit(".", 1)[0] for n, _ in critic.backbone.named_parameters() if "lora_A" in n}
    # q/k/v/o of every text layer; the vision tower's attention is `qkv`/`proj`, so it stays frozen as in ELIQ
    assert len(adapted) == len(targets) * 16 and all(".language_model.layers." in n for n in adapted)
    critic.backbone.set_trainable(True)
    inputs = critic.backbone.prepare(IMAGES, PROMPTS)
    scores = critic(**inputs)
    assert scores["quality"].shape == scores["alignment"].shape == (4,)
    loss = torch.nn.functional.softplus(-(scores["quality"][:2] - scores["quality"][2:])).mean() + scores["alignment"].pow(2).mean()
    loss.backward()
    assert grad_norm(critic.backbone, "lora_B") > 0
    assert grad_norm(critic.head.fusion, "visual_layer_gate") > 0
    assert all(p.grad is None for n, p in critic.backbone.named_parameters() if "lora_" not in n)


def test_instruct_lm_loss_on_conversations_from_shards(qwen_dir, shards):
    critic = eliq_critic(qwen_dir)
    critic.backbone.set_trainable(True)
    pairs = list(iter_pairs(shards))[:2]
    rng = random.Random(0)  # the batcher's own seed: the same conversations
    conversations = [c for p in pairs for c in conversations_for_pair(p, rng)]
    batch = ConversationBatcher(critic.backbone.processor, 2, ErrorPolicy(skip=False)).collate(pairs)["inputs"]
    assert batch["input_ids"].shape[0] == len(conversations) == 4
    assert batch["image_grid_thw"].shape[0] == sum(len(c.images) for c in conversations)
    expected = [c.answer for c in conversations]
    tokenizer = critic.backbone.processor.hf_processor.tokenizer
    answers = [tokenizer.decode(row[row != -100]) for row in batch["labels"]]
    assert answers == [f"{a}<|im_end|>\n" for a in expected]  # the answer and the end of turn, nothing of the prompt
    loss = critic(**batch)["lm_loss"]
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert grad_norm(critic.backbone, "lora_B") > 0


def test_train_eliq_yaml_end_to_end_on_the_tiny_model(qwen_dir, shards, tmp_path):
    """configs/train_eliq.yaml as written (bf16 weights + autocast, sdpa, layers, LoRA, both stages),
    with only the model, data, sizes, step counts and Ray overridden."""
    output = tmp_path / "run"
    overrides = [
        f"critic.backbone.options.model={qwen_dir}", f"data.shards={shards}", "data.batch_size=2", "data.num_workers=0",
        "data.heldout_percent=25", "data.heldout_max_pairs=4", "critic.head.hidden=32", "critic.head.heads=4", "critic.head.layers=1",
        "stages[0].steps=2", "stages[1].steps=2", "optim.warmup_steps=0", "ray.enabled=false", f"output={output}",
        "eval_every=2", "checkpoint_every=2", "device=cpu", "progress=false",
    ]
    assert main(["--config", str(REPO / "configs" / "train_eliq.yaml"), *overrides]) == 0
    with open(output / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(int(r["step"]), r["kind"]) for r in rows] == [(1, "instruct"), (2, "instruct"), (3, "pairwise"), (4, "pairwise")]
    assert all(np.isfinite(float(r["loss"])) for r in rows) and rows[-1]["heldout_accuracy"]
    assert (output / "final" / "adapters" / "model" / "adapter_config.json").is_file()
    critic = Critic.from_pretrained(output / "final")
    assert critic.backbone.model.dtype == torch.bfloat16
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = critic.score(IMAGES[:2], PROMPTS[:2])
    assert torch.isfinite(scores["quality"]).all()
