"""Ray overhead and memory of the pair-building job, with the tiny offline generator on this machine.

1. Overhead: the same plan built (a) by the Ray Data job and (b) by the same stages run one after
   the other in one process (`--executor local`). Reports end-to-end pairs/s of (a) against the sum
   of the stage times of (b). Target: Ray overhead <= 15%.
2. Memory: peak RSS of the whole job (driver, Ray daemons and workers: the process tree) at 1,000
   and 10,000 prompts. Target: flat within 20% (the job streams shards; it never collects pairs).

    .venv/bin/python benchmarks/bench_pipeline.py [--prompts 1000 10000] [--overhead-prompts 200]

Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "pipelines" / "build_pairs.py"


def write_prompts(path: Path, count: int) -> None:
    """`count` distinct, plausible prompts (the built-in set recombined with counts and places)."""
    sys.path.insert(0, str(REPO))
    from pairgen.prompts import builtin_prompts

    base = [p.text for p in builtin_prompts()]
    places = ["on a beach", "in a kitchen", "at night", "in the snow", "in a forest", "on a rooftop", "in a museum", "under a bridge"]
    lines, i = [], 0
    while len(lines) < count:
        lines.append(f"{base[i % len(base)]} {places[(i // len(base)) % len(places)]}, view {i // (len(base) * len(places))}")
        i += 1
    path.write_text("\n".join(lines) + "\n")


def job_config(fixtures: Path, prompts_file: Path, out: Path) -> dict:
    return {
        "name": "bench",
        "output": {"dir": str(out), "pairs_per_shard": 256, "preview_pairs": 0},
        "sources": {"prompts": [{"kind": "text", "path": str(prompts_file)}]},
        "generators": [{"id": "tiny-sd", "model": str(fixtures / "tiny-sd"), "device": "cpu", "dtype": "float32",
                        "steps": 1, "guidance": 1.0, "resolution": 32, "batch_size": 64, "num_gpus": 0}],
        "pairs": {"corruptions": 1, "generation": 0},
        "alignment": {"negatives_per_prompt": 1},
        "runtime": {"cpu_workers": 1},
    }


def run_job(config: dict, work: Path, executor: str) -> tuple[float, float, dict]:
    """Run the job as a subprocess; return (wall seconds, peak RSS of its process tree in MiB, stats)."""
    path = work / f"{executor}-{config['output']['dir'].rsplit('/', 1)[-1]}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    process = psutil.Popen([sys.executable, str(SCRIPT), "--config", str(path), "--executor", executor], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                # Ray daemons and workers are descendants of the driver in an embedded run
                procs = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    stop.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"job failed ({executor}, exit {code}); run {path} by hand to see why")
    stats = json.loads((Path(config["output"]["dir"]) / "stats.json").read_text())
    return time.perf_counter() - started, peak, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--overhead-prompts", type=int, default=1000)
    parser.add_argument("--fixtures", type=Path, default=REPO / ".cache" / "fixtures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    rows = []

    prompts = work / f"prompts-{args.overhead_prompts}.txt"
    write_prompts(prompts, args.overhead_prompts)
    _, _, local = run_job(job_config(args.fixtures, prompts, work / "local"), work, "local")
    _, _, ray = run_job(job_config(args.fixtures, prompts, work / "ray"), work, "ray")
    stage_sum = sum(stage["busy_seconds"] for stage in local["stages"].values())
    local_rate = local["pairs_built"] / stage_sum
    ray_rate = ray["pairs_per_second"]
    same = sorted((work / "local").glob("*.tar")) and all(
        (work / "local" / p.name).read_bytes() == p.read_bytes() for p in sorted((work / "ray").glob("*.tar"))
    )
    print(f"\n### Ray overhead ({args.overhead_prompts} prompts, {ray['pairs_built']} pairs, tiny-sd 32 px, 1 step)\n")
    print("| run | pairs/s |\n| --- | ---: |")
    print(f"| stages alone in one process (sum of stage busy times: {stage_sum:.1f} s) | {local_rate:.1f} |")
    print(f"| Ray Data job, end to end incl. Ray start ({ray['wall_seconds']:.1f} s) | {ray_rate:.1f} |")
    print(f"\nRay overhead: {100 * (local_rate / ray_rate - 1):+.1f}% (target <= 15%); shards byte-identical across executors: {bool(same)}\n")

    for count in args.prompts:
        prompts = work / f"prompts-{count}.txt"
        write_prompts(prompts, count)
        wall, peak, stats = run_job(job_config(args.fixtures, prompts, work / f"rss-{count}"), work, "ray")
        rows.append((count, stats["pairs_built"], wall, peak))
    print("### Peak RSS of the job (process tree)\n")
    print("| prompts | pairs | wall s | peak RSS MiB |\n| ---: | ---: | ---: | ---: |")
    for count, pairs, wall, peak in rows:
        print(f"| {count} | {pairs} | {wall:.1f} | {peak:.0f} |")
    if len(rows) >= 2:
        print(f"\nRSS ratio {rows[-1][0]} vs {rows[0][0]} prompts: {rows[-1][3] / rows[0][3]:.2f} (target <= 1.20)")
    print(f"\n(work folder: {work})")


if __name__ == "__main__":
    main()
