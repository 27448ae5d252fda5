"""Generators on tiny random-weight pipelines built offline (HF_HUB_OFFLINE=1): loading, determinism,
negatives, clear failures. Fixtures are built once per session under a tmp dir."""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pairgen.config_base import ConfigError, StrictModel, validate_config
from pairgen.generators import (
    GENERATION_NEGATIVES,
    GenerationNegativesConfig,
    GenerationRequest,
    Generator,
    GeneratorConfig,
    GeneratorList,
    MissingComponentError,
    ModelNotAvailableError,
    NotApplicableError,
    alignment_negative,
    assign_generators,
    build_tiny_pipelines,
    derive_seed,
)
from pairgen.generators.fixtures import main as fixtures_main

STEPS = 3


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and spinning threads on a shared 2-core machine
    make them 10x slower; restore the setting for other modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    folders = build_tiny_pipelines(tmp_path_factory.mktemp("fixtures"))
    return folders["sd"].parent


def _config(folder: Path, **overrides) -> GeneratorConfig:
    values = dict(id=folder.name, model=str(folder), steps=STEPS, guidance=7.5, resolution=64, batch_size=4, device="cpu")
    return GeneratorConfig(**(values | overrides))


@pytest.fixture(scope="session")
def sd(tiny_dir) -> Generator:
    return Generator.from_config(_config(tiny_dir / "tiny-sd"))


@pytest.fixture(scope="session")
def sdxl(tiny_dir) -> Generator:
    return Generator.from_config(_config(tiny_dir / "tiny-sdxl"))


@pytest.fixture(scope="session")
def flux(tiny_dir) -> Generator:
    """FLUX.1-dev layout: packed latents decoded by the pipeline, embedded (not CFG) guidance, sides of 16."""
    return Generator.from_config(_config(tiny_dir / "tiny-flux", guidance=3.5))


def _requests(n: int, prefix: str = "p") -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"a photo of thing {i}", prompt_id=f"{prefix}{i}", seed=derive_seed(7, f"{prefix}{i}")) for i in range(n)]


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


# --- seeds and config --------------------------------------------------------------------------


def test_derive_seed_is_a_stable_63_bit_digest_of_its_parts():
    seed = derive_seed(0, "prompt-1", "sd", 0)
    assert seed == derive_seed(0, "prompt-1", "sd", 0)
    assert 0 <= seed < 2**63
    others = {derive_seed(0, "prompt-1", "sd", i) for i in range(1, 50)} | {derive_seed(0, "sd", "prompt-1", 0), derive_seed(1, "prompt-1", "sd", 0)}
    assert seed not in others and len(others) == 51
    assert max(derive_seed(i) for i in range(200)) > 2**62  # uses the full range


def test_config_reports_readable_problems():
    class Job(StrictModel):
        generators: GeneratorList

    good = {"id": "sd15", "model": "org/model"}
    with pytest.raises(ConfigError) as info:
        validate_config(Job, {"generators": [good | {"resolution": [512, 500], "stesp": 4}, good, good | {"negatives": {"kinds": ["blurr"]}}]})
    text = str(info.value)
    assert "generators[0]: unknown key 'stesp' (did you mean 'steps'?)" in text
    with pytest.raises(ConfigError, match=r"generators\[0\].resolution: sides must be positive multiples of 8"):
        validate_config(Job, {"generators": [good | {"resolution": [512, 500]}]})
    with pytest.raises(ConfigError, match=r"generators: .*ids must be unique, repeated: sd15"):
        validate_config(Job, {"generators": [good, good]})
    with pytest.raises(ConfigError, match=r"kinds: unknown kind\(s\) \['blurr'\]"):
        validate_config(Job, {"generators": [good | {"negatives": {"kinds": ["blurr"]}}]})
    with pytest.raises(ConfigError, match="latent_noise must increase with severity"):
        validate_config(GenerationNegativesConfig, {"latent_noise": [0.5, 0.4, 0.6, 0.7, 0.8]})
    config = GeneratorConfig(**good, resolution=[768, 512])
    assert config.size == (768, 512) and GeneratorConfig(**good).size == (512, 512)


