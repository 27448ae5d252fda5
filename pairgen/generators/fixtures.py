"""Tiny random-weight diffusers pipelines, built without the Hugging Face Hub.

Tests and the demo config need real pipelines that load through the same
`AutoPipelineForText2Image.from_pretrained` path as production models, but nothing can be downloaded
at run time. These builders write complete pipeline folders (`model_index.json`, safetensors weights,
a CLIP tokenizer made from an in-memory vocabulary) with `save_pretrained`.

    python -m pairgen.generators.fixtures --out .cache/fixtures

writes `.cache/fixtures/tiny-sd` (Stable Diffusion 1.x layout) and `.cache/fixtures/tiny-sdxl`
(SDXL layout: two text encoders, micro-conditioning). Shapes follow diffusers' own test components.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import torch

TINY_FAMILIES = ("sd", "sdxl")
TINY_MAX_TOKENS = 77


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 byte values (what byte-level BPE vocabularies hold)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


_BYTE_SYMBOLS = _byte_symbols()
BOS_TOKEN, EOS_TOKEN = "<|startoftext|>", "<|endoftext|>"
BOS_ID, EOS_ID = 2 * len(_BYTE_SYMBOLS), 2 * len(_BYTE_SYMBOLS) + 1

# A CLIP text config: `vocab_size` must cover the tokenizer built by `build_clip_tokenizer`.
TINY_TEXT_ENCODER = dict(
    hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
    max_position_embeddings=TINY_MAX_TOKENS, vocab_size=600, projection_dim=32, hidden_act="gelu",
    bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=EOS_ID,
)
TINY_VAE = dict(
    block_out_channels=[8, 16], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
    down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2, sample_size=64,
)
TINY_UNETS: dict[str, dict[str, Any]] = {
    "sd": dict(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=4, norm_num_groups=4,
    ),
    "sdxl": dict(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
        # 6 micro-conditioning values x 8 + the pooled embedding of text_encoder_2 (projection_dim 32)
        projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64, norm_num_groups=4,
    ),
}


def build_clip_tokenizer(max_length: int = TINY_MAX_TOKENS):
    """A CLIP BPE tokenizer whose vocabulary is the 256 byte symbols (plain and word-final) plus specials.

    Every text is tokenizable (one token per character), which is all a random-weight model needs.
    """
    from transformers import CLIPTokenizer

    tokens = _BYTE_SYMBOLS + [s + "</w>" for s in _BYTE_SYMBOLS] + [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def _vae(vae_config: dict[str, Any]):
    from diffusers import AutoencoderKL

    return AutoencoderKL(**vae_config)


def build_sd_pipeline(unet_config: dict[str, Any], vae_config: dict[str, Any], text_config: dict[str, Any], seed: int = 0):
    """A Stable Diffusion 1.x-layout pipeline with random weights (any sizes: tiny here, SD-1.5 in the benchmark)."""
    from diffusers import PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return StableDiffusionPipeline(
        unet=UNet2DConditionModel(**unet_config),
        vae=_vae(vae_config),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text_config)),
        tokenizer=build_clip_tokenizer(text_config["max_position_embeddings"]),
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sdxl_pipeline(unet_config: dict[str, Any], vae_config: dict[str, Any], text_config: dict[str, Any], seed: int = 0):
    """An SDXL-layout pipeline (two CLIP text encoders, pooled + micro-conditioning) with random weights."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    tokenizer = build_clip_tokenizer(text_config["max_position_embeddings"])
    return StableDiffusionXLPipeline(
        unet=UNet2DConditionModel(**unet_config),
        vae=_vae(vae_config),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text_config)),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text_config)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, timestep_spacing="leading", steps_offset=1),
        add_watermarker=False,
    )


_BUILDERS = {"sd": build_sd_pipeline, "sdxl": build_sdxl_pipeline}


def build_tiny_pipelines(out_dir: str | Path, families: tuple[str, ...] = TINY_FAMILIES, overwrite: bool = False) -> dict[str, Path]:
    """Write `tiny-<family>` pipeline folders under `out_dir`; return {family: folder}.

    Existing complete folders are kept unless `overwrite`, so a test session or setup script can call
    this repeatedly for free.
    """
    out_dir = Path(out_dir)
    folders = {}
    for family in families:
        if family not in _BUILDERS:
            raise ValueError(f"unknown tiny pipeline family {family!r}; known: {', '.join(_BUILDERS)}")
        folder = out_dir / f"tiny-{family}"
        folders[family] = folder
        if (folder / "model_index.json").is_file() and not overwrite:
            continue
        if folder.exists():
            shutil.rmtree(folder)
        pipe = _BUILDERS[family](TINY_UNETS[family], TINY_VAE, TINY_TEXT_ENCODER)
        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        pipe.save_pretrained(staging, safe_serialization=True)
        staging.rename(folder)  # model_index.json appears only once the folder is complete
    return folders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder that receives tiny-sd/, tiny-sdxl/")
    parser.add_argument("--families", nargs="+", default=list(TINY_FAMILIES), choices=list(_BUILDERS))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    for family, folder in build_tiny_pipelines(args.out, tuple(args.families), args.overwrite).items():
        print(f"{family}: {folder}")


if __name__ == "__main__":
    main()
