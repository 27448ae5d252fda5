"""The pair-building job end to end on the tiny fixture generators and real photos, embedded Ray.

Resume, incremental builds, a killed worker and a killed driver must all end with every pair
exactly once and, where the config is unchanged, byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO_ROOT
from pairgen.config import BuildConfig, load_build_config
from pairgen.config_base import ConfigError, validate_config
from pairgen.plan import plan_build
from pairgen.shards import iter_pairs, list_shards, load_manifest, marker_path
from pairgen.validate import validate_dataset

SCRIPT = REPO_ROOT / "pipelines" / "build_pairs.py"


def small_config(tiny_pipelines, out: Path, generators=("sd",), photos=("chelsea", "coffee", "astronaut"), prompts=4) -> dict:
    return {
        "name": "test",
        "seed": 3,
        "output": {"dir": str(out), "pairs_per_shard": 6, "preview_pairs": 6},
        "sources": {
            "prompts": [{"kind": "builtin", "limit": prompts}],
            "images": [{"id": "photos", "kind": "skimage", "names": list(photos), "max_side": 96}],
        },
        "generators": [
            {"id": f"tiny-{family}", "model": str(tiny_pipelines[family]), "device": "cpu", "dtype": "float32",
             "steps": 2, "guidance": 5.0, "resolution": 64, "batch_size": 4, "num_gpus": 0}
            for family in generators
        ],
        "pairs": {"corruptions": 2, "generation": 1},
        "alignment": {"negatives_per_prompt": 1},
        "runtime": {"cpu_workers": 1},
    }


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def shard_digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.tar"))}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=3, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield ray
    ray.shutdown()


def run_job(config: dict, executor: str = "ray") -> dict:
    from pipelines.build_pairs import build

    return build(validate_config(BuildConfig, config), executor)


@pytest.fixture(scope="module")
def reference(tiny_pipelines, tmp_path_factory, ray_cluster):
    """An uninterrupted build: what every other run must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    stats = run_job(small_config(tiny_pipelines, out))
    return out, stats


def test_build_produces_a_valid_dataset_with_stats_and_preview(reference):
    out, stats = reference
    report = validate_dataset(out)
    assert report.ok, report.problems
    assert stats["counts"]["pairs"] == report.samples > 0
    assert set(stats["counts"]["aspect"]) == {"quality", "alignment"}
    assert {"conventional", "generation", "prompt"} <= set(stats["counts"]["family"])
    assert set(stats["counts"]["generator"]) == {"tiny-sd", "photos"}
    assert stats["stages"]["build"]["pairs_per_second"] > 0 and stats["stages"]["generate"]["busy_seconds"] > 0
    assert (out / "preview.png").stat().st_size > 1000 and (out / "stats.md").read_text().startswith("# Pair dataset `test`")
    manifest = load_manifest(out)
    assert manifest["nsamples"] == report.samples and [v["version"] for v in manifest["versions"]] == [1]
    resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
    assert resolved["generators"][0]["steps"] == 2 and resolved["corruptions"]["qa"]  # defaults filled in
    records = [p.record for p in iter_pairs(out)]
    assert len({r.key for r in records}) == len(records)
    generated = [r for r in records if r.source == "generator:tiny-sd"]
    assert generated and all(r.generator["model"] == str(Path(r.generator["model"])) and r.generator["seed"] == r.seed for r in generated)
    text_side = [r for r in records if r.corruption.startswith("text:")]
    assert text_side and all(r.neg_prompt and r.neg_prompt != r.prompt for r in text_side)


def test_rerun_skips_complete_shards_and_changes_nothing(reference, tiny_pipelines):
    out, _ = reference
    before = shard_digests(out)
    stats = run_job(small_config(tiny_pipelines, out))
    assert stats["shards"]["built"] == 0 and stats["shards"]["skipped"] == len(before)
    assert shard_digests(out) == before


