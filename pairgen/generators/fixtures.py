"""Tiny random-weight diffusers pipelines, built without the Hugging Face Hub.

Tests and the demo config need real pipelines that load through the same
`AutoPipelineForText2Image.from_pretrained` path as production models, but nothing can be downloaded
at run time. These builders write complete pipeline folders (`model_index.json`, safetensors weights,
a CLIP tokenizer made from an in-memory vocabulary) with `save_pretrained`.

    python -m pairgen.generators.fixtures --out .cache/fixtures

writes `.cache/fixtures/tiny-sd` (Stable Diffusion 1.x layout), `.cache/fixtures/tiny-sdxl` (SDXL
layout: two text encoders, micro-conditioning) and `.cache/fixtures/tiny-flux` (FLUX.1-dev layout: a
flow-matching transformer on packed latents with embedded guidance, CLIP + T5 text encoders, a
16-channel-style VAE with shift factor and no quant convs, 8x down like the real one). Shapes follow
diffusers' own test components.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import torch

TINY_FAMILIES = ("sd", "sdxl", "flux")
TINY_MAX_TOKENS = 77
TINY_T5_MAX_TOKENS = 512  # FLUX pads T5 prompts to `max_sequence_length` (512 by default)


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


# FLUX: the VAE downsamples 8x like the real one (4 blocks), so images must be multiples of 16 (8x VAE and
# 2x2 latent packing); no quant convs, a shift factor, and latent channels x 4 = transformer input channels.
TINY_FLUX_VAE = dict(
    block_out_channels=[8, 8, 16, 16], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, sample_size=64,
    use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035, force_upcast=False,
)
TINY_FLUX_TRANSFORMER = dict(
    patch_size=1, in_channels=4 * TINY_FLUX_VAE["latent_channels"], num_layers=1, num_single_layers=1,
    attention_head_dim=16, num_attention_heads=2, axes_dims_rope=(4, 4, 8),  # rope axes sum to the head dim
    joint_attention_dim=32,  # the T5 width
    pooled_projection_dim=32,  # CLIP's pooled output (hidden_size)
    guidance_embeds=True,  # FLUX.1-dev: guidance is an input of the transformer, not CFG; False for schnell
)
_T5_SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5
_T5_PIECES = ["\u2581"] + [chr(c) for c in range(ord("!"), ord("~") + 1)]  # word boundary + printable ASCII
TINY_T5 = dict(
    vocab_size=len(_T5_SPECIALS) + len(_T5_PIECES), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
    relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
)
TINY_DENOISERS: dict[str, dict[str, Any]] = {**TINY_UNETS, "flux": TINY_FLUX_TRANSFORMER}
TINY_VAES: dict[str, dict[str, Any]] = {"sd": TINY_VAE, "sdxl": TINY_VAE, "flux": TINY_FLUX_VAE}


def build_clip_tokenizer(max_length: int = TINY_MAX_TOKENS):
    """A CLIP BPE tokenizer whose vocabulary is the 256 byte symbols (plain and word-final) plus specials.

    Every text is tokenizable (one token per character), which is all a random-weight model needs.
    """
    from transformers import CLIPTokenizer

    tokens = _BYTE_SYMBOLS + [s + "</w>" for s in _BYTE_SYMBOLS] + [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def build_t5_tokenizer(max_length: int = TINY_T5_MAX_TOKENS):
    """A T5 (SentencePiece-style Unigram) tokenizer over single printable characters plus the word boundary.

    Built in memory with the `tokenizers` Unigram model that T5's fast tokenizer wraps: <pad>=0, </s>=1
    (appended to every text), <unk>=2 for anything outside printable ASCII. No sentinel tokens.
    """
    from transformers import T5TokenizerFast

    vocab = [(token, 0.0) for token in _T5_SPECIALS] + [(piece, -1.0) for piece in _T5_PIECES]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=max_length)


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


def build_flux_pipeline(
    transformer_config: dict[str, Any], vae_config: dict[str, Any], text_config: dict[str, Any], seed: int = 0,
    t5_config: dict[str, Any] | None = None,
):
    """A FLUX.1-layout pipeline (CLIP pooled + T5 sequence embeddings, packed latents) with random weights."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    return FluxPipeline(
        transformer=FluxTransformer2DModel(**transformer_config),
        vae=_vae(vae_config),
        text_encoder=CLIPTextModel(CLIPTextConfig(**text_config)),
        tokenizer=build_clip_tokenizer(text_config["max_position_embeddings"]),
        text_encoder_2=T5EncoderModel(T5Config(**(t5_config or TINY_T5))),
        tokenizer_2=build_t5_tokenizer(),
        # FLUX.1's scheduler: resolution-dependent timestep shift (mu computed by the pipeline)
        scheduler=FlowMatchEulerDiscreteScheduler(
            shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096,
        ),
    )


_BUILDERS = {"sd": build_sd_pipeline, "sdxl": build_sdxl_pipeline, "flux": build_flux_pipeline}


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
        pipe = _BUILDERS[family](TINY_DENOISERS[family], TINY_VAES[family], TINY_TEXT_ENCODER)
        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        pipe.save_pretrained(staging, safe_serialization=True)
        staging.rename(folder)  # model_index.json appears only once the folder is complete
    return folders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder that receives tiny-<family>/ folders")
    parser.add_argument("--families", nargs="+", default=list(TINY_FAMILIES), choices=list(_BUILDERS))
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    for family, folder in build_tiny_pipelines(args.out, tuple(args.families), args.overwrite).items():
        print(f"{family}: {folder}")


if __name__ == "__main__":
    main()
