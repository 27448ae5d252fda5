"""End-to-end training on synthetic shards: learning, checkpoints, resume, config mismatch, Ray Train."""

from __future__ import annotations

import csv

import pytest
import torch

from pairgen.config_base import validate_config
from trainer.config import TrainConfig
from trainer.critic import Critic
from trainer.synthetic import write_synthetic_shards
from trainer.train import STATE_NAME, ResumeError, latest_checkpoint, main, train


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_synthetic_shards(tmp_path_factory.mktemp("shards"), pairs=240, per_shard=80, size=64, alignment_fraction=0.3)


def make_config(shards, output, steps=40, **extra) -> TrainConfig:
    data = {
        "critic": {"backbone": {"name": "dual-encoder", "options": {"image_size": 64}}, "head": {"hidden": 64, "heads": 4, "layers": 2}},
        "data": {"shards": str(shards), "batch_size": 12, "heldout_percent": 20},
        "stages": [{"kind": "pairwise", "steps": steps, "lr": 2e-3}],
        "optim": {"warmup_steps": 3},
        "output": str(output),
        "eval_every": 10,
        "checkpoint_every": 10,
        "progress": False,
        **extra,
    }
    return validate_config(TrainConfig, data)


def rows(output):
    with open(output / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trained(shards, tmp_path_factory):
    output = tmp_path_factory.mktemp("run")
    train(make_config(shards, output, steps=40))
    return output


def test_short_run_lowers_loss_and_beats_chance_on_heldout_pairs(trained):
    history = rows(trained)
    assert [int(r["step"]) for r in history] == list(range(1, 41))
    losses = [float(r["loss"]) for r in history]
    assert sum(losses[-10:]) / 10 < 0.6 * sum(losses[:5]) / 5
    evals = [float(r["heldout_accuracy"]) for r in history if r["heldout_accuracy"]]
    # held-out pairs are whole unseen photos/prompts (split by group), so 0.7 is well above chance (0.5)
    assert len(evals) == 4 and max(evals) >= 0.7 and evals[-1] >= 0.65
    assert int(history[-1]["heldout_pairs"]) > 20
    for name in ("final", "best"):
        assert (trained / name / "critic.json").is_file()
    assert (trained / "training.png").stat().st_size > 1000


def test_resume_continues_steps_and_optimizer_state(trained, shards, tmp_path):
    import shutil

    output = tmp_path / "resumed"
    shutil.copytree(trained, output)
    config = make_config(shards, output, steps=50)
    with pytest.raises(ResumeError, match="pass --resume"):
        train(config)
    before = torch.load(latest_checkpoint(output) / STATE_NAME, weights_only=True)
    assert before["step"] == 40
    train(config, resume=True)
    after = torch.load(latest_checkpoint(output) / STATE_NAME, weights_only=True)
    assert after["step"] == 50
    adam_steps = {float(s["step"]) for s in after["optimizer"]["state"].values()}
    assert adam_steps == {50.0}, "AdamW moments must carry over: 40 restored + 10 new steps"
    assert [int(r["step"]) for r in rows(output)] == list(range(1, 51))
    assert Critic.from_pretrained(output / "final").config == config.critic


def test_resume_with_a_different_critic_is_refused(trained, shards, tmp_path, capsys):
    import shutil

    import yaml

    output = tmp_path / "mismatch"
    shutil.copytree(trained, output)
    config = make_config(shards, output, steps=50)
    data = config.model_dump(mode="json")
    data["critic"]["head"]["hidden"] = 32
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["--config", str(path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "critic.head.hidden: checkpoint has 64, config has 32" in err


def test_config_errors_are_readable(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {shards: x, batch_sise: 4}\nstages: []\noutput: o\n")
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "data: unknown key 'batch_sise' (did you mean 'batch_size'?)" in err


@pytest.mark.slow
def test_ray_train_torchtrainer_runs_and_resumes(shards, tmp_path):
    import ray

    output = tmp_path / "ray"
    config = make_config(shards, output, steps=6, ray={"enabled": True, "num_workers": 2, "cpus_per_worker": 1}, eval_every=3, checkpoint_every=3)
    try:
        ray.init(num_cpus=2, include_dashboard=False)
        train(config)
        assert int(rows(output)[-1]["step"]) == 6
        train(make_config(shards, output, steps=9, ray={"enabled": True, "num_workers": 2, "cpus_per_worker": 1}, eval_every=3, checkpoint_every=3), resume=True)
    finally:
        ray.shutdown()
    assert [int(r["step"]) for r in rows(output)] == list(range(1, 10))
    assert torch.load(latest_checkpoint(output) / STATE_NAME, weights_only=True)["step"] == 9