def test_assign_generators_follows_shares_and_moves_prompts_only_when_needed():
    a, b, c = (GeneratorConfig(id=i, model="org/m", share=s) for i, s in (("a", 1), ("b", 2), ("c", 1)))
    prompts = [f"prompt-{i}" for i in range(4000)]
    two = assign_generators([a, b], prompts)
    counts = {g: list(two.values()).count(g) for g in "ab"}
    assert abs(counts["b"] / len(prompts) - 2 / 3) < 0.03
    assert assign_generators([b, a], list(reversed(prompts))) == two  # order of prompts/generators is irrelevant
    assert assign_generators([a, b], prompts[:10]) == {p: two[p] for p in prompts[:10]}  # independent of other prompts
    three = assign_generators([a, b, c], prompts)
    moved = [p for p in prompts if three[p] != two[p]]
    assert all(three[p] == "c" for p in moved)  # adding c only moves prompts to c
    assert abs(len(moved) / len(prompts) - 1 / 4) < 0.03
    assert assign_generators([a, b], prompts) == {p: g for p, g in three.items() if g != "c"} | {p: two[p] for p in moved}


# --- fixtures and loading ----------------------------------------------------------------------


def test_fixture_cli_builds_both_families_once(tmp_path, capsys):
    fixtures_main(["--out", str(tmp_path), "--families", "sd"])
    index = tmp_path / "tiny-sd" / "model_index.json"
    assert json.loads(index.read_text())["_class_name"] == "StableDiffusionPipeline"
    assert "tiny-sd" in capsys.readouterr().out
    stamp = index.stat().st_mtime_ns
    fixtures_main(["--out", str(tmp_path), "--families", "sd"])
    assert index.stat().st_mtime_ns == stamp  # kept, not rebuilt
    assert not list(tmp_path.glob("*.partial"))


def test_tiny_pipelines_load_through_from_pretrained(sd, sdxl, flux, tiny_dir):
    assert sd.provenance["pipeline"] == "StableDiffusionPipeline"
    assert sdxl.provenance["pipeline"] == "StableDiffusionXLPipeline"
    assert (flux.provenance["pipeline"], flux.provenance["scheduler"]) == ("FluxPipeline", "FlowMatchEulerDiscreteScheduler")
    assert type(flux.pipe.tokenizer_2).__name__ == "T5Tokenizer" and flux.pipe.tokenizer_2("a cat").input_ids[-1] == 1  # </s>
    assert (flux.decodes_itself, flux.guidance_mode, flux.side_multiple) == (True, "embedded", 16)
    assert (sd.decodes_itself, sd.guidance_mode, sd.side_multiple) == (False, "cfg", 8)
    assert sd.provenance["revision"].startswith("sha-") and sd.provenance["revision"] != sdxl.provenance["revision"]
    again = Generator.from_config(_config(tiny_dir / "tiny-sd"))
    assert again.provenance == sd.provenance  # content digest is stable


@pytest.mark.parametrize("name", ["sd", "sdxl", "flux"])
def test_images_have_texture_and_follow_prompt_and_seed(name, request):
    gen = request.getfixturevalue(name)
    base = GenerationRequest(prompt="a red bicycle", prompt_id="x", seed=11)
    images = [o.image for o in gen.generate([base, replace(base, seed=12), replace(base, prompt="a blue whale at night")])]
    for image in images:
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert image.std() > 10  # not a flat image
        assert np.abs(np.diff(image.astype(np.int16), axis=1)).mean() > 2  # local texture, not just a gradient
    assert _diff(images[0], images[1]).mean() > 5  # seed matters
    assert _diff(images[0], images[2]).mean() > 0.5  # prompt matters


