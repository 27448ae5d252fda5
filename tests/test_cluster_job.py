"""The job submitted to a real Ray cluster: `ray start --head` on localhost, `ray job submit`, wait,
validate the output, `ray stop`. Slow (a cluster start and a job runtime env): not in the default suite.

    .venv/bin/python -m pytest tests/test_cluster_job.py -m slow
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from pairgen.validate import validate_dataset
from test_build_pairs import small_config

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")


def test_ray_job_submit_to_a_local_cluster(tiny_pipelines, tmp_path):
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",  # Ray 2.60 local clusters require token auth on both sides
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ADDRESS": "http://127.0.0.1:8265",
        # the job's `python` is this interpreter: the cluster inherits PATH from `ray start`
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    subprocess.run([RAY, "get-auth-token", "--generate"], env=env, capture_output=True, check=False)
    out = tmp_path / "pairs"
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(small_config(tiny_pipelines, out)))
    start_env = {k: v for k, v in env.items() if k != "RAY_ADDRESS"}
    started = subprocess.run(
        [RAY, "start", "--head", "--num-cpus=3", "--dashboard-host=127.0.0.1", "--disable-usage-stats"],
        env=start_env, capture_output=True, text=True, timeout=180,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        submitted = subprocess.run(
            [RAY, "job", "submit", "--working-dir", str(REPO_ROOT), "--",
             "python", "pipelines/build_pairs.py", "--config", str(config)],
            env=env, capture_output=True, text=True, timeout=900,
        )
        assert submitted.returncode == 0, (submitted.stdout + submitted.stderr)[-4000:]
        assert "succeeded" in submitted.stdout
    finally:
        subprocess.run([RAY, "stop", "--force"], env=start_env, capture_output=True, timeout=120)
    report = validate_dataset(out)
    assert report.ok and report.samples > 0, report.problems
    assert (out / "stats.json").is_file() and (out / "preview.png").is_file()
