"""Tiny random Hugging Face models built locally from configs: tests and `bench_train.py --tiny`.

Nothing comes from the Hub: tokenizers are built in memory (a byte-level BPE trained on a few
strings, for the Llama and Qwen2 sides; a small vocab for CLIP), models from configs with random
weights, then `save_pretrained` to a folder that the `hf-vlm` / `hf-clip` backbones load with the
same `from_pretrained` code real models use.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% if message['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _train_byte_bpe(special: list[str], unk: str | None = None):
    """A byte-level BPE (300 tokens, `special` first) trained on a few strings, as a `tokenizers.Tokenizer`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [string.ascii_letters + string.digits + string.punctuation + " ", "image quality prompt match good poor yes no"] * 4
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def _byte_bpe_tokenizer(special: list[str]):
    from transformers import PreTrainedTokenizerFast

    tok = _train_byte_bpe(special, unk="<unk>")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def _bpe_vocab_merges(special: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary and merges of `_train_byte_bpe`, for tokenizer classes built from them (Qwen2)."""
    model = json.loads(_train_byte_bpe(special).to_str())["model"]
    return model["vocab"], [tuple(merge) for merge in model["merges"]]


REAL_SIZE_LLAVA = {  # LLaVA-1.5-style: CLIP ViT-L/14 at 336 px + a 24-layer, 2048-wide Llama (about 1.6 B parameters)
    "image_size": 336, "patch": 14, "vision_hidden": 1024, "vision_layers": 24, "vision_heads": 16,
    "hidden": 2048, "layers": 24, "heads": 16, "kv_heads": 16, "vocab_size": 32000,
}


def build_tiny_llava(
    directory: str | Path,
    image_size: int = 32,
    hidden: int = 32,
    layers: int = 2,
    *,
    patch: int = 8,
    vision_hidden: int | None = None,
    vision_layers: int | None = None,
    vision_heads: int = 4,
    heads: int = 4,
    kv_heads: int = 2,
    vocab_size: int | None = None,
    save_weights: bool = True,
) -> Path:
    """Llava = CLIP vision tower + Llama, with its processor and a chat template. Tiny by default;
    `**REAL_SIZE_LLAVA, save_weights=False` writes a real-size config for `hf-vlm random_init`."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    directory = Path(directory)
    tokenizer = _byte_bpe_tokenizer(["<unk>", "<pad>", "<s>", "</s>", "<image>"])
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    vision_hidden = vision_hidden or hidden
    vision = CLIPVisionConfig(hidden_size=vision_hidden, intermediate_size=vision_hidden * 4 if vision_hidden > 64 else vision_hidden * 2,
                              num_hidden_layers=vision_layers or layers, num_attention_heads=vision_heads,
                              image_size=image_size, patch_size=patch, projection_dim=hidden)
    text = LlamaConfig(vocab_size=vocab_size or len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2 if hidden <= 64 else int(hidden * 8 / 3),
                       num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token, vision_feature_layer=-1)
    if save_weights:
        torch.manual_seed(0)
        LlavaForConditionalGeneration(config).save_pretrained(directory)
    else:
        config.save_pretrained(directory)
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=patch,
                               num_additional_image_tokens=1, vision_feature_select_strategy="default",
                               chat_template=LLAVA_CHAT_TEMPLATE)
    processor.save_pretrained(directory)
    return directory


# The chat template of Qwen/Qwen2.5-VL-*-Instruct (chat_template.json), verbatim.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN2_VL_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def build_tiny_qwen2_5_vl(
    directory: str | Path,
    hidden: int = 32,
    layers: int = 16,
    *,
    vision_hidden: int = 32,
    vision_layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    min_pixels: int = 28 * 28 * 4,
    max_pixels: int = 28 * 28 * 16,
) -> Path:
    """Qwen2.5-VL (windowed ViT with 2x2 patch merging + Qwen2 LM with M-RoPE) with random weights and
    the real model's processor pieces: a Qwen2 tokenizer from an in-memory BPE with the chat/vision
    special tokens, the Qwen2-VL image processor (`min_pixels`/`max_pixels` keep it to 4..16 image
    tokens per image) and the Instruct chat template. 16 text layers by default, so the layers named
    in configs/train_eliq.yaml ([-1, -8, -16]) exist. Without torchvision the processor is saved
    without a video processor (`load_hf_processor` loads such folders and real ones alike)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2Tokenizer,
        Qwen2VLImageProcessorPil,
    )
    from transformers.utils import is_torchvision_available

    from trainer.backbones.processing import without_video_processor

    directory = Path(directory)
    vocab, merges = _bpe_vocab_merges(QWEN2_VL_SPECIAL[:1])
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges)  # <|endoftext|> is unk, eos and pad, as in Qwen2.5-VL
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN2_VL_SPECIAL[1:]})
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in QWEN2_VL_SPECIAL}
    head_dim = hidden // heads
    quarter = head_dim // 4  # M-RoPE splits the head's rotary half into (temporal, height, width) sections
    text = {
        "vocab_size": len(tokenizer), "hidden_size": hidden, "intermediate_size": hidden * 2, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": kv_heads, "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [head_dim // 2 - 2 * quarter, quarter, quarter]},
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
    }
    vision = {
        "depth": vision_layers, "hidden_size": vision_hidden, "intermediate_size": vision_hidden * 2, "num_heads": 4,
        "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
        "out_hidden_size": hidden, "fullatt_block_indexes": [vision_layers - 1],
    }
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                              vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True)
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(directory)
    sizes = {"min_pixels": min_pixels, "max_pixels": max_pixels, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}
    image_processor = Qwen2VLImageProcessorPil(**sizes)  # saved as image_processor_type Qwen2VLImageProcessor: loading picks the backend
    if is_torchvision_available():
        from transformers import Qwen2VLVideoProcessor

        processor = Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(**sizes),
                                        chat_template=QWEN2_VL_CHAT_TEMPLATE)
    else:
        processor = without_video_processor(Qwen2_5_VLProcessor)(image_processor=image_processor, tokenizer=tokenizer, chat_template=QWEN2_VL_CHAT_TEMPLATE)
    processor.save_pretrained(directory)
    # Hub folders of Qwen2.5-VL also have preprocessor_config.json, which AutoVideoProcessor falls back to
    image_processor.save_pretrained(directory)
    return directory


def build_tiny_clip(directory: str | Path, image_size: int = 32, hidden: int = 32, layers: int = 2) -> Path:
    """CLIPModel with tiny towers and a CLIPTokenizer over a small in-memory vocabulary."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTextConfig, CLIPTokenizer, CLIPVisionConfig

    directory = Path(directory)
    letters = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab_list = ["<|startoftext|>", "<|endoftext|>", "!"] + [c for c in letters if c != "!"] + [c + "</w>" for c in letters]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(vocab_list))}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=64)
    text = CLIPTextConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
                          num_attention_heads=4, max_position_embeddings=64,
                          bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    vision = CLIPVisionConfig(hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers, num_attention_heads=4,
                              image_size=image_size, patch_size=8)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=hidden)).save_pretrained(directory)
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory
