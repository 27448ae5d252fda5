"""The generator wrapper: one diffusers text-to-image pipeline, batched and reproducible per image."""

from __future__ import annotations

import inspect
import logging
import math
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from pairgen.generators.config import GeneratorConfig
from pairgen.generators.loading import locate_pipeline
from pairgen.generators.negatives import GENERATION_NEGATIVES, MIN_SIDE_MULTIPLE, NotApplicableError
from pairgen.generators.requests import GeneratedImage, GenerationRequest
from pairgen.generators.seeding import derive_seed

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# What `encode_prompt` returns (its leading per-prompt outputs), by pipeline class, so embeddings can be
# cached and passed back by name. Pipelines not listed here get prompt strings (no reuse), which is always
# correct, just slower. Every listed pipeline pads prompts to a fixed length, so a prompt's embedding does
# not depend on the batch it was encoded in.
_SD_EMBEDDINGS = ("prompt_embeds", "negative_prompt_embeds")
_SDXL_EMBEDDINGS = _SD_EMBEDDINGS + ("pooled_prompt_embeds", "negative_pooled_prompt_embeds")
_FLUX_EMBEDDINGS = ("prompt_embeds", "pooled_prompt_embeds")  # then text_ids, shared by all prompts (rebuilt per call)
_EMBEDDING_OUTPUTS = {
    "StableDiffusionPipeline": _SD_EMBEDDINGS,
    "StableDiffusionImg2ImgPipeline": _SD_EMBEDDINGS,
    "StableDiffusionXLPipeline": _SDXL_EMBEDDINGS,
    "StableDiffusionXLImg2ImgPipeline": _SDXL_EMBEDDINGS,
    "FluxPipeline": _FLUX_EMBEDDINGS,
    "FluxImg2ImgPipeline": _FLUX_EMBEDDINGS,
}
_TRUE_CFG_NEGATIVE = " "  # the empty negative prompt of true-CFG pipelines (Qwen-Image's documented choice)
_EMBEDDING_CACHE_SIZE = 256  # prompts; negatives of a prompt are generated soon after its positive


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