def test_provenance_records_model_revision_scheduler_and_settings(sd):
    request = GenerationRequest(prompt="a cat", prompt_id="cat", seed=5, steps=2, guidance=3.0, resolution=(48, 64))
    (out,) = sd.generate([request])
    assert out.image.shape == (64, 48, 3)
    p = out.provenance
    assert (p["generator"], p["model"], p["revision"], p["scheduler"]) == ("tiny-sd", sd.config.model, sd.revision, "PNDMScheduler")
    assert (p["steps"], p["guidance"], p["resolution"], p["seed"], p["prompt_id"]) == (2, 3.0, [48, 64], 5, "cat")


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sd", "sdxl", "flux"])
def test_image_depends_only_on_its_request_not_batch_size_or_order(name, request):
    gen = request.getfixturevalue(name)
    requests = _requests(5)
    batched = gen.generate(requests)
    gen.batch_size = 1
    try:
        single = gen.generate(list(reversed(requests)))[::-1]
    finally:
        gen.batch_size = gen.config.batch_size
    mixed = gen.generate([replace(requests[0], prompt_id="other", seed=99), requests[3], requests[1]])
    for out, ref in zip(single, batched):
        assert out.request == ref.request
        assert _diff(out.image, ref.image).max() <= 2  # batched kernels round differently, nothing more
    assert _diff(mixed[1].image, batched[3].image).max() <= 2 and _diff(mixed[2].image, batched[1].image).max() <= 2
    assert _diff(batched[0].image, batched[1].image).mean() > 5
    assert all(np.array_equal(a.image, b.image) for a, b in zip(gen.generate(requests), batched))  # repeatable


@pytest.mark.parametrize("name", ["sdxl", "flux"])
def test_text_embedding_reuse_gives_the_same_images(tiny_dir, name, request):
    gen = request.getfixturevalue(name)
    plain = Generator.from_config(_config(tiny_dir / f"tiny-{name}", reuse_text_embeddings=False, guidance=gen.config.guidance))
    requests = _requests(3, prefix=f"reuse-{name}")
    for a, b in zip(plain.generate(requests), gen.generate(requests)):
        assert _diff(a.image, b.image).max() <= 2
    assert set(r.prompt for r in requests) <= set(gen._embeddings) and not plain._embeddings


def test_decode_batching_gives_the_same_images(tiny_dir, sd):
    chunked = Generator.from_config(_config(tiny_dir / "tiny-sd", decode_batch_size=1))
    requests = _requests(3)
    for a, b in zip(chunked.generate(requests), sd.generate(requests)):
        assert _diff(a.image, b.image).max() <= 2


def test_pipelines_that_decode_themselves_give_the_same_images(tiny_dir, sd):
    """FLUX/Qwen-style pipelines (packed latents) are decoded by the pipeline itself; on an SD pipeline
    forced onto that path the images match our own batched decode, and latent noise is refused."""
    own = Generator.from_config(_config(tiny_dir / "tiny-sd"))
    own.decodes_itself = True
    requests = _requests(3)
    for a, b in zip(own.generate(requests), sd.generate(requests)):
        assert a.image.dtype == np.uint8 and _diff(a.image, b.image).max() <= 2
    with pytest.raises(NotApplicableError, match="packs its latents"):
        own.negative("latent_noise", requests[0], 3)


def test_scheduler_override_and_unknown_scheduler(tiny_dir):
    gen = Generator.from_config(_config(tiny_dir / "tiny-sd", scheduler="EulerAncestralDiscreteScheduler"))
    assert gen.provenance["scheduler"] == "EulerAncestralDiscreteScheduler"
    requests = _requests(3)
    batched = gen.generate(requests)
    gen.batch_size = 1  # an ancestral sampler draws noise every step: still one generator per image
    assert all(_diff(a.image, b.image).max() <= 2 for a, b in zip(gen.generate(requests), batched))
    with pytest.raises(ValueError, match="not a diffusers scheduler class; compatible with this pipeline: .*DDIMScheduler"):
        Generator.from_config(_config(tiny_dir / "tiny-sd", scheduler="NoSuchScheduler"))


# --- generation-level and alignment negatives --------------------------------------------------


