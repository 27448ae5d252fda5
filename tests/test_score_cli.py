"""`python -m trainer.score` on real dev images: folders, prompts, CSV/JSONL, critic checkpoints, errors."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trainer.baselines.laplacian import laplacian_variance
from trainer.benchmarks import load_image
from trainer.score import main

DEV = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "agiqa3k-dev"
pytestmark = pytest.mark.skipif(not (DEV / "data.csv").is_file(), reason=f"benchmark data not found: {DEV}")


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with open(DEV / "data.csv", newline="") as handle:
        return list(csv.DictReader(handle))[::70]


@pytest.fixture
def folder(tmp_path, rows) -> Path:
    """Real dev images in a folder tree, with one non-image file that must be ignored."""
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    for i, row in enumerate(rows):
        shutil.copy(DEV / "images" / row["name"], tmp_path / "imgs" / ("sub" if i % 2 else "") / row["name"])
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    return tmp_path / "imgs"


def test_folder_to_csv_without_prompts(folder, rows, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main([str(folder), "--baseline", "laplacian", "-o", str(out), "--batch-size", "3"]) == 0
    with open(out, newline="") as handle:
        got = list(csv.DictReader(handle))
    assert len(got) == len(rows) and list(got[0]) == ["path", "quality"]  # no prompt, no alignment column
    for row in got:
        assert float(row["quality"]) == pytest.approx(laplacian_variance(load_image(row["path"])))
    assert f"scored {len(rows)} image(s): quality" in capsys.readouterr().err


def test_prompts_file_and_jsonl(folder, rows, tmp_path):
    prompts = tmp_path / "prompts.csv"
    with open(prompts, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "prompt"])
        writer.writerows([(r["name"], r["prompt"]) for r in rows])
    out = tmp_path / "scores.jsonl"
    assert main([str(folder), "--baseline", "laplacian", "--prompts", str(prompts), "-o", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    by_name = {Path(line["path"]).name: line for line in lines}
    assert set(by_name) == {r["name"] for r in rows}
    for row in rows:
        assert by_name[row["name"]]["prompt"] == row["prompt"]
        assert set(by_name[row["name"]]) == {"path", "prompt", "quality", "alignment"}


def test_critic_checkpoint_scores_match_the_critic(folder, tmp_path):
    import torch

    from trainer.config import BackboneConfig, CriticConfig
    from trainer.critic import Critic
    from trainer.tiny_models import build_tiny_clip

    torch.manual_seed(0)
    tiny = str(build_tiny_clip(tmp_path / "tiny-clip"))
    options = {"model": tiny, "vision_layers": [-1, -2], "text_layers": [-1, -2]}
    critic = Critic(CriticConfig(backbone=BackboneConfig(name="hf-clip", options=options)))
    critic.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "scores.csv"
    assert main([str(folder), "--checkpoint", str(tmp_path / "ckpt"), "--prompt", "a photo", "-o", str(out), "--batch-size", "2"]) == 0
    with open(out, newline="") as handle:
        got = list(csv.DictReader(handle))
    expected = critic.score([load_image(r["path"]) for r in got], ["a photo"] * len(got))
    for key in ("quality", "alignment"):
        np.testing.assert_allclose([float(r[key]) for r in got], expected[key].numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent.png", "--baseline", "laplacian"], "error: not found: /nonexistent.png"),
        (["{folder}", "--checkpoint", "/nonexistent/ckpt"], "error: checkpoint not found: /nonexistent/ckpt"),
        (["{folder}", "--checkpoint", "{folder}"], "error: cannot load critic checkpoint {folder}: not a critic checkpoint"),
        (["{folder}", "--baseline", "laplacian", "--prompts", "{prompts}"], "error: {prompts}: no prompt for"),
        (["{folder}/notes.txt", "--baseline", "laplacian"], "error: cannot read image"),
    ],
)
def test_user_errors_exit_2(folder, rows, tmp_path, capsys, args, message):
    prompts = tmp_path / "partial.csv"
    prompts.write_text(f"name,prompt\n{rows[0]['name']},{rows[0]['prompt']}\n")
    fill = {"folder": str(folder), "prompts": str(prompts)}
    assert main([a.format(**fill) for a in args]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(message.format(**fill))


def test_prompt_and_prompts_are_exclusive(folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(folder), "--baseline", "laplacian", "--prompt", "x", "--prompts", "y"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_module_entry_point(folder):
    ok = subprocess.run([sys.executable, "-m", "trainer.score", str(folder), "--baseline", "laplacian"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == "path,quality"