def test_resume_rebuilds_incomplete_shards_byte_identically(reference, tiny_pipelines, tmp_path):
    out, _ = reference
    expected = shard_digests(out)
    first = run_job({**small_config(tiny_pipelines, tmp_path), "runtime": {"cpu_workers": 1}})
    assert shard_digests(tmp_path) == expected  # a second build elsewhere gives the same bytes
    names = sorted(expected)
    marker_path(tmp_path / names[0]).unlink()  # crashed after the rename, before the marker
    with open(tmp_path / names[-1], "r+b") as handle:  # a shard altered on disk
        handle.seek(600)
        handle.write(b"\xff\xff")
    (tmp_path / f"{names[1]}.999.tmp").write_bytes(b"left by a killed writer")
    stats = run_job(small_config(tiny_pipelines, tmp_path))
    assert stats["shards"]["built"] == 2
    assert shard_digests(tmp_path) == expected
    assert validate_dataset(tmp_path).ok
    assert first["counts"] == stats["counts"]


def test_adding_a_generator_builds_only_new_shards(reference, tiny_pipelines, tmp_path):
    out, _ = reference
    run_job(small_config(tiny_pipelines, tmp_path))
    before = {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in list_shards(tmp_path)}
    stats = run_job(small_config(tiny_pipelines, tmp_path, generators=("sd", "sdxl"), prompts=8))
    after = {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in list_shards(tmp_path)}
    assert {k: after[k] for k in before} == before  # untouched, not even rewritten
    new = sorted(set(after) - set(before))
    assert new and stats["shards"]["built"] == len(new)
    manifest = load_manifest(tmp_path)
    assert [v["version"] for v in manifest["versions"]] == [1, 2] and manifest["versions"][1]["shards"] == new
    assert "tiny-sdxl" in stats["counts"]["generator"]
    assert validate_dataset(tmp_path).ok


def test_killed_worker_job_completes_with_every_pair_once(reference, tiny_pipelines, tmp_path):
    out, _ = reference
    config = small_config(tiny_pipelines, tmp_path)
    config["runtime"] = {"cpu_workers": 1, "kill_worker_after_shards": 1, "max_retries": 3}
    run_job(config)
    assert (tmp_path / ".fault-injected").exists()  # the worker really died
    assert shard_digests(tmp_path) == shard_digests(out)
    keys = [p.record.key for p in iter_pairs(tmp_path)]
    assert len(keys) == len(set(keys)) == validate_dataset(tmp_path).samples


def test_killed_driver_then_rerun_completes(reference, tiny_pipelines, tmp_path):
    out, _ = reference
    config = write_config(tmp_path / "job.yaml", small_config(tiny_pipelines, tmp_path / "data"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--config", str(config)], env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((tmp_path / "data").glob("*.stats.json")):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and everything it started, like a lost machine
    process.wait()
    markers = list((tmp_path / "data").glob("*.stats.json"))
    assert markers, "the driver was killed before any shard completed"
    for shard in (tmp_path / "data").glob("*.tar"):  # nothing partial under a final name
        assert marker_path(shard).exists()
    result = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config)], env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shard_digests(tmp_path / "data") == shard_digests(out)
    assert validate_dataset(tmp_path / "data").ok


def test_plan_is_deterministic_and_incremental(tiny_pipelines, tmp_path):
    config = validate_config(BuildConfig, small_config(tiny_pipelines, tmp_path))
    first, second = plan_build(config, tmp_path), plan_build(config, tmp_path)
    assert [s.to_dict() for s in first.shards] == [s.to_dict() for s in second.shards]
    assert all(s.planned_pairs <= 6 or len(s.units) == 1 for s in first.shards)
    keys = [n.key for s in first.shards for u in s.units for n in u.negatives]
    assert len(keys) == len(set(keys))


def pool_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> BuildConfig:
    """configs/pool.yaml (its paths are relative to the repository) writing to `tmp_path`."""
    if not (REPO_ROOT.parent / "shared" / "benchmarks" / "agiqa3k-pool").is_dir():
        pytest.skip("shared benchmarks not present")
    monkeypatch.chdir(REPO_ROOT)
    return load_build_config(REPO_ROOT / "configs" / "pool.yaml", [f"output.dir={tmp_path}", *overrides])