def test_registry_holds_every_kind_and_maps_severity_to_settings(sd):
    assert set(GENERATION_NEGATIVES) == {
        "few_steps", "low_guidance", "low_guidance_alignment", "over_guidance", "low_resolution_upscaled", "latent_noise", "sdedit"
    }
    positive = sd.resolve(GenerationRequest(prompt="a cat", prompt_id="cat", seed=3, steps=20, resolution=(512, 384)))
    image = np.zeros((384, 512, 3), np.uint8)
    made = {s: {k: sd.negative(k, positive, s, image=image) for k in GENERATION_NEGATIVES} for s in (1, 3, 5)}
    for negatives in made.values():
        for kind, negative in negatives.items():
            assert (negative.prompt, negative.seed, negative.prompt_id) == (positive.prompt, positive.seed, positive.prompt_id)
            assert negative.degradation["kind"] == kind and negative.degradation["family"] == "generation"
    steps = [made[s]["few_steps"].steps for s in (1, 3, 5)]
    assert steps == [10, 5, 2]
    assert [made[s]["low_guidance"].guidance for s in (1, 5)] == [pytest.approx(4.9), 1.0]
    # the same weakened guidance, judged on alignment: guidance sets how closely the model follows the prompt
    for negatives in made.values():
        assert negatives["low_guidance_alignment"].guidance == negatives["low_guidance"].guidance
        aspects = {kind: negative.degradation["aspect"] for kind, negative in negatives.items()}
        assert aspects == {kind: "alignment" if kind == "low_guidance_alignment" else "quality" for kind in GENERATION_NEGATIVES}
    assert [made[s]["over_guidance"].guidance for s in (1, 5)] == [15.0, 60.0]
    assert made[3]["low_resolution_upscaled"].resolution == (256, 192) and made[3]["low_resolution_upscaled"].upscale_to == (512, 384)
    assert [made[s]["latent_noise"].latent_noise for s in (1, 5)] == [0.1, 0.75]
    assert made[5]["sdedit"].strength == 0.9 and made[5]["sdedit"].init_image is image
    for kind in ("low_guidance", "low_guidance_alignment"):
        with pytest.raises(NotApplicableError, match=f"{kind} needs a positive with guidance > 1, got 1.0"):
            sd.negative(kind, replace(positive, guidance=1.0), 3)
    with pytest.raises(NotApplicableError):
        sd.negative("few_steps", replace(positive, steps=1), 3)
    with pytest.raises(ValueError, match="severity must be within 1..5"):
        sd.negative("few_steps", positive, 6)
    with pytest.raises(ValueError, match="unknown generation negative 'blur'; known: few_steps"):
        sd.negative("blur", positive, 2)
    with pytest.raises(ValueError, match="sdedit needs the positive's image"):
        sd.negative("sdedit", positive, 2)


def test_generated_negatives_share_seed_and_size_and_differ_from_the_positive(sd):
    (positive,) = sd.generate([GenerationRequest(prompt="a lighthouse", prompt_id="lh", seed=21)])
    kinds = list(GENERATION_NEGATIVES)
    requests = [sd.negative(k, positive.request, s, image=positive.image) for k in kinds for s in (1, 5)]
    outputs = sd.generate(requests)
    by_key = {(o.provenance["degradation"]["kind"], o.provenance["degradation"]["severity"]): o for o in outputs}
    for (kind, severity), out in by_key.items():
        assert out.image.shape == positive.image.shape, kind
        assert out.provenance["seed"] == positive.provenance["seed"] and out.provenance["model"] == positive.provenance["model"]
        assert _diff(out.image, positive.image).mean() > 0.5, kind
    noise = [_diff(by_key[("latent_noise", s)].image, positive.image).mean() for s in (1, 5)]
    assert noise[1] > 2 * noise[0]  # severity means worse
    assert by_key[("low_resolution_upscaled", 5)].provenance["resolution"] == [16, 16]
    again = sd.generate([sd.negative("latent_noise", positive.request, 3)])[0]
    assert np.array_equal(again.image, sd.generate([sd.negative("latent_noise", positive.request, 3)])[0].image)