class Generator:
    """Generates images for `GenerationRequest`s with one pipeline and records their provenance.

    Requests are grouped by the settings a batch must share (steps, guidance, resolution, img2img
    strength) and run `batch_size` at a time; each image gets its own `torch.Generator` seeded from its
    request, created on the CPU so the initial noise is also the same across GPU types.
    """

    def __init__(self, pipe: Any, config: GeneratorConfig, revision: str):
        self.pipe = pipe
        self.config = config
        self.revision = revision
        self.device = pipe.device
        self.batch_size = config.batch_size
        self._img2img: Any = None
        self._embeddings: OrderedDict[str, tuple[torch.Tensor, ...]] = OrderedDict()
        # Pipelines that pack their latents (FLUX, Qwen-Image) decode with their own VAE logic: let them,
        # at the price of batched decoding and latent-noise negatives.
        self.decodes_itself = hasattr(type(pipe), "_unpack_latents")
        self.guidance_mode = guidance_mode(pipe)
        self.side_multiple = side_multiple(pipe)
        misaligned = [s for s in config.size if s % self.side_multiple]
        if misaligned:
            raise ValueError(
                f"generator {config.id}: resolution {list(config.size)} must be a multiple of {self.side_multiple} "
                f"for {type(pipe).__name__} (VAE downsampling x latent packing); the pipeline would silently shrink it"
            )
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Generator:
        """Load the pipeline (Hub id or folder) with the config's dtype, device, variant and revision."""
        from diffusers import AutoPipelineForText2Image

        folder, revision = locate_pipeline(config.model, config.revision, config.variant)
        device = resolve_device(config.device)
        pipe = AutoPipelineForText2Image.from_pretrained(
            folder, dtype=resolve_dtype(config.dtype, device), variant=config.variant, use_safetensors=True
        )
        if config.scheduler:
            pipe.scheduler = _build_scheduler(config.scheduler, pipe.scheduler)
        pipe.to(device)
        vae = pipe.vae
        if vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
            vae.to(torch.float32)  # these VAEs overflow in float16 (what SDXL's pipeline does per call)
        if device.type == "cuda":
            _optimize_modules(pipe, config)
        return cls(pipe, config, revision)

    @property
    def provenance(self) -> dict[str, Any]:
        """What produced this generator's images: model, resolved revision, scheduler and defaults."""
        return {
            "generator": self.config.id,
            "model": self.config.model,
            "revision": self.revision,
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(self.pipe.scheduler).__name__,
            "dtype": str(self.pipe.dtype).removeprefix("torch."),
            "steps": self.config.steps,
            "guidance": self._effective_guidance(self.config.guidance),
            "resolution": list(self.config.size),
        }

    def resolve(self, request: GenerationRequest) -> GenerationRequest:
        """Fill unset overrides with this generator's defaults.

        A pipeline that ignores guidance (see `guidance_mode`) gets guidance 0.0, so the recorded value
        is the one that shaped the image.
        """
        resolution = tuple(request.resolution) if request.resolution is not None else self.config.size
        if any(side % self.side_multiple for side in resolution):
            raise ValueError(f"resolution {list(resolution)} is not a multiple of {self.side_multiple}, which {type(self.pipe).__name__} needs")
        return replace(
            request,
            steps=request.steps if request.steps is not None else self.config.steps,
            guidance=self._effective_guidance(request.guidance if request.guidance is not None else self.config.guidance),
            resolution=resolution,
        )

    def _effective_guidance(self, guidance: float) -> float:
        return 0.0 if self.guidance_mode == "none" else guidance

    def negative(self, kind: str, positive: GenerationRequest, severity: int, image: np.ndarray | None = None) -> GenerationRequest:
        """The generation-level negative `kind` of `positive` (same prompt and seed) at `severity`."""
        if kind not in GENERATION_NEGATIVES:
            raise ValueError(f"unknown generation negative {kind!r}; known: {', '.join(GENERATION_NEGATIVES)}")
        negative = GENERATION_NEGATIVES[kind](self.config.negatives, side_multiple=self.side_multiple)
        if negative.needs_latents and self.decodes_itself:
            raise NotApplicableError(f"{type(self.pipe).__name__} packs its latents; {kind} needs (B, C, H, W) latents")
        if negative.needs_guidance and self.guidance_mode == "none":
            raise NotApplicableError(f"{type(self.pipe).__name__} ignores guidance (no guidance input, no true CFG); {kind} would change nothing")
        return negative.request(self.resolve(positive), severity, image)

    def generate(self, requests: list[GenerationRequest]) -> list[GeneratedImage]:
        """Generate every request; the output order is the input order."""
        resolved = [self.resolve(r) for r in requests]
        groups: dict[tuple, list[int]] = {}
        for index, request in enumerate(resolved):
            key = (request.steps, request.guidance, request.resolution, request.strength)
            groups.setdefault(key, []).append(index)
        results: list[GeneratedImage | None] = [None] * len(resolved)
        for indices in groups.values():
            start = 0
            while start < len(indices):
                chunk = indices[start : start + self.batch_size]
                try:
                    images = self._generate_batch([resolved[i] for i in chunk])
                except torch.OutOfMemoryError:
                    if len(chunk) == 1:
                        raise
                    self._halve_batch_size(len(chunk))
                    continue
                for i, image in zip(chunk, images):
                    results[i] = GeneratedImage(image=image, request=resolved[i], provenance=self._provenance(resolved[i], image))
                start += len(chunk)
        return results  # type: ignore[return-value]

    def _halve_batch_size(self, failed: int) -> None:
        self.batch_size = max(1, failed // 2)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        logger.warning("generator %s: out of memory at batch %d, retrying at batch %d", self.config.id, failed, self.batch_size)

    @torch.no_grad()
    def _generate_batch(self, requests: list[GenerationRequest]) -> list[np.ndarray]:
        first = requests[0]
        width, height = first.resolution
        kwargs: dict[str, Any] = dict(
            num_inference_steps=first.steps,
            generator=[torch.Generator("cpu").manual_seed(r.seed) for r in requests],
            output_type="np" if self.decodes_itself else "latent",
        )
        if self.guidance_mode == "true_cfg":
            # CFG runs only with a negative prompt; guidance_scale would be ignored (Qwen-Image warns)
            kwargs["true_cfg_scale"] = first.guidance
            if first.guidance > 1.0:
                kwargs["negative_prompt"] = [_TRUE_CFG_NEGATIVE] * len(requests)
        else:
            kwargs["guidance_scale"] = first.guidance
        if first.strength is None:
            pipe = self.pipe
            kwargs.update(height=height, width=width)
        else:
            pipe = self._img2img_pipe()
            kwargs.update(image=np.stack([r.init_image for r in requests]).astype(np.float32) / 255.0, strength=first.strength)
            if _accepts(pipe.__call__, "height", "width"):
                kwargs.update(height=height, width=width)  # FLUX img2img otherwise resizes to its default 1024 px
        kwargs.update(self._text_inputs(pipe, [r.prompt for r in requests]))
        output = pipe(**kwargs).images
        if self.decodes_itself:
            images = list((np.clip(np.asarray(output, np.float32), 0, 1) * 255).round().astype(np.uint8))
        else:
            images = self._decode(self._add_latent_noise(output, requests))
        return [_resize(image, r.upscale_to) for image, r in zip(images, requests)]

    def _img2img_pipe(self) -> Any:
        """The img2img variant of the loaded pipeline, sharing its components (no second copy in memory)."""
        if self._img2img is None:
            from diffusers import AutoPipelineForImage2Image

            self._img2img = AutoPipelineForImage2Image.from_pipe(self.pipe)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _text_inputs(self, pipe: Any, prompts: list[str]) -> dict[str, Any]:
        """Prompt embeddings from the cache (encoding only new prompts), or the prompts themselves."""
        names = _EMBEDDING_OUTPUTS.get(type(pipe).__name__)
        if not self.config.reuse_text_embeddings or names is None:
            return {"prompt": prompts}
        rows = {p: self._embeddings[p] for p in prompts if p in self._embeddings}
        new = [p for p in dict.fromkeys(prompts) if p not in rows]
        if new:
            kwargs: dict[str, Any] = dict(prompt=new, device=self.device, num_images_per_prompt=1)
            if _accepts(pipe.encode_prompt, "do_classifier_free_guidance"):
                kwargs["do_classifier_free_guidance"] = True  # CFG pipelines: the negative (empty) prompt's rows too
            outputs = pipe.encode_prompt(**kwargs)[: len(names)]
            rows.update({p: tuple(o[i] for o in outputs) for i, p in enumerate(new)})
        for prompt in dict.fromkeys(prompts):
            self._embeddings[prompt] = rows[prompt]
            self._embeddings.move_to_end(prompt)
        while len(self._embeddings) > _EMBEDDING_CACHE_SIZE:
            self._embeddings.popitem(last=False)
        return {name: torch.stack([rows[p][k] for p in prompts]) for k, name in enumerate(names)}

    def _add_latent_noise(self, latents: torch.Tensor, requests: list[GenerationRequest]) -> torch.Tensor:
        """Gaussian noise on the final latents of the requests that ask for it, seeded from each request."""
        if not any(r.latent_noise for r in requests):
            return latents
        latents = latents.clone()
        for row, request in enumerate(requests):
            if request.latent_noise:
                rng = torch.Generator("cpu").manual_seed(derive_seed(request.seed, "latent_noise"))
                noise = torch.randn(latents[row].shape, generator=rng).to(latents.device, latents.dtype)
                latents[row] += request.latent_noise * latents[row].float().std().to(latents.dtype) * noise
        return latents

    def _decode(self, latents: torch.Tensor) -> list[np.ndarray]:
        """VAE-decode in chunks of `decode_batch_size`, converting to uint8 on the device (one small copy back)."""
        vae = self.pipe.vae
        config = vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, -1, 1, 1)
            mean = torch.tensor(mean, device=latents.device, dtype=latents.dtype).view(shape)
            std = torch.tensor(std, device=latents.device, dtype=latents.dtype).view(shape)
            latents = latents * std / config.scaling_factor + mean
        else:
            latents = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
        latents = latents.to(vae.dtype)
        step = self.config.decode_batch_size or len(latents)
        images = []
        for chunk in latents.split(step):
            decoded = vae.decode(chunk, return_dict=False)[0]
            pixels = ((decoded.float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            images.extend(pixels.permute(0, 2, 3, 1).cpu().numpy())
        return images

    def _provenance(self, request: GenerationRequest, image: np.ndarray) -> dict[str, Any]:
        record = self.provenance | {
            "prompt_id": request.prompt_id,
            "seed": request.seed,
            "steps": request.steps,
            "guidance": request.guidance,
            "resolution": list(request.resolution),
            "output_resolution": [image.shape[1], image.shape[0]],
        }
        if request.strength is not None:
            record["strength"] = request.strength
        if request.latent_noise:
            record["latent_noise"] = request.latent_noise
        if request.degradation is not None:
            record["degradation"] = dict(request.degradation)
        return record


def guidance_mode(pipe: Any) -> str:
    """What a request's `guidance` drives in this pipeline.

    'cfg': `guidance_scale` is classifier-free guidance (SD, SDXL, SD3; off at <= 1).
    'embedded': a guidance-distilled transformer takes it as an input (FLUX.1-dev; no CFG pass).
    'true_cfg': the transformer has no guidance input and the pipeline offers `true_cfg_scale`, which
        works only with a negative prompt (Qwen-Image; FLUX.1-schnell): the generator passes it as
        `true_cfg_scale` with an empty negative prompt when > 1.
    'none': ignored; recorded as 0.0 and the guidance negatives are not applicable.
    """
    denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
    embeds = getattr(getattr(denoiser, "config", None), "guidance_embeds", None)
    if embeds is None:
        return "cfg"
    if embeds:
        return "embedded"
    return "true_cfg" if _accepts(type(pipe).__call__, "true_cfg_scale") else "none"


def _accepts(function: Any, *names: str) -> bool:
    """Whether `function` takes every keyword in `names` (pipeline families differ in their signatures)."""
    return set(names) <= inspect.signature(function).parameters.keys()


def side_multiple(pipe: Any) -> int:
    """What image sides must be a multiple of: the VAE factor, times 2 for pipelines that pack 2x2 latent
    patches (FLUX, Qwen-Image: 16, in their image processor's factor) or patchify them (SD3: VAE factor x
    `patch_size`), and never less than 8."""
    processor = getattr(pipe, "image_processor", None)
    vae_factor = int(getattr(pipe, "vae_scale_factor", None) or 1)
    factor = int(getattr(getattr(processor, "config", None), "vae_scale_factor", None) or vae_factor)
    patch = getattr(pipe, "patch_size", None)
    return math.lcm(MIN_SIDE_MULTIPLE, factor, vae_factor * patch if isinstance(patch, int) else 1)


def _build_scheduler(name: str, current: Any) -> Any:
    """A scheduler of class `name` built from the pipeline's scheduler config (keeps its beta schedule)."""
    import diffusers

    scheduler_class = getattr(diffusers, name, None)
    if not (isinstance(scheduler_class, type) and issubclass(scheduler_class, diffusers.SchedulerMixin)):
        compatible = ", ".join(sorted(c.__name__ for c in current.compatibles))
        raise ValueError(f"scheduler {name!r} is not a diffusers scheduler class; compatible with this pipeline: {compatible}")
    return scheduler_class.from_config(current.config)


def _optimize_modules(pipe: Any, config: GeneratorConfig) -> None:
    """channels_last and torch.compile for the denoiser and VAE decoder (flags in the config; applied on CUDA)."""
    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    if config.channels_last:
        for module in (getattr(pipe, "unet", None), pipe.vae):
            if module is not None:
                module.to(memory_format=torch.channels_last)
    if config.compile != "off":
        # Static shapes: each batch size or resolution compiles once, with kernels specialised to it.
        denoiser.compile(mode=config.compile, dynamic=False)
        pipe.vae.decoder.compile(mode=config.compile, dynamic=False)  # decode's cost; post_quant_conv is 1x1


def _resize(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize(tuple(size), Image.BICUBIC))
