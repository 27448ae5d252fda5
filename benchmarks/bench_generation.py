"""Generation throughput: plain diffusers at batch 1 vs this toolkit's Generator vs the compute bound.

An SD-1.5-size pipeline (the real architecture sizes written into configs, random weights: the compute
is the same as the trained model's) at 512 px, bf16, on one CUDA GPU. For each setting it reports
  (a) a plain diffusers loop at batch 1 (default PIL output),
  (b) `pairgen.generators.Generator` at `--batch-size` with its config flags,
  (c) the bound: the UNet forward timed at that batch (2x rows with CFG), per image-step, x steps, plus
      the VAE decode timed per image at the decode batch, using the Generator's own (possibly compiled,
      channels_last) modules, so (b)/(c) measures the pipeline's overhead, not kernel choice,
and (b)/(c), (b)/(a). Settings: 4 steps without CFG, 25 steps with CFG 7.5.

    python benchmarks/bench_generation.py --batch-size 16 --compile default --json out/bench-generation.json
    python benchmarks/bench_generation.py --tiny      # CPU smoke check on the tiny fixture, seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from pairgen.generators import GenerationRequest, Generator, GeneratorConfig, derive_seed
from pairgen.generators.fixtures import BOS_ID, EOS_ID, TINY_TEXT_ENCODER, TINY_UNETS, TINY_VAE, build_sd_pipeline

# Stable Diffusion 1.5's architecture (runwayml/stable-diffusion-v1-5 configs), random weights.
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
)
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4, norm_num_groups=32,
    sample_size=512, scaling_factor=0.18215,
)
SD15_TEXT_ENCODER = dict(
    hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12, max_position_embeddings=77,
    vocab_size=49408, projection_dim=768, hidden_act="quick_gelu", bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=EOS_ID,
)
SETTINGS = [("4 steps, no CFG", 4, 1.0), ("25 steps, CFG 7.5", 25, 7.5)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """Mean wall time of `fn` over `repeats` calls, after one warm-up call."""
    fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def build_model(folder: Path, tiny: bool, dtype: torch.dtype) -> Path:
    """Write the random-weight pipeline once (save_pretrained), so both paths load it with from_pretrained."""
    if not (folder / "model_index.json").is_file():
        sizes = (TINY_UNETS["sd"], TINY_VAE, TINY_TEXT_ENCODER) if tiny else (SD15_UNET, SD15_VAE, SD15_TEXT_ENCODER)
        build_sd_pipeline(*sizes).to(dtype).save_pretrained(folder, safe_serialization=True)
    return folder


def plain_batch1(folder: Path, device: torch.device, dtype: torch.dtype, steps: int, guidance: float, size: int, images: int) -> float:
    """(a) images/s of `pipe(prompt)` one image at a time, the way most scripts call diffusers."""
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(folder, dtype=dtype, use_safetensors=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    counter = iter(range(10**9))

    def one() -> None:
        i = next(counter)
        pipe(f"a photo of object {i}", num_inference_steps=steps, guidance_scale=guidance, height=size, width=size,
             generator=torch.Generator(device).manual_seed(i))

    seconds = _seconds(one, device, images)
    del pipe
    return 1.0 / seconds


def generator_throughput(gen: Generator, steps: int, guidance: float, images: int) -> float:
    """(b) images/s of Generator.generate over `images` distinct prompts (several batches)."""
    calls = iter(range(10**9))

    def run() -> None:
        call = next(calls)
        gen.generate([
            GenerationRequest(prompt=f"prompt {call}-{i}", prompt_id=f"{call}-{i}", seed=derive_seed(call, i), steps=steps, guidance=guidance)
            for i in range(images)
        ])

    return images / _seconds(run, gen.device, 1)


def bound(gen: Generator, steps: int, guidance: float, repeats: int) -> dict[str, float]:
    """(c) the compute bound per image from the Generator's own UNet and VAE, timed at its batch sizes."""
    pipe, device, dtype = gen.pipe, gen.device, gen.pipe.unet.dtype
    batch = gen.batch_size
    rows = 2 * batch if guidance > 1 else batch
    width, height = gen.config.size
    latent_shape = (pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    sample = torch.randn(rows, *latent_shape, device=device, dtype=dtype)  # contiguous, as the pipeline feeds it
    text = torch.randn(rows, pipe.tokenizer.model_max_length, pipe.text_encoder.config.hidden_size, device=device, dtype=dtype)
    timestep = torch.tensor(500, device=device)
    decode_rows = gen.config.decode_batch_size or batch
    latents = torch.randn(decode_rows, *latent_shape, device=device, dtype=pipe.vae.dtype)
    with torch.no_grad():
        unet_s = _seconds(lambda: pipe.unet(sample, timestep, encoder_hidden_states=text, return_dict=False), device, repeats)
        vae_s = _seconds(lambda: pipe.vae.decode(latents, return_dict=False), device, repeats)
    per_image_step = unet_s / rows * (rows // batch)  # an image-step costs 2 UNet rows with CFG
    per_image = steps * per_image_step + vae_s / decode_rows
    return {"unet_ms_per_image_step": 1e3 * per_image_step, "vae_ms_per_image": 1e3 * vae_s / decode_rows, "images_per_s": 1.0 / per_image}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke check: tiny fixture architecture, 64 px, float32")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--decode-batch-size", type=int, default=None)
    parser.add_argument("--compile", default="off", choices=["off", "default", "reduce-overhead", "max-autotune"])
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--no-embedding-reuse", action="store_true")
    parser.add_argument("--batches", type=int, default=4, help="batches timed for (b)")
    parser.add_argument("--plain-images", type=int, default=8, help="images timed for (a)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per bound measurement")
    parser.add_argument("--workdir", type=Path, default=Path(".cache/bench"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device = torch.device("cpu" if args.tiny else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: the GPU benchmark needs one (use --tiny for a CPU smoke check)")
    dtype, size = (torch.float32, 64) if args.tiny else (torch.bfloat16, 512)
    folder = build_model(args.workdir / ("tiny-sd" if args.tiny else "sd15-random-bf16"), args.tiny, dtype)
    config = GeneratorConfig(
        id="bench", model=str(folder), dtype=str(dtype).removeprefix("torch."), device=device.type, resolution=size,
        batch_size=args.batch_size, decode_batch_size=args.decode_batch_size, compile=args.compile,
        channels_last=not args.no_channels_last, reuse_text_embeddings=not args.no_embedding_reuse,
    )
    gen = Generator.from_config(config)
    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()})",
        "torch": torch.__version__, "diffusers": __import__("diffusers").__version__,
        "model": "tiny fixture" if args.tiny else "SD-1.5 architecture, random weights", "resolution": size,
        "dtype": str(dtype), "generator": config.model_dump(include={"batch_size", "decode_batch_size", "compile", "channels_last", "reuse_text_embeddings"}),
        "settings": [],
    }
    for name, steps, guidance in SETTINGS:
        a = plain_batch1(folder, device, dtype, steps, guidance, size, args.plain_images)
        b = generator_throughput(gen, steps, guidance, args.batches * args.batch_size)
        c = bound(gen, steps, guidance, args.repeats)
        results["settings"].append({
            "setting": name, "steps": steps, "guidance": guidance, "a_plain_batch1_img_s": a, "b_generator_img_s": b,
            "c_bound_img_s": c["images_per_s"], "unet_ms_per_image_step": c["unet_ms_per_image_step"],
            "vae_ms_per_image": c["vae_ms_per_image"], "b_over_c": b / c["images_per_s"], "b_over_a": b / a,
        })
    print(f"{results['device']}, torch {results['torch']}, diffusers {results['diffusers']}, {results['model']}, {size} px, {dtype}, generator {results['generator']}")
    print("| setting | (a) plain b=1 img/s | (b) generator img/s | (c) bound img/s | (b)/(c) | (b)/(a) | UNet ms/img-step | VAE ms/img |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["settings"]:
        print(f"| {r['setting']} | {r['a_plain_batch1_img_s']:.2f} | {r['b_generator_img_s']:.2f} | {r['c_bound_img_s']:.2f} | "
              f"{r['b_over_c']:.0%} | {r['b_over_a']:.1f}x | {r['unet_ms_per_image_step']:.2f} | {r['vae_ms_per_image']:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
