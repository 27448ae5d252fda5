"""Ray overhead and memory of the pair-building job, with the tiny offline generator on this machine.

1. Overhead: the same plan built (a) by the Ray Data job and (b) by the same stages run one after
   the other in one process (`--executor local`). Reports end-to-end pairs/s of (a) against the sum
   of the stage times of (b). Target: Ray overhead <= 15%.
2. Memory: peak RSS of the whole job (driver, Ray daemons and workers: the process tree) at 1,000
   and 10,000 prompts. Target: flat within 20% (the job streams shards; it never collects pairs).

    .venv/bin/python benchmarks/bench_pipeline.py [--prompts 1000 10000]

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
    parser.add_argument("--fixtures", type=Path, default=REPO / ".cache" / "fixtures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    rows = []
    for count in args.prompts:
        prompts = work / f"prompts-{count}.txt"
        write_prompts(prompts, count)
        _, _, local = run_job(job_config(args.fixtures, prompts, work / f"local-{count}"), work, "local")
        wall, peak, ray = run_job(job_config(args.fixtures, prompts, work / f"ray-{count}"), work, "ray")
        same = all((work / f"local-{count}" / p.name).read_bytes() == p.read_bytes() for p in (work / f"ray-{count}").glob("*.tar"))
        rows.append((count, local, ray, wall, peak, same))

    print("\n### Ray overhead and memory (tiny-sd at 32 px, 1 step; 1 corruption + 1 alignment pair per prompt)\n")
    print("| prompts | pairs | stages alone, one process: busy s | pairs/s | Ray job: plan / execute / finish s | end-to-end pairs/s | overhead | execute-only overhead | peak RSS MiB | same bytes |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :-: |")
    for count, local, ray, wall, peak, same in rows:
        busy = sum(stage["busy_seconds"] for stage in local["stages"].values())
        phases = ray["phases_seconds"]
        local_rate, ray_rate = local["pairs_built"] / busy, ray["pairs_built"] / ray["wall_seconds"]
        execute_rate = ray["pairs_built"] / phases["execute"]
        print(f"| {count} | {ray['pairs_built']} | {busy:.1f} | {local_rate:.0f} | {phases['plan']:.1f} / {phases['execute']:.1f} / "
              f"{phases['finish']:.1f} | {ray_rate:.0f} | {100 * (local_rate / ray_rate - 1):+.0f}% | {100 * (local_rate / execute_rate - 1):+.0f}% | {peak:.0f} | {same} |")
    if len(rows) >= 2:
        print(f"\nPeak RSS {rows[-1][0]} vs {rows[0][0]} prompts: {rows[-1][4] / rows[0][4]:.2f}x (target <= 1.20x)")
    print("Overhead targets: <= 15% (end-to-end pairs/s of the Ray job vs the summed stage times alone)")
    print(f"\n(work folder: {work})")


if __name__ == "__main__":
    main()
