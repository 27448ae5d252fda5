"""Tiny random Hugging Face models built locally from configs: tests and `bench_train.py --tiny`.

Nothing comes from the Hub: tokenizers are built in memory (a byte-level BPE for the Llama side, a
small vocab for CLIP), models from configs with random weights, then `save_pretrained` to a folder
that the `hf-vlm` / `hf-clip` backbones load with the same `from_pretrained` code real models use.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | upper }}: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n{% else %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% if message['role'] == 'assistant' %}</s>{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _byte_bpe_tokenizer(special: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [string.ascii_letters + string.digits + string.punctuation + " ", "image quality prompt match good poor yes no"] * 4
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>")


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
