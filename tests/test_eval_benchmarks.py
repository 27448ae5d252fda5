"""Dataset adapters on real AGIQA-3K dev images, re-laid-out as each benchmark's own format."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from trainer.benchmarks import BenchmarkError, load_benchmark, load_image, prompt_disjoint_split

DEV = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "agiqa3k-dev"


@pytest.fixture(scope="module")
def dev_rows() -> list[dict[str, str]]:
    if not (DEV / "data.csv").is_file():
        pytest.skip(f"benchmark data not found: {DEV}")
    with open(DEV / "data.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def copy_images(rows: list[dict[str, str]], folder: Path, count: int) -> list[dict[str, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    for row in rows[:count]:
        shutil.copy(DEV / "images" / row["name"], folder / row["name"])
    return rows[:count]


def test_agiqa3k_dev_split(dev_rows):
    bench = load_benchmark("agiqa3k", DEV)
    assert len(bench) == 495 == len(dev_rows)
    assert [(d.name, d.target) for d in bench.dimensions] == [("mos_quality", "quality"), ("mos_align", "alignment")]
    assert len(set(bench.groups)) == 10 and "sd1.5_lowstep" in bench.groups
    assert bench.mos("mos_quality")[0] == pytest.approx(float(dev_rows[0]["mos_quality"]))
    assert bench.items[0].prompt == dev_rows[0]["prompt"]
    image = load_image(bench.items[0].path)
    assert image.dtype == np.uint8 and image.shape == (512, 512, 3)


def test_agiqa3k_missing_images_are_named(dev_rows, tmp_path):
    kept = copy_images(dev_rows, tmp_path / "images", 6)
    write_csv(tmp_path / "data.csv", kept)
    (tmp_path / "images" / kept[2]["name"]).unlink()
    with pytest.raises(BenchmarkError, match=rf"1 of 6 image\(s\) missing: .*{kept[2]['name']}"):
        load_benchmark("agiqa3k", tmp_path)


def test_agiqa3k_missing_columns_are_named(dev_rows, tmp_path):
    kept = copy_images(dev_rows, tmp_path / "images", 3)
    write_csv(tmp_path / "data.csv", [{k: v for k, v in row.items() if k != "mos_align"} for row in kept])
    with pytest.raises(BenchmarkError, match=r"missing column\(s\) \['mos_align'\]"):
        load_benchmark("agiqa3k", tmp_path)


def test_bad_score_names_file_line_and_column(dev_rows, tmp_path):
    kept = copy_images(dev_rows, tmp_path / "images", 3)
    write_csv(tmp_path / "data.csv", [kept[0], {**kept[1], "mos_quality": "high"}])
    with pytest.raises(BenchmarkError, match=r"data.csv:3: column 'mos_quality': not a number: 'high'"):
        load_benchmark("agiqa3k", tmp_path)


def test_koniq10k_layout(dev_rows, tmp_path):
    kept = copy_images(dev_rows, tmp_path / "1024x768", 5)
    rows = [{"image_name": r["name"], "c1": 0, "MOS": r["mos_quality"], "SD": r["std_quality"]} for r in kept]
    write_csv(tmp_path / "koniq10k_scores_and_distributions.csv", rows)
    bench = load_benchmark("koniq10k", tmp_path)
    assert [(d.name, d.target) for d in bench.dimensions] == [("mos", "quality")]
    assert bench.prompts == [""] * 5 and set(bench.groups) == {"all"}
    np.testing.assert_allclose(bench.mos("mos"), [float(r["mos_quality"]) for r in kept])


def test_aigciqa2023_layout(dev_rows, tmp_path):
    images = tmp_path / "Image" / "allimg"
    images.mkdir(parents=True)
    for i, row in enumerate(dev_rows[:4]):
        cv2.imwrite(str(images / f"{i}.png"), cv2.imread(str(DEV / "images" / row["name"])))
    (tmp_path / "DATA" / "MOS").mkdir(parents=True)
    mos = {1: [50.0, 60.0, 40.0, 70.0], 2: [45.0, 55.0, 35.0, 65.0], 3: [30.0, 20.0, 10.0, 80.0]}
    for index, values in mos.items():
        savemat(tmp_path / "DATA" / "MOS" / f"mosz{index}.mat", {f"mosz{index}": np.array(values)[:, None]})

    without = load_benchmark("aigciqa2023", tmp_path)
    assert [d.name for d in without.dimensions] == ["quality", "authenticity"]
    assert "correspondence skipped" in without.notes[0]

    write_csv(tmp_path / "prompts.csv", [{"name": f"{i}.png", "prompt": r["prompt"], "generator": "x"} for i, r in enumerate(dev_rows[:4])])
    bench = load_benchmark("aigciqa2023", tmp_path, prompts="prompts.csv")
    assert [(d.name, d.target) for d in bench.dimensions] == [
        ("quality", "quality"), ("authenticity", "quality"), ("correspondence", "alignment")]
    np.testing.assert_allclose(bench.mos("correspondence"), mos[3])
    assert bench.items[3].prompt == dev_rows[3]["prompt"]
    assert (load_image(bench.items[1].path) == load_image(DEV / "images" / dev_rows[1]["name"])).all()  # PNG is lossless

    write_csv(tmp_path / "short.csv", [{"name": "0.png", "prompt": "a"}])
    with pytest.raises(BenchmarkError, match=r"no prompt for 3 image\(s\): \['1.png', '2.png', '3.png'\]"):
        load_benchmark("aigciqa2023", tmp_path, prompts="short.csv")
    (tmp_path / "DATA" / "MOS" / "mosz2.mat").unlink()
    with pytest.raises(BenchmarkError, match="file not found: .*mosz2.mat"):
        load_benchmark("aigciqa2023", tmp_path)


def test_generic_csv(dev_rows, tmp_path):
    kept = copy_images(dev_rows, tmp_path / "imgs", 4)
    rows = [{"file": f"imgs/{r['name']}", "text": r["prompt"], "q": r["mos_quality"], "model": r["name"][:5]} for r in kept]
    csv_path = write_csv(tmp_path / "scores.csv", rows)
    bench = load_benchmark("csv", csv_path, path_column="file", prompt_column="text", quality_column="q", group_column="model")
    assert [(d.name, d.target) for d in bench.dimensions] == [("q", "quality")]
    assert bench.items[0].path == tmp_path / "imgs" / kept[0]["name"] and bench.items[0].prompt == kept[0]["prompt"]
    with pytest.raises(BenchmarkError, match=r"no score column; expected 'quality' and/or 'alignment'"):
        load_benchmark("csv", csv_path, path_column="file")
    with pytest.raises(BenchmarkError, match=r"missing column\(s\) \['prompt'\]"):
        load_benchmark("csv", csv_path, path_column="file", alignment_column="q")
    with pytest.raises(BenchmarkError, match=r"unknown option\(s\) \['colour'\]; valid options: \['csv_name'"):
        load_benchmark("csv", csv_path, colour="red")


def test_unknown_benchmark_and_root():
    with pytest.raises(BenchmarkError, match="unknown benchmark 'agiqa'; choose from"):
        load_benchmark("agiqa", DEV)
    with pytest.raises(BenchmarkError, match="benchmark root not found: /nonexistent"):
        load_benchmark("agiqa3k", "/nonexistent")


def test_prompt_split_is_disjoint_and_stable(dev_rows):
    prompts = [r["prompt"] for r in dev_rows]
    train, test = prompt_disjoint_split(prompts, test_fraction=0.3)
    assert sorted(train + test) == list(range(len(prompts)))
    assert not {prompts[i] for i in train} & {prompts[i] for i in test}
    assert 0.15 < len({prompts[i] for i in test}) / len(set(prompts)) < 0.45
    assert (train, test) == prompt_disjoint_split(list(prompts), test_fraction=0.3)
    assert prompt_disjoint_split(prompts, test_fraction=0.3, salt="other") != (train, test)
