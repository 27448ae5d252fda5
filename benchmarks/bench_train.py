"""Training throughput of the critic on a VLM backbone, with the loader feeding real pair shards.

Measures, for the pairwise stage (LoRA + fusion + QQT trained): step time and pairs/s with batches from
the webdataset loader, the same with one cached batch (no loading at all), and model FLOPs utilisation
(FLOPs of one training step counted by torch's FlopCounterMode / step time / peak). If the two step
times match, the loader keeps the accelerator busy.

    python benchmarks/bench_train.py                 # GPU: real-size LLaVA-1.5-style config, random weights, bf16
    python benchmarks/bench_train.py --tiny          # CPU smoke check: tiny Llava, small shards
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from pairgen.config_base import validate_config
from trainer.config import TrainConfig
from trainer.critic import Critic
from trainer.data import ErrorPolicy, PairBatcher, train_batches
from trainer.synthetic import write_synthetic_shards
from trainer.tiny_models import REAL_SIZE_LLAVA, build_tiny_llava
from trainer.train import RunContext, build_optimizer, train_step


def timed_steps(critic, batches, optimizer, scheduler, stage, config, context: RunContext, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        tic = time.perf_counter()
        train_step(critic, next(batches), optimizer, scheduler, stage, config, context)
        if context.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - tic)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny model on CPU: a smoke check, not a measurement")
    parser.add_argument("--shards", help="pair shard folder (default: synthetic shards written to a temp folder)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 8, tiny 4)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per mode (default 20, tiny 3)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default 6, tiny 0)")
    parser.add_argument("--peak-tflops", type=float, default=989.4, help="bf16 dense peak of the accelerator (H100 SXM: 989.4)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    batch_size = args.batch_size or (4 if args.tiny else 8)
    steps = args.steps or (3 if args.tiny else 20)
    workers = args.workers if args.workers is not None else (0 if args.tiny else 6)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    context = RunContext(work / "out", "cpu" if args.tiny else "auto")
    device = context.device
    model_dir = build_tiny_llava(work / "model") if args.tiny else build_tiny_llava(work / "model", **REAL_SIZE_LLAVA, save_weights=False)
    shards = args.shards or str(write_synthetic_shards(work / "shards", pairs=64 if args.tiny else 512, size=64 if args.tiny else 384))
    config = validate_config(TrainConfig, {
        "critic": {
            "backbone": {"name": "hf-vlm", "options": {"model": str(model_dir), "layers": [-1, 1] if args.tiny else [-1, -8, -16],
                                                      "random_init": True, "dtype": "float32" if args.tiny else "bfloat16",
                                                      **({} if args.tiny else {"attn_implementation": "sdpa"})},
                         "lora": {"r": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}},
            "head": {"hidden": 64 if args.tiny else 512, "heads": 4 if args.tiny else 8, "layers": 2 if args.tiny else 3},
        },
        "data": {"shards": shards, "batch_size": batch_size, "num_workers": workers, "heldout_percent": 1},
        "stages": [{"kind": "pairwise", "steps": 10_000, "lr": 1e-4, "train_backbone": True}],
        "optim": {"precision": "fp32" if args.tiny else "bf16", "warmup_steps": 0},
        "output": str(work / "out"),
    })
    critic = Critic(config.critic).to(device)
    stage = config.stages[0]
    optimizer, scheduler = build_optimizer(critic, stage, config)
    critic.train()
    loader = iter(train_batches(config.data, PairBatcher(critic.processor, batch_size, ErrorPolicy(False)), seed=0))
    timed_steps(critic, loader, optimizer, scheduler, stage, config, context, args.warmup)
    with_data = timed_steps(critic, loader, optimizer, scheduler, stage, config, context, steps)
    cached = next(loader).to(device)
    repeat = iter(lambda: cached, None)
    cached_times = timed_steps(critic, repeat, optimizer, scheduler, stage, config, context, steps)
    with FlopCounterMode(display=False) as counter:
        timed_steps(critic, repeat, optimizer, scheduler, stage, config, context, 1)
    flops = counter.get_total_flops()
    step_data, step_cached = statistics.median(with_data), statistics.median(cached_times)
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "model": "tiny llava" if args.tiny else "LLaVA-1.5-style real-size config (CLIP ViT-L/14-336 + 24x2048 Llama), random weights",
        "parameters_m": round(sum(p.numel() for p in critic.parameters()) / 1e6, 2),
        "batch_pairs": batch_size,
        "loader_workers": workers,
        "step_s_with_loader": round(step_data, 4),
        "step_s_cached_batch": round(step_cached, 4),
        "loader_overhead": round(step_data / step_cached - 1, 3),
        "pairs_per_s_with_loader": round(batch_size / step_data, 2),
        "pairs_per_s_cached": round(batch_size / step_cached, 2),
        "gflop_per_step": round(flops / 1e9, 2),
        "achieved_tflops": round(flops / step_cached / 1e12, 4),
        "mfu": round(flops / step_cached / (args.peak_tflops * 1e12), 4) if device.type == "cuda" else None,
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
