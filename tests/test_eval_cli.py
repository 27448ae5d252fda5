"""`python -m trainer.evaluate` end to end on the real AGIQA-3K dev split and on real-image pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pairgen.records import PairRecord, make_pair_key
from pairgen.shards import encode_pair, shard_name, write_shard
from trainer.evaluate import main

DEV = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "agiqa3k-dev"
pytestmark = pytest.mark.skipif(not (DEV / "data.csv").is_file(), reason=f"benchmark data not found: {DEV}")


def dev_rows() -> list[dict[str, str]]:
    with open(DEV / "data.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_laplacian_floor_on_the_dev_split(tmp_path):
    """The sharpness floor quoted in the benchmark README: SRCC 0.56 quality / 0.46 alignment."""
    out = tmp_path / "report"
    argv = ["--baselines-only", "--baselines", "laplacian", "--benchmark", "agiqa3k", "--root", str(DEV), "--out", str(out), "--bootstrap", "100"]
    assert main(argv) == 0
    report = strict_json(out / "report.json")
    results = report["subsets"]["all"]["results"]["laplacian"]
    assert results["mos_quality"]["srcc"] == pytest.approx(0.56, abs=0.03)
    assert results["mos_align"]["srcc"] == pytest.approx(0.46, abs=0.03)
    quality = results["mos_quality"]
    assert quality["n"] == 495 and quality["ci95"]["srcc"][0] < quality["srcc"] < quality["ci95"]["srcc"][1]
    assert quality["plcc"] >= 0.5 and 0 < quality["krcc"] < quality["srcc"]
    assert sorted(quality["per_group"]) == sorted({r["name"].rsplit("_", 1)[0] for r in dev_rows()})
    assert quality["per_group"]["AttnGAN_normal"]["n"] == 50
    assert list(report["subsets"]) == ["all"]  # no supervised method, no held-out part
    assert report["bootstrap"]["unit"] == "prompt"  # 50 prompts of about 10 images each: prompts are resampled

    markdown = (out / "report.md").read_text()
    assert "| laplacian | 0.56" in markdown and "| sd1.5_lowstep | 50 |" in markdown
    assert "100 bootstrap resamples of prompts" in markdown

    plot = cv2.imread(str(out / report["plots"]["laplacian"]))
    assert plot is not None and plot.shape[1] > plot.shape[0] > 200
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 495 and {"laplacian.quality", "laplacian.alignment", "mos_quality"} <= set(rows[0])


def test_the_bootstrap_resamples_images_when_a_benchmark_has_no_prompts():
    from dataclasses import replace

    from trainer.benchmarks import load_benchmark
    from trainer.evaluate import bootstrap_clusters, bootstrap_unit

    benchmark = load_benchmark("agiqa3k", DEV)
    assert bootstrap_unit(benchmark, "prompt") == "prompt" and bootstrap_clusters(benchmark, "prompt") == benchmark.prompts
    assert bootstrap_unit(benchmark, "image") == "image" and bootstrap_clusters(benchmark, "image") is None
    photos_only = replace(benchmark, items=tuple(replace(item, prompt="") for item in benchmark.items))  # as KonIQ-10k
    assert bootstrap_unit(photos_only, "prompt") == "image"


def blurred(image: np.ndarray, severity: int) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=0.6 * severity)


def noisy(image: np.ndarray, severity: int) -> np.ndarray:
    noise = np.random.default_rng(severity).normal(0, 6 * severity, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def write_pairs(folder: Path, count: int = 6) -> None:
    """Quality pairs from real dev images: the original over a blurred or a noisy copy."""
    samples = []
    for row in dev_rows()[:count]:
        image = cv2.cvtColor(cv2.imread(str(DEV / "images" / row["name"])), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)
        for corruption, fn in (("gaussian_blur", blurred), ("gaussian_noise", noisy)):
            spec = {"name": corruption, "severity": 3}
            record = PairRecord(
                key=make_pair_key(source_id=row["name"], generator_id=None, generator_revision=None, seed=0, corruption=spec),
                aspect="quality", family="conventional", corruption=corruption, severity=3, params={},
                prompt=row["prompt"], prompt_id=row["name"], source="agiqa3k-dev", seed=0,
                pos_size=(128, 128), neg_size=(128, 128), config_hash="test",
            )
            samples.append(encode_pair(record, image, fn(image, 3)))
    folder.mkdir()
    write_shard(folder, shard_name(0), samples)


def test_pairwise_accuracy_by_family_and_corruption(tmp_path):
    """A sharpness statistic ranks blur correctly and noise backwards: the breakdown must show both."""
    write_pairs(tmp_path / "pairs")
    csv_path = tmp_path / "bench.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "prompt", "quality"])
        for row in dev_rows()[::50]:
            writer.writerow([DEV / "images" / row["name"], row["prompt"], row["mos_quality"]])
    out = tmp_path / "report"
    argv = ["--baselines-only", "--baselines", "laplacian", "--benchmark", "csv", "--root", str(csv_path),
            "--pairs", str(tmp_path / "pairs"), "--out", str(out), "--bootstrap", "20"]
    assert main(argv) == 0
    pairs = strict_json(out / "report.json")["pairs"]
    lap = pairs["methods"]["laplacian"]
    assert pairs["n_pairs"] == 12 and lap["overall"] == {"n": 12, "accuracy": 0.5}
    assert lap["family"] == {"quality/conventional": {"n": 12, "accuracy": 0.5}}
    assert lap["corruption"]["quality/conventional/gaussian_blur"] == {"n": 6, "accuracy": 1.0}
    assert lap["corruption"]["quality/conventional/gaussian_noise"] == {"n": 6, "accuracy": 0.0}
    assert "| gaussian_blur | 6 | 1.000 |" not in (out / "report.md").read_text()  # labels carry aspect/family
    assert "| quality/conventional/gaussian_blur | 6 | 1.000 |" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--root", "/nonexistent"], "error: benchmark root not found: /nonexistent"),
        (["--baselines", "laplacian,sharpness"], "error: unknown baseline(s) ['sharpness']"),
        (["--baselines", ""], "error: nothing to evaluate"),
        (["--pairs", "/nonexistent/pairs"], "error: pair shard folder not found: /nonexistent/pairs"),
        (["--pairs", "."], "error: no complete pair shards"),
        (["--option", "images=nope"], "error: agiqa3k: 495 of 495 image(s) missing"),
        (["--baseline-option", "laplacian.sigma=2"], "error: baseline 'laplacian': unknown option(s) ['sigma']"),
        (["--reference", "brisque"], "error: --reference 'brisque' is not among the evaluated methods ['laplacian']"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, extra, message):
    argv = ["--baselines-only", "--baselines", "laplacian", "--benchmark", "agiqa3k", "--root", str(DEV),
            "--out", str(tmp_path), "--bootstrap", "5", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message)


def test_critic_checkpoint_is_evaluated_like_a_baseline(tmp_path):
    """An (untrained, tiny) critic checkpoint goes through the same path; its numbers are its own scores."""
    import torch

    from trainer.benchmarks import load_image
    from trainer.config import BackboneConfig, CriticConfig
    from trainer.critic import Critic
    from trainer.tiny_models import build_tiny_clip

    torch.manual_seed(0)
    tiny = str(build_tiny_clip(tmp_path / "tiny-clip"))
    backbone = BackboneConfig(name="hf-clip", options={"model": tiny, "vision_layers": [-1, -2], "text_layers": [-1, -2]})
    critic = Critic(CriticConfig(backbone=backbone))
    critic.save_pretrained(tmp_path / "ckpt")
    rows = dev_rows()[::60]
    csv_path = tmp_path / "bench.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "prompt", "quality", "alignment"])
        for row in rows:
            writer.writerow([DEV / "images" / row["name"], row["prompt"], row["mos_quality"], row["mos_align"]])
    out = tmp_path / "report"
    argv = ["--checkpoint", str(tmp_path / "ckpt"), "--baselines", "laplacian", "--benchmark", "csv", "--root", str(csv_path),
            "--out", str(out), "--bootstrap", "20", "--batch-size", "4"]
    assert main(argv) == 0
    report = strict_json(out / "report.json")
    assert set(report["subsets"]["all"]["results"]) == {"critic", "laplacian"}
    versus = report["subsets"]["all"]["versus"]
    assert versus["reference"] == "laplacian" and set(versus["results"]) == {"critic"}
    results = report["subsets"]["all"]["results"]
    delta = versus["results"]["critic"]["quality"]
    assert delta["delta"] == pytest.approx(results["critic"]["quality"]["srcc"] - results["laplacian"]["quality"]["srcc"])
    assert delta["ci95"][0] <= delta["delta"] <= delta["ci95"][1]
    expected = critic.score([load_image(DEV / "images" / r["name"]) for r in rows], [r["prompt"] for r in rows])
    with open(out / "predictions.csv", newline="") as handle:
        got = [float(r["critic.alignment"]) for r in csv.DictReader(handle)]
    np.testing.assert_allclose(got, expected["alignment"].numpy(), rtol=1e-4, atol=1e-5)
    assert "label-free critic" in (out / "report.md").read_text()


class PromptEcho:
    """A scorer whose alignment is the prompt length: exposes which prompt each image was scored with."""

    def score(self, images, prompts):
        return {"alignment": np.array([float(len(p)) for p in prompts])}


def test_text_side_alignment_negatives_are_scored_with_their_neg_prompt():
    from pairgen.shards import Pair
    from trainer.evaluate import Method, score_pairs

    image = np.zeros((8, 8, 3), np.uint8)
    common = dict(aspect="alignment", family="prompt", severity=1, params={}, prompt_id="p", source="s", seed=0,
                  pos_size=(8, 8), neg_size=(8, 8), config_hash="h")
    spec = {"name": "object_replace"}
    text_side = PairRecord(key=make_pair_key(source_id="a", generator_id=None, generator_revision=None, seed=0, corruption=spec),
                           corruption="text:object_replace", prompt="a red apple on a table", neg_prompt="a pear", **common)
    image_side = PairRecord(key=make_pair_key(source_id="b", generator_id=None, generator_revision=None, seed=0, corruption=spec),
                            corruption="image:swap", prompt="a red apple on a table", **common)
    pairs = [Pair(text_side, image, image, "mem"), Pair(image_side, image, image, "mem")]
    records, margins = score_pairs(pairs, [Method("echo", PromptEcho())], batch_size=2)
    assert [r.key for r in records] == [text_side.key, image_side.key]
    np.testing.assert_array_equal(margins["echo"], [len("a red apple on a table") - len("a pear"), 0.0])
