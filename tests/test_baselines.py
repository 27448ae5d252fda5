"""Baselines on real dev images: sharpness, BRISQUE through our numpy-2 fix, cosine, CLIP-AGIQA."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from trainer.baselines import SUPERVISED, available_baselines, make_baseline
from trainer.benchmarks import BenchmarkError, load_benchmark, load_image

DEV = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "agiqa3k-dev"
pytestmark = pytest.mark.skipif(not (DEV / "data.csv").is_file(), reason=f"benchmark data not found: {DEV}")


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    with open(DEV / "data.csv", newline="") as handle:
        names = [row["name"] for row in csv.DictReader(handle)][::100]
    return [cv2.resize(load_image(DEV / "images" / n), (256, 256), interpolation=cv2.INTER_AREA) for n in names]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> dict[str, object]:
    from trainer.tiny_models import build_tiny_clip

    path = build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))
    return {"model": str(path), "vision_layers": [-1, -2], "text_layers": [-1, -2]}


def test_registry():
    assert {"laplacian", "brisque", "cosine", "clip_agiqa"} <= set(available_baselines())
    assert SUPERVISED == {"clip_agiqa"}
    with pytest.raises(BenchmarkError, match="unknown baseline 'sharp'"):
        make_baseline("sharp")


def test_laplacian_prefers_sharp_images(images):
    scorer = make_baseline("laplacian")
    sharp = scorer.score(images, [""] * len(images))
    blurred = scorer.score([cv2.GaussianBlur(i, (0, 0), 2.0) for i in images], [""] * len(images))
    assert (sharp["quality"] > blurred["quality"]).all()
    np.testing.assert_array_equal(sharp["quality"], sharp["alignment"])  # prompt-blind by design


def test_brisque_works_offline_with_the_numpy2_fix(images):
    pytest.importorskip("brisque")
    scorer = make_baseline("brisque")
    clean = [scorer.brisque(i) for i in images]
    noisy = [scorer.brisque(np.clip(i + np.random.default_rng(0).normal(0, 25, i.shape), 0, 255).astype(np.uint8)) for i in images]
    assert all(np.isfinite(clean)) and all(-20 < v < 150 for v in clean)
    assert np.mean(noisy) > np.mean(clean) + 10  # noise is what BRISQUE was trained to detect
    scores = scorer.score(images[:2], ["", ""])
    np.testing.assert_allclose(scores["quality"], -np.array(clean[:2]))  # negated: higher = better


def test_cosine_is_a_seeded_alignment_only_baseline(images, tiny_clip):
    import json

    options = {"backbone": "hf-clip", "backbone_options": json.dumps(tiny_clip)}
    first = make_baseline("cosine", **options).score(images, ["a cat", "a dog", "a city", "a tree", "art"])
    again = make_baseline("cosine", **options).score(images, ["a cat", "a dog", "a city", "a tree", "art"])
    assert set(first) == {"alignment"} and first["alignment"].shape == (5,)
    assert (first["alignment"].abs() <= 1 + 1e-6).all()
    torch.testing.assert_close(first["alignment"], again["alignment"])
    with pytest.raises(BenchmarkError, match="backbone options must be a JSON object"):
        make_baseline("cosine", backbone_options="model=x")


def test_cosine_with_the_offline_dual_encoder(images):
    scores = make_baseline("cosine").score(images[:2], ["a cat", "a dog"])
    assert scores["alignment"].shape == (2,) and torch.isfinite(scores["alignment"]).all()


def test_clip_agiqa_trains_prompt_context_with_frozen_towers(tmp_path, tiny_clip):
    from trainer.baselines.clip_agiqa import QUALITY_CLASSES, ClipAgiqa, ClipAgiqaConfig, quantile_bins, train_clip_agiqa

    bench = load_benchmark("agiqa3k", DEV)
    bench = bench.subset(range(0, len(bench), 12))
    config = ClipAgiqaConfig(backbone="hf-clip", backbone_options=tiny_clip, n_ctx=4, epochs=4, batch_size=16)
    logs: list[str] = []
    model, test = train_clip_agiqa(bench, config, log=logs.append)

    train_prompts = {bench.prompts[i] for i in range(len(bench)) if i not in set(test)}
    assert model.train_prompts == train_prompts and not train_prompts & {bench.prompts[i] for i in test}
    assert "supervised" in model.note and f"{len(bench) - len(test)} images" in model.note
    first, last = (float(x) for x in logs[0].split("loss ")[1].split(" over")[0].split(" -> "))
    assert last < first  # it learns
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert model.models["mos_quality"].prompts.ctx.shape[0] == 4

    edges = quantile_bins(bench.subset([i for i in range(len(bench)) if i not in set(test)]).mos("mos_quality"))
    assert len(edges) == len(QUALITY_CLASSES) - 1 and (np.diff(edges) > 0).all()

    test_images = [load_image(bench.items[i].path) for i in test[:3]]
    scores = model.score(test_images, [""] * 3)
    assert set(scores) == {"mos_quality", "mos_align", "quality", "alignment"}
    model.save(tmp_path / "ckpt")
    reloaded = ClipAgiqa.load(tmp_path / "ckpt")
    torch.testing.assert_close(reloaded.score(test_images, [""] * 3)["quality"], scores["quality"])
    assert reloaded.train_prompts == train_prompts


def test_learnable_context_changes_the_class_features(tiny_clip):
    from trainer.baselines.clip_agiqa import PromptLearner
    from trainer.baselines.cosine import load_dual_tower

    backbone = load_dual_tower("hf-clip", tiny_clip)
    learner = PromptLearner(backbone, ("bad", "good"), n_ctx=3)
    before = learner(backbone)
    before.sum().backward()
    assert learner.ctx.grad is not None and learner.ctx.grad.abs().sum() > 0
    with torch.no_grad():
        learner.ctx.add_(1.0)
    assert not torch.allclose(before, learner(backbone))


def test_clip_agiqa_is_reported_only_on_prompts_it_did_not_train_on(tmp_path, tiny_clip):
    """Evaluate refuses to score training prompts: CLIP-AGIQA appears only in the held-out table."""
    import json

    from trainer.baselines.clip_agiqa import main as train_main
    from trainer.evaluate import main as evaluate_main

    with open(DEV / "data.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[::8]
    csv_path = tmp_path / "bench.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "prompt", "quality", "alignment"])
        writer.writerows([(DEV / "images" / r["name"], r["prompt"], r["mos_quality"], r["mos_align"]) for r in rows])
    ckpt = tmp_path / "clip_agiqa"
    assert train_main(["--benchmark", "csv", "--root", str(csv_path), "--out", str(ckpt), "--backbone", "hf-clip",
                       "--backbone-options", json.dumps(tiny_clip), "--epochs", "2", "--n-ctx", "4"]) == 0
    out = tmp_path / "report"
    assert evaluate_main(["--baselines-only", "--baselines", "laplacian", "--clip-agiqa", str(ckpt), "--benchmark", "csv",
                          "--root", str(csv_path), "--out", str(out), "--bootstrap", "20"]) == 0
    report = json.loads((out / "report.json").read_text())
    train_prompts = set(json.loads((ckpt / "clip_agiqa.json").read_text())["train_prompts"])
    heldout = [r for r in rows if r["prompt"] not in train_prompts]
    assert set(report["subsets"]["all"]["results"]) == {"laplacian"}
    assert set(report["subsets"]["heldout"]["results"]) == {"laplacian", "clip_agiqa"}
    assert report["subsets"]["heldout"]["results"]["clip_agiqa"]["quality"]["n"] == len(heldout) > 0
    assert report["methods"]["clip_agiqa"]["supervised"]
    markdown = (out / "report.md").read_text()
    assert "CLIP-AGIQA is supervised" in markdown and "| clip_agiqa (supervised) |" in markdown


def test_a_blank_image_is_unscored_by_brisque_and_counted_not_dropped(tmp_path):
    """AGIQA-3K holds blank (safety-filtered) outputs; BRISQUE has no statistics for them."""
    import json

    pytest.importorskip("brisque")
    from trainer.evaluate import main as evaluate_main

    with open(DEV / "data.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[::80]
    cv2.imwrite(str(tmp_path / "blank.png"), np.zeros((128, 128, 3), np.uint8))
    assert np.isnan(make_baseline("brisque").brisque(load_image(tmp_path / "blank.png")))
    with open(tmp_path / "bench.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "quality"])
        writer.writerows([(DEV / "images" / r["name"], r["mos_quality"]) for r in rows] + [("blank.png", 0.0)])
    out = tmp_path / "report"
    assert evaluate_main(["--baselines-only", "--baselines", "brisque,laplacian", "--benchmark", "csv", "--root",
                          str(tmp_path / "bench.csv"), "--out", str(out), "--bootstrap", "10"]) == 0
    results = json.loads((out / "report.json").read_text())["subsets"]["all"]["results"]
    assert results["brisque"]["quality"]["n"] == len(rows) and results["brisque"]["quality"]["n_unscored"] == 1
    assert results["laplacian"]["quality"]["n"] == len(rows) + 1 and results["laplacian"]["quality"]["n_unscored"] == 0
    assert "brisque quality: 1 image(s) without a finite score" in (out / "report.md").read_text()