def test_every_shard_mixes_its_subset_though_the_collection_lists_images_grouped(tmp_path, monkeypatch):
    """AGIQA-3K's pool lists images by generator; natural pairs exist only for some generators. Each
    shard must still hold its share of them, or a short run's data depends on which shards it drew."""
    config = pool_config(tmp_path, monkeypatch)
    plan = plan_build(config, tmp_path)
    shares = []
    for shard in plan.shards:
        kinds = [n.kind for u in shard.units for n in u.negatives]
        if shard.subset == "agiqa3k-pool" and len(kinds) >= config.output.pairs_per_shard // 2:
            shares.append(kinds.count("natural") / len(kinds))
    assert len(shares) >= 20
    overall = sum(shares) / len(shares)
    assert overall > 0.1 and min(shares) > 0.5 * overall and max(shares) < 1.5 * overall, shares
    again = plan_build(config, tmp_path / "again")
    assert [s.to_dict() for s in again.shards] == [s.to_dict() for s in plan.shards]


def test_zero_prompt_perturbations_leave_only_image_side_alignment_pairs(tmp_path, monkeypatch):
    config = pool_config(tmp_path, monkeypatch, "alignment.negatives_per_prompt=0")
    kinds = {n.kind for shard in plan_build(config, tmp_path).shards for u in shard.units for n in u.negatives}
    assert "text_alignment" not in kinds and {"image_swap", "erasure", "natural", "corruption"} <= kinds


# ---- bad input --------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_unwritable_output_folder(tiny_pipelines, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = write_config(tmp_path / "job.yaml", small_config(tiny_pipelines, blocker / "out"))
    result = run_cli("--config", str(config))
    assert result.returncode == 2
    assert f"error: output folder {blocker / 'out'} is not writable" in result.stderr


def test_missing_prompt_file_and_zero_prompts(tiny_pipelines, tmp_path):
    data = small_config(tiny_pipelines, tmp_path / "out")
    data["sources"] = {"prompts": [{"kind": "text", "path": str(tmp_path / "missing.txt")}]}
    result = run_cli("--config", str(write_config(tmp_path / "a.yaml", data)))
    assert result.returncode == 2 and "missing.txt" in result.stderr and "Traceback" not in result.stderr
    (tmp_path / "empty.txt").write_text("\n\n")
    data["sources"] = {"prompts": [{"kind": "text", "path": str(tmp_path / "empty.txt")}]}
    result = run_cli("--config", str(write_config(tmp_path / "b.yaml", data)))
    assert result.returncode == 2 and "empty.txt" in result.stderr and "Traceback" not in result.stderr


def test_generator_that_fails_to_load_is_named(tiny_pipelines, tmp_path):
    data = small_config(tiny_pipelines, tmp_path / "out")
    data["generators"][0]["model"] = str(tmp_path / "no-such-model")
    result = run_cli("--config", str(write_config(tmp_path / "a.yaml", data)))
    assert result.returncode == 2
    assert "generator 'tiny-sd'" in result.stderr and "no-such-model" in result.stderr and "Traceback" not in result.stderr


def test_write_error_mid_shard_fails_clearly_and_leaves_no_corrupt_shard(tiny_pipelines, tmp_path, monkeypatch, capsys):
    import webdataset as wds

    from pipelines.build_pairs import main

    original, calls = wds.TarWriter.write, {"n": 0}

    def failing_write(self, obj):
        calls["n"] += 1
        if calls["n"] == 8:
            raise OSError(28, "No space left on device")
        return original(self, obj)

    monkeypatch.setattr(wds.TarWriter, "write", failing_write)
    config = write_config(tmp_path / "a.yaml", small_config(tiny_pipelines, tmp_path / "out"))
    assert main(["--config", str(config), "--executor", "local"]) == 1
    err = capsys.readouterr().err
    assert "writing shard" in err and "No space left on device" in err
    for shard in (tmp_path / "out").glob("*.tar"):
        assert marker_path(shard).exists()
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_config_errors_name_path_value_and_allowed(tmp_path):
    path = write_config(tmp_path / "bad.yaml", {
        "name": "x",
        "sources": {"images": [{"id": "p", "kind": "skimage"}]},
        "corruptions": {"quality": [{"name": "jpeg"}, {"name": "gaussian_blur"}, {"name": "jpeg", "severity": 7}]},
        "output": {"pairs_per_shard": "many", "colour": 1},
    })
    with pytest.raises(ConfigError) as info:
        load_build_config(path)
    problems = info.value.problems
    assert "corruptions.quality[2].severity: must be within 1..5, got 7" in problems
    assert any(p.startswith("output: unknown key 'colour'; valid keys: dir, pairs_per_shard, prefix, preview_pairs") for p in problems)
    with pytest.raises(ConfigError, match=r"corruptions\.quality\[0\]\.name: .*'jpg'.*jpeg"):
        load_build_config(path, ["corruptions.quality[0].name=jpg", "corruptions.quality[2].severity=2", "output.pairs_per_shard=4", "output.colour=null"])