def test_alignment_negative_keeps_model_seed_and_settings(sd):
    positive = sd.resolve(GenerationRequest(prompt="two red apples on a table", prompt_id="ap", seed=4))
    negative = alignment_negative(positive, "three green apples on a table", {"perturbation": "count+color"})
    pos_out, neg_out = sd.generate([positive, negative])
    assert (negative.seed, negative.steps, negative.guidance) == (positive.seed, positive.steps, positive.guidance)
    assert neg_out.provenance["degradation"] == {
        "family": "prompt", "aspect": "alignment", "kind": "perturbed_prompt",
        "original_prompt": "two red apples on a table", "perturbation": "count+color",
    }
    assert _diff(pos_out.image, neg_out.image).mean() > 0.5
    with pytest.raises(ValueError, match="identical"):
        alignment_negative(positive, positive.prompt)


# --- clear failures ----------------------------------------------------------------------------


def test_model_not_available_offline_says_how_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailableError) as info:
        Generator.from_config(GeneratorConfig(id="x", model="someorg/not-downloaded", revision="v1", device="cpu"))
    text = str(info.value)
    assert "'someorg/not-downloaded'" in text and "offline (HF_HUB_OFFLINE=1)" in text
    assert f"HF_HOME={tmp_path / 'hf'} huggingface-cli download someorg/not-downloaded --revision v1" in text
    with pytest.raises(ModelNotAvailableError, match="neither an existing local folder nor a Hub id"):
        Generator.from_config(GeneratorConfig(id="x", model=str(tmp_path / "missing" / "folder"), device="cpu"))