def test_yaml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsources: [unclosed\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line \d+, column \d+"):
        load_build_config(bad)
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_build_config(tmp_path / "nope.yaml")


def test_overrides_and_wrong_types(tmp_path):
    path = write_config(tmp_path / "ok.yaml", {"name": "x", "sources": {"images": [{"id": "p", "kind": "skimage"}]}})
    config = load_build_config(path, ["output.pairs_per_shard=12", "sources.images[0].max_side=128", "seed=5"])
    assert (config.output.pairs_per_shard, config.sources.images[0].max_side, config.seed) == (12, 128, 5)
    with pytest.raises(ConfigError, match=r"seed: input should be a valid integer, unable to parse string as an integer, got 'abc'"):
        load_build_config(path, ["seed=abc"])
    with pytest.raises(ConfigError, match=r"override 'sources.images\[3\].id=q': sources.images\[3\] does not exist \(list length: 1\)"):
        load_build_config(path, ["sources.images[3].id=q"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_build_config(path, ["seed"])


def test_collection_with_natural_generation_pairs(tmp_path):
    """Real AGIQA-3K pool images: for the same prompt, sd1.5_lowstep loses to sd1.5_normal (one rule
    per aspect), plus image swaps and content erasures as image-side alignment pairs."""
    import cv2

    import csv

    pool = REPO_ROOT.parent / "shared" / "benchmarks" / "agiqa3k-pool"
    if not pool.is_dir():
        pytest.skip("shared benchmarks not present")
    rows = list(csv.DictReader(open(pool / "images.csv", newline="")))
    by_prompt: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_prompt.setdefault(row["prompt"], {})[row["generator"]] = row
    chosen = [r for settings in by_prompt.values() if {"sd1.5_normal", "sd1.5_lowstep"} <= set(settings)
              for r in (settings["sd1.5_normal"], settings["sd1.5_lowstep"])][:6]
    subset = tmp_path / "subset.csv"
    with open(subset, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(chosen)
    config = {
        "name": "natural",
        "output": {"dir": str(tmp_path / "out"), "pairs_per_shard": 50},
        "sources": {"images": [{
            "id": "pool", "kind": "csv", "path": str(subset), "images": str(pool / "images"), "setting_column": "generator",
            "max_side": 128, "natural_pairs": [
                {"better": "sd1.5_normal", "worse": "sd1.5_lowstep", "severity": 3},
                {"better": "sd1.5_normal", "worse": "sd1.5_lowstep", "severity": 3, "aspect": "alignment"},
            ],
        }]},
        "pairs": {"corruptions": 1, "image_swaps": 1, "erasures": 1},
        "alignment": {"negatives_per_prompt": 1},
    }
    run_job(config, executor="local")
    swaps = [p for p in iter_pairs(tmp_path / "out") if p.record.corruption == "image_swap"]
    assert len(swaps) == 6  # one per image: another prompt's image, judged against this image's prompt
    for pair in swaps:
        assert (pair.record.aspect, pair.record.family, pair.record.neg_prompt) == ("alignment", "prompt", None)
        other = pair.record.neg_generator["image"]
        assert other != pair.record.extra["image"] and not np.array_equal(pair.pos, pair.neg)
    natural = [p for p in iter_pairs(tmp_path / "out") if p.record.corruption == "natural:sd1.5_lowstep"]
    assert sorted(p.record.aspect for p in natural) == ["alignment"] * 3 + ["quality"] * 3
    for pair in natural:
        record = pair.record
        assert (record.family, record.severity) == ("generation", 3)
        assert record.generator["setting"] == "sd1.5_normal" and record.neg_generator["setting"] == "sd1.5_lowstep"
        assert record.generator["image"] != record.neg_generator["image"]
        assert pair.pos.shape[2] == 3 and max(pair.pos.shape[:2]) == 128
    erasures = [p for p in iter_pairs(tmp_path / "out") if p.record.corruption == "erasure:content_erasure"]
    assert len(erasures) == 6
    for pair in erasures:
        assert (pair.record.aspect, pair.record.neg_prompt, pair.record.severity in (4, 5)) == ("alignment", None, True)
        detail = [cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for image in (pair.pos, pair.neg)]
        assert detail[1] < 0.05 * detail[0], detail  # only a colour layout is left
    assert validate_dataset(tmp_path / "out").ok


def test_corrupt_collection_image_fails_the_job_naming_the_file(ray_cluster, tmp_path, photos):
    import cv2

    from pipelines.build_pairs import BuildError

    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("chelsea", "coffee"):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
        (folder / f"{name}.txt").write_text(f"a photo of {name}")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    config = {
        "name": "broken",
        "output": {"dir": str(tmp_path / "out"), "pairs_per_shard": 2},
        "sources": {"images": [{"id": "mine", "kind": "folder", "path": str(folder)}]},
        "pairs": {"corruptions": 1},
        "runtime": {"cpu_workers": 1, "max_retries": 0},
    }
    with pytest.raises(BuildError, match=r"1 shard\(s\) failed .*\n  pairs-\d{6}\.tar: CollectionError: .*broken\.png: cannot read image"):
        run_job(config)
    for shard in (tmp_path / "out").glob("*.tar"):
        assert marker_path(shard).exists()


def test_flux_generator_builds_pairs_in_process(tiny_pipelines, tmp_path):
    """A packed-latent pipeline (tiny FLUX) through the whole job, local executor: latent_noise negatives
    are dropped as not applicable, the other generation negatives are built at the positive's size."""
    config = small_config(tiny_pipelines, tmp_path, generators=("flux",), photos=("chelsea",), prompts=4)
    config["generators"][0] |= {"guidance": 3.5, "negatives": {"kinds": ["latent_noise", "sdedit", "low_resolution_upscaled"]}}
    config["pairs"] = {"corruptions": 1, "generation": 3}
    stats = run_job(config, executor="local")
    assert validate_dataset(tmp_path).ok
    pairs = [p for p in iter_pairs(tmp_path) if p.record.source == "generator:tiny-flux"]
    generation = [p for p in pairs if p.record.family == "generation"]
    assert {p.record.corruption for p in generation} == {"sdedit", "low_resolution_upscaled"}
    for pair in pairs:
        assert pair.record.generator["pipeline"] == "FluxPipeline" and pair.record.generator["guidance"] == 3.5
        assert pair.pos.shape == pair.neg.shape == (64, 64, 3)
    dropped = stats["drops_this_run"].get("not_applicable:latent_noise", 0)
    assert dropped > 0 and not any(p.record.corruption == "latent_noise" for p in pairs)


def test_low_guidance_alignment_negatives_become_generation_alignment_pairs(tiny_pipelines, tmp_path):
    """The opt-in generation-level kind with `aspect = "alignment"` (low guidance, same prompt and seed) is
    written as an alignment pair whose negative was generated at lower guidance, next to quality kinds."""
    config = small_config(tiny_pipelines, tmp_path, photos=("chelsea",), prompts=4)
    config["generators"][0]["negatives"] = {"kinds": ["low_guidance_alignment", "few_steps"]}
    config["pairs"] = {"corruptions": 0, "generation": 4}
    config["alignment"] = {"negatives_per_prompt": 0}
    run_job(config, executor="local")
    assert validate_dataset(tmp_path).ok
    generation = [p for p in iter_pairs(tmp_path) if p.record.family == "generation"]
    by_kind = {kind: [p for p in generation if p.record.corruption == kind] for kind in ("low_guidance_alignment", "few_steps")}
    assert all(by_kind.values()) and sum(map(len, by_kind.values())) == len(generation)
    for pair in by_kind["low_guidance_alignment"]:
        record = pair.record
        assert record.aspect == "alignment"
        assert record.neg_generator["guidance"] < record.generator["guidance"] == 5.0
        assert record.params["aspect"] == "alignment" and not np.array_equal(pair.pos, pair.neg)
    assert {p.record.aspect for p in by_kind["few_steps"]} == {"quality"}