def test_hub_id_loads_from_the_cache_and_records_the_commit(tmp_path, tiny_dir, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--tinyorg--tiny-sd"
    shutil.copytree(tiny_dir / "tiny-sd", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    gen = Generator.from_config(GeneratorConfig(id="hub", model="tinyorg/tiny-sd", device="cpu", steps=2, resolution=32))
    assert gen.provenance["revision"] == commit
    assert gen.generate(_requests(1))[0].provenance["revision"] == commit


def test_missing_component_and_pickle_weights_are_named(tmp_path, tiny_dir):
    broken = tmp_path / "no-vae"
    shutil.copytree(tiny_dir / "tiny-sd", broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(MissingComponentError, match=r"missing component 'vae' \(diffusers AutoencoderKL\)"):
        Generator.from_config(_config(broken))
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_dir / "tiny-sd", pickled)
    weights = pickled / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(MissingComponentError, match=r"component 'unet' .* no .safetensors weights \(found: config.json, diffusion_pytorch_model.bin\)"):
        Generator.from_config(_config(pickled))


def test_out_of_memory_halves_the_batch_and_logs_it(sd, monkeypatch, caplog):
    requests = _requests(6, prefix="oom")
    expected = sd.generate(requests)
    real = sd._generate_batch
    sizes = []

    def fake_oom(batch):
        sizes.append(len(batch))
        if len(batch) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(batch)

    monkeypatch.setattr(sd, "_generate_batch", fake_oom)
    try:
        with caplog.at_level(logging.WARNING, logger="pairgen.generators.generator"):
            outputs = sd.generate(requests)
        assert sizes[:3] == [4, 2, 1] and sizes[3:] == [1] * 5
        assert "out of memory at batch 4, retrying at batch 2" in caplog.text and "at batch 2, retrying at batch 1" in caplog.text
        assert all(_diff(a.image, b.image).max() <= 2 for a, b in zip(outputs, expected))
        with pytest.raises(torch.OutOfMemoryError):  # nothing left to halve
            monkeypatch.setattr(sd, "_generate_batch", lambda batch: (_ for _ in ()).throw(torch.OutOfMemoryError("oom")))
            sd.generate(requests[:1])
    finally:
        sd.batch_size = sd.config.batch_size


def test_generators_package_does_not_import_ray():
    code = "import sys, pairgen.generators; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- throughput benchmark and CUDA-only optimisations, exercised on CPU ----------------------------


def _load_benchmark():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generation.py"
    spec = importlib.util.spec_from_file_location("bench_generation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_tiny_smoke(tmp_path):
    bench = _load_benchmark()
    out = tmp_path / "bench.json"
    results = bench.main(["--tiny", "--batch-size", "2", "--batches", "1", "--plain-images", "1", "--repeats", "1",
                          "--workdir", str(tmp_path / "work"), "--json", str(out)])
    assert json.loads(out.read_text()) == results
    assert [r["setting"] for r in results["settings"]] == ["4 steps, no CFG", "25 steps, CFG 7.5"]
    for row in results["settings"]:
        assert row["b_over_c"] == pytest.approx(row["b_generator_img_s"] / row["c_bound_img_s"]) and row["b_over_c"] > 0
        assert row["b_over_a"] == pytest.approx(row["b_generator_img_s"] / row["a_plain_batch1_img_s"])
    four, twenty_five = results["settings"]
    assert twenty_five["c_bound_img_s"] < four["c_bound_img_s"]  # 25 CFG steps cost more than 4 plain ones


@pytest.mark.slow
def test_channels_last_and_compile_keep_the_images(tiny_dir, sd):
    """The CUDA-only module optimisations, applied on CPU (inductor needs a C compiler), change no image."""
    from pairgen.generators.generator import _optimize_modules

    gen = Generator.from_config(_config(tiny_dir / "tiny-sd", channels_last=True, compile="default"))
    _optimize_modules(gen.pipe, gen.config)
    requests = _requests(4)
    for a, b in zip(gen.generate(requests), sd.generate(requests)):
        assert _diff(a.image, b.image).max() <= 2


# --- FLUX: a real packed-latent pipeline -------------------------------------------------------


def test_flux_provenance_records_embedded_guidance_and_settings(flux):
    request = GenerationRequest(prompt="a cat", prompt_id="cat", seed=5, steps=2, guidance=5.0, resolution=(32, 48))
    (out,) = flux.generate([request])
    assert out.image.shape == (48, 32, 3) and out.image.dtype == np.uint8
    p = out.provenance
    assert (p["generator"], p["model"], p["revision"], p["pipeline"]) == ("tiny-flux", flux.config.model, flux.revision, "FluxPipeline")
    assert (p["scheduler"], p["steps"], p["guidance"], p["resolution"], p["seed"]) == ("FlowMatchEulerDiscreteScheduler", 2, 5.0, [32, 48], 5)
    (louder,) = flux.generate([replace(request, guidance=1.0)])
    assert _diff(out.image, louder.image).mean() > 0.2  # embedded guidance reaches the transformer


def test_flux_resolution_must_be_a_multiple_of_16(tiny_dir, flux):
    """8x VAE and 2x2 latent packing: FLUX would silently shrink a 40 px side to 32 px."""
    with pytest.raises(ValueError, match=r"resolution \[72, 72\] must be a multiple of 16 for FluxPipeline"):
        Generator.from_config(_config(tiny_dir / "tiny-flux", resolution=72))
    with pytest.raises(ValueError, match=r"resolution \[40, 64\] is not a multiple of 16"):
        flux.generate([GenerationRequest(prompt="a cat", prompt_id="cat", seed=1, resolution=(40, 64))])


def test_flux_generation_negatives_work_or_are_not_applicable(flux):
    (positive,) = flux.generate([GenerationRequest(prompt="a lighthouse", prompt_id="lh", seed=21)])
    with pytest.raises(NotApplicableError, match="FluxPipeline packs its latents; latent_noise"):
        flux.negative("latent_noise", positive.request, 3)
    kinds = [k for k in GENERATION_NEGATIVES if k != "latent_noise"]
    requests = [flux.negative(k, positive.request, s, image=positive.image) for k in kinds for s in (1, 2, 5)]
    low = {r.degradation["severity"]: r.resolution for r in requests if r.degradation["kind"] == "low_resolution_upscaled"}
    assert low == {1: (48, 48), 2: (32, 32), 5: (16, 16)}  # multiples of 16 (8 would give 40 at severity 2)
    assert [r.guidance for r in requests if r.degradation["kind"] == "low_guidance"] == [2.5, pytest.approx(2.125), 1.0]
    outputs = flux.generate(requests)
    for out in outputs:
        kind = out.provenance["degradation"]["kind"]
        assert out.image.shape == positive.image.shape, kind  # sdedit: FLUX img2img would otherwise resize to 1024
        assert out.provenance["seed"] == positive.provenance["seed"] and out.provenance["model"] == positive.provenance["model"]
        assert _diff(out.image, positive.image).mean() > 0.5, kind
    assert type(flux._img2img).__name__ == "FluxImg2ImgPipeline"
    sdedit = [o for o in outputs if o.provenance["degradation"]["kind"] == "sdedit"]
    assert [o.provenance["strength"] for o in sdedit] == [0.3, 0.45, 0.9]
    assert _diff(sdedit[0].image, positive.image).mean() < _diff(sdedit[2].image, positive.image).mean()  # severity means worse
    again = flux.generate([flux.negative("sdedit", positive.request, 2, image=positive.image)])[0]
    assert np.array_equal(again.image, sdedit[1].image)


def test_flux_schnell_layout_uses_true_cfg(tmp_path):
    """A transformer without a guidance input (FLUX.1-schnell; Qwen-Image alike): guidance > 1 runs true
    CFG (`true_cfg_scale` with an empty negative prompt), <= 1 runs none; a pipeline that offers neither
    records guidance 0.0 and the guidance negatives are not applicable."""
    from pairgen.generators.fixtures import TINY_FLUX_TRANSFORMER, TINY_FLUX_VAE, TINY_TEXT_ENCODER, build_flux_pipeline

    folder = tmp_path / "tiny-flux-schnell"
    build_flux_pipeline(TINY_FLUX_TRANSFORMER | {"guidance_embeds": False}, TINY_FLUX_VAE, TINY_TEXT_ENCODER).save_pretrained(folder)
    gen = Generator.from_config(_config(folder, guidance=0.0, steps=2))
    assert gen.guidance_mode == "true_cfg" and gen.provenance["guidance"] == 0.0
    positive = gen.resolve(GenerationRequest(prompt="a cat", prompt_id="cat", seed=2))
    with pytest.raises(NotApplicableError):
        gen.negative("low_guidance", positive, 3)
    with pytest.raises(NotApplicableError, match="packs its latents"):
        gen.negative("latent_noise", positive, 3)
    over = gen.negative("over_guidance", positive, 1)
    plain, burnt, few = gen.generate([positive, over, gen.negative("few_steps", positive, 3)])
    assert (burnt.provenance["guidance"], few.provenance["steps"]) == (2.0, 1) and burnt.image.shape == (64, 64, 3)
    assert _diff(plain.image, burnt.image).mean() > 0.5 and _diff(plain.image, few.image).mean() > 0.5
    assert np.array_equal(gen.generate([replace(positive, guidance=1.0)])[0].image, plain.image)  # <= 1: no CFG pass

    gen.guidance_mode = "none"  # a pipeline with neither a guidance input nor true CFG
    assert gen.provenance["guidance"] == 0.0 and gen.resolve(replace(positive, guidance=3.5)).guidance == 0.0
    for kind in ("low_guidance", "low_guidance_alignment", "over_guidance"):
        with pytest.raises(NotApplicableError, match="ignores guidance"):
            gen.negative(kind, positive, 3)


def test_side_multiple_covers_packing_and_patchifying_pipelines():
    from types import SimpleNamespace

    from pairgen.generators.generator import side_multiple

    def pipe(vae, processor, patch=None):
        image_processor = SimpleNamespace(config=SimpleNamespace(vae_scale_factor=processor))
        return SimpleNamespace(vae_scale_factor=vae, image_processor=image_processor, **({"patch_size": patch} if patch else {}))

    assert side_multiple(pipe(8, 8)) == 8  # SD, SDXL
    assert side_multiple(pipe(8, 16)) == 16  # FLUX, Qwen-Image: 2x2 packing in the image processor's factor
    assert side_multiple(pipe(8, 8, patch=2)) == 16  # SD3: the transformer patchifies the latents
    assert side_multiple(pipe(2, 2)) == 8  # tiny VAEs: never less than 8
