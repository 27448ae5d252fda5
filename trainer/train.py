"""`python -m trainer.train --config configs/train_demo.yaml [key=value ...] [--resume]`

One training loop serves both ways of running: in this process (CPU or one GPU), or on every worker of
Ray Train's `TorchTrainer` (several GPUs or nodes; checkpoints go through `ray.train.report`, resume
through `ray.train.get_checkpoint`). Stages run in order with one global step count: `instruct`
(LM loss on instruction conversations, LoRA) then `pairwise` (ranking losses on fusion + QQT).
Model selection reads held-out synthetic pairs only; no benchmark score is read anywhere here.
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from pairgen.config_base import ConfigError, dump_config
from trainer.config import StageConfig, TrainConfig, load_train_config
from trainer.critic import Critic, read_config
from pairgen.shards import ShardFormatError
from trainer.data import ConversationBatcher, DatasetError, ErrorPolicy, PairBatch, PairBatcher, heldout_batches, train_batches
from trainer.losses import ASPECT_INDEX, CROSSED, centre_text_pairs, pairwise_loss, text_pair_crossings
from trainer.references import draw_references
from trainer.tracking import MetricsLog, plot_metrics

STATE_NAME = "trainer_state.pt"
CHECKPOINTS = "checkpoints"


class ResumeError(ValueError):
    """A checkpoint that cannot continue this config; the message lists what differs."""


# ----------------------------------------------------------------------------- run context


class RunContext:
    """Where the loop runs: rank, device, checkpoint reporting and resume. Local by default."""

    def __init__(self, output: Path, device: str):
        self.output = output
        self.rank, self.world_size = 0, 1
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @contextmanager
    def resume_checkpoint(self) -> Iterator[Path | None]:
        yield latest_checkpoint(self.output)

    def report(self, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        """Nothing to do locally: the checkpoint folder is already in the output."""


class RayContext(RunContext):
    """`ray.train.get_checkpoint()` (a restart inside the run) wins over `resume_from`, the latest
    checkpoint of a previous run (Ray Train v2 dropped `resume_from_checkpoint`)."""

    def __init__(self, output: Path, device: str, resume_from: str | None = None):
        import ray.train
        import ray.train.torch

        super().__init__(output, device)
        self.resume_from = Path(resume_from) if resume_from else None
        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        self.device = ray.train.torch.get_device()

    @contextmanager
    def resume_checkpoint(self) -> Iterator[Path | None]:
        import ray.train

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            yield self.resume_from
        else:
            with checkpoint.as_directory() as directory:
                yield Path(directory)

    def report(self, metrics: dict[str, Any], checkpoint: Path | None) -> None:
        import ray.train

        ray_checkpoint = ray.train.Checkpoint.from_directory(str(checkpoint)) if checkpoint and self.is_main else None
        ray.train.report({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, checkpoint=ray_checkpoint)


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_dirs(output: Path) -> list[Path]:
    root = output / CHECKPOINTS
    found = [p for p in root.glob("step-*") if (p / STATE_NAME).is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output: Path) -> Path | None:
    found = checkpoint_dirs(output)
    return found[-1] if found else None


def check_resume(directory: Path, config: TrainConfig, state: dict[str, Any]) -> None:
    """The checkpoint must come from the same critic and the same stages up to its step."""
    saved = read_config(directory / "critic")
    problems = [f"critic.{path}: checkpoint has {old!r}, config has {new!r}" for path, old, new in diff(saved.model_dump(), config.critic.model_dump())]
    saved_stages = [StageConfig.model_validate(s) for s in state["stages"]]
    step = state["step"]
    if step > config.total_steps:
        problems.append(f"stages: checkpoint is at step {step}, but the config trains only {config.total_steps} steps")
    start = 0
    for index, stage in enumerate(saved_stages):
        if start >= step:
            break
        if index >= len(config.stages) or config.stages[index].kind != stage.kind or (start + stage.steps < step and config.stages[index].steps != stage.steps):
            problems.append(f"stages[{index}]: checkpoint trained {stage.kind} for {stage.steps} steps, config says {config.stages[index].model_dump() if index < len(config.stages) else 'nothing'}")
        start += stage.steps
    if problems:
        raise ResumeError(f"cannot resume from {directory}:\n  " + "\n  ".join(problems))


def diff(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(set(old) | set(new)) for d in diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)]
    return [] if old == new else [(path, old, new)]


# ----------------------------------------------------------------------------- optimisation


def build_optimizer(critic: Critic, stage: StageConfig, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over what the stage trains; linear warmup, then cosine decay to 10% over the stage."""
    critic.backbone.set_trainable(stage.train_backbone or stage.kind == "instruct")
    for parameter in critic.head.parameters():
        parameter.requires_grad = stage.kind == "pairwise"
    params = [p for p in critic.parameters() if p.requires_grad]
    if not params:
        raise ConfigError([f"stage {stage.kind}: nothing to train (does the backbone have LoRA adapters? set critic.backbone.lora)"])
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=config.optim.weight_decay)
    warmup = min(config.optim.warmup_steps, max(stage.steps - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, stage.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(critic: Critic, batches: Any, config: TrainConfig, context: RunContext) -> dict[str, Any]:
    """Pairwise accuracy (overall and per aspect) and ranking loss on held-out synthetic pairs."""
    was_training = critic.training
    critic.eval()
    # per aspect: correct, total; plus loss sum
    sums = torch.zeros(5, dtype=torch.float64, device=context.device)
    for batch in batches:
        out = score_pairs(critic, batch.to(context.device), config)
        correct = (out["diff"] > 0).double()
        for name, index in ASPECT_INDEX.items():
            chosen = batch.aspect.to(context.device) == index
            sums[2 * index] += correct[chosen].sum()
            sums[2 * index + 1] += chosen.sum()
        sums[4] += out["loss"].double() * len(batch)
    critic.train(was_training)
    if context.world_size > 1:
        dist.all_reduce(sums)
    total = sums[1] + sums[3]
    if total == 0:
        raise ValueError("no held-out pairs: raise data.heldout_percent, add pairs or narrow data.heldout_exclude (model selection needs held-out synthetic pairs)")
    metrics = {"heldout_accuracy": float((sums[0] + sums[2]) / total), "heldout_loss": float(sums[4] / total), "heldout_pairs": int(total)}
    for name, index in ASPECT_INDEX.items():
        if sums[2 * index + 1] > 0:
            metrics[f"heldout_accuracy_{name}"] = float(sums[2 * index] / sums[2 * index + 1])
    return metrics


def score_pairs(model: torch.nn.Module, batch: PairBatch, config: TrainConfig) -> dict[str, Tensor]:
    """The ranking loss of a batch and its per-pair score differences (`diff`), text-side pairs centred
    when `loss.text_pair_references` asks for it (a batch of one pair has nothing to centre on)."""
    centre = config.loss.text_pair_references and len(batch) > 1 and batch.text_side.any()
    crossings = text_pair_crossings(batch.text_side, config.loss.text_pair_references) if centre else None
    with torch.autocast(batch.aspect.device.type, dtype=torch.bfloat16, enabled=config.optim.precision == "bf16"):
        scores = model(**batch.inputs, crossings=crossings)
    crossed = scores.pop(CROSSED, None)
    n = len(batch)
    pos = {k: v[:n].float() for k, v in scores.items()}
    neg = {k: v[n:].float() for k, v in scores.items()}
    if crossed is not None:
        pos, neg = centre_text_pairs(pos, neg, {k: v.float() for k, v in crossed.items()}, batch.text_side)
    return pairwise_loss(pos, neg, batch.aspect, config.loss)


# ----------------------------------------------------------------------------- the loop


@dataclass
class Progress:
    step: int = 0
    best_accuracy: float = -1.0
    best_step: int = -1


def fit(config: TrainConfig, context: RunContext, resume: bool = False) -> Progress:
    """Train all stages from step 0 or from the latest checkpoint. Returns where it ended."""
    output = context.output
    seed_everything(config.seed + context.rank)
    critic = Critic(config.critic).to(context.device)
    needs_lm = any(stage.kind == "instruct" for stage in config.stages)
    if needs_lm and not hasattr(critic.backbone, "lm_loss"):
        raise ConfigError([f"stages: an 'instruct' stage needs a backbone with a language model (hf-vlm), got {config.critic.backbone.name!r}"])
    if config.loss.text_pair_references and not critic.backbone.separable:
        raise ConfigError([
            f"loss.text_pair_references: needs a backbone with separate image and text towers to recombine a batch's images "
            f"and prompts; {config.critic.backbone.name!r} computes visual tokens together with the text"
        ])
    progress, saved_state = Progress(), None
    with context.resume_checkpoint() as checkpoint:
        if checkpoint is not None and not resume:
            raise ResumeError(f"{output} already holds checkpoints ({checkpoint.name}); pass --resume to continue, or choose another output")
        if checkpoint is not None:
            saved_state = torch.load(checkpoint / STATE_NAME, map_location="cpu", weights_only=True)
            check_resume(checkpoint, config, saved_state)
            critic.load_weights(checkpoint / "critic")
            progress = Progress(saved_state["step"], saved_state["best_accuracy"], saved_state["best_step"])
    # only the main worker saves checkpoints, so only it needs references; a resumed run keeps its own
    if config.critic.reference_images and not critic.references and context.is_main:
        critic.set_references(draw_references(config.data.shards, config.critic.reference_images, config.seed))
    log = MetricsLog(output, progress.step) if context.is_main else None
    bar = tqdm(total=config.total_steps, initial=progress.step, disable=not (config.progress and context.is_main), desc="train", dynamic_ncols=True)
    heldout = heldout_batches(config.data, PairBatcher(critic.processor, config.data.batch_size, _errors(config)), context.world_size)
    try:
        while progress.step < config.total_steps:
            index, stage, start = config.stage_at(progress.step)
            optimizer, scheduler = build_optimizer(critic, stage, config)
            if saved_state is not None and saved_state["stage_index"] == index:
                _load_optimizer(optimizer, scheduler, saved_state)
            saved_state = None
            model = DistributedDataParallel(critic) if context.world_size > 1 else critic
            critic.train()
            batcher_cls = ConversationBatcher if stage.kind == "instruct" else PairBatcher
            batches = iter(train_batches(config.data, batcher_cls(critic.processor, config.data.batch_size, _errors(config)), seed=config.seed + progress.step))
            bar.set_description(f"{stage.kind} stage {index}")
            while progress.step < start + stage.steps:
                tic = time.perf_counter()
                metrics = train_step(model, next(batches), optimizer, scheduler, stage, config, context)
                progress.step += 1
                metrics.update(step=progress.step, stage=index, kind=stage.kind, pairs_per_s=config.data.batch_size * context.world_size / (time.perf_counter() - tic))
                last = progress.step == start + stage.steps
                if stage.kind == "pairwise" and (progress.step % config.eval_every == 0 or last):
                    metrics.update(evaluate(critic, heldout, config, context))
                    if metrics["heldout_accuracy"] > progress.best_accuracy and context.is_main:
                        progress.best_accuracy, progress.best_step = metrics["heldout_accuracy"], progress.step
                        critic.save_pretrained(output / "best")
                saved = None
                if progress.step % config.checkpoint_every == 0 or last:
                    saved = save_checkpoint(critic, optimizer, scheduler, index, progress, config, context)
                if log is not None:
                    log.log(metrics)
                context.report(metrics, saved)
                bar.update(1)
                bar.set_postfix({k: f"{metrics[k]:.3f}" for k in ("loss", "heldout_accuracy") if k in metrics})
    finally:
        bar.close()
        if log is not None:
            log.close()
    if context.is_main:
        critic.save_pretrained(output / "final")
        plot_metrics(output / "metrics.csv", output / "training.png")
    return progress


def _errors(config: TrainConfig) -> ErrorPolicy:
    return ErrorPolicy(skip=config.data.on_error == "skip")


def _load_optimizer(optimizer: torch.optim.Optimizer, scheduler: Any, state: dict[str, Any]) -> None:
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as exc:
        raise ResumeError(f"optimizer state does not match the trainable parameters of this config: {exc}") from None
    scheduler.load_state_dict(state["scheduler"])


def train_step(model: torch.nn.Module, batch: Any, optimizer: torch.optim.Optimizer, scheduler: Any, stage: StageConfig, config: TrainConfig, context: RunContext) -> dict[str, Any]:
    if stage.kind == "instruct":
        inputs = {k: v.to(context.device) for k, v in batch["inputs"].items()}
        with torch.autocast(context.device.type, dtype=torch.bfloat16, enabled=config.optim.precision == "bf16"):
            out = {"loss": model(**inputs)["lm_loss"]}
        skipped = batch["skipped"]
    else:
        out = score_pairs(model, batch.to(context.device), config)
        skipped = batch.skipped
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], config.optim.grad_clip)
    optimizer.step()
    lr = scheduler.get_last_lr()[0]
    scheduler.step()
    return {"lr": lr, "skipped": skipped, **{k: float(v.detach()) for k, v in out.items() if k != "diff"}}


def save_checkpoint(critic: Critic, optimizer: torch.optim.Optimizer, scheduler: Any, stage_index: int, progress: Progress, config: TrainConfig, context: RunContext) -> Path | None:
    """`checkpoints/step-N/`: critic (weights + adapters), optimizer/scheduler state, resolved config."""
    if not context.is_main:
        return None
    directory = context.output / CHECKPOINTS / f"step-{progress.step:08d}"
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    critic.save_pretrained(tmp / "critic")
    torch.save(
        {
            "step": progress.step,
            "stage_index": stage_index,
            "stages": [s.model_dump() for s in config.stages],
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "best_accuracy": progress.best_accuracy,
            "best_step": progress.best_step,
        },
        tmp / STATE_NAME,
    )
    (tmp / "train_config.yaml").write_text(dump_config(config), encoding="utf-8")
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)
    for old in checkpoint_dirs(context.output)[: -config.keep_checkpoints]:
        shutil.rmtree(old)
    return directory


# ----------------------------------------------------------------------------- entry points


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train worker: rebuild the config from plain data and run the same loop."""
    config = TrainConfig.model_validate(loop_config["config"])
    context = RayContext(Path(loop_config["output"]), config.device, loop_config["resume_from"])
    fit(config, context, resume=loop_config["resume"])


def run_ray(config: TrainConfig, output: Path, resume: bool) -> Any:
    import ray
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        if config.ray.address:
            ray.init(address=config.ray.address)
        else:
            ray.init(num_cpus=max(1, math.ceil(config.ray.num_workers * config.ray.cpus_per_worker)), include_dashboard=False)
    latest = latest_checkpoint(output)
    if latest is not None and not resume:
        raise ResumeError(f"{output} already holds checkpoints ({latest.name}); pass --resume to continue, or choose another output")
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config.model_dump(mode="json"), "output": str(output), "resume": resume,
                           "resume_from": str(latest) if latest is not None else None},
        scaling_config=ScalingConfig(num_workers=config.ray.num_workers, use_gpu=config.ray.use_gpu,
                                     resources_per_worker={"CPU": config.ray.cpus_per_worker}),
        run_config=RunConfig(name=f"train-{int(time.time())}", storage_path=str(output / "ray"), checkpoint_config=CheckpointConfig(num_to_keep=config.keep_checkpoints)),
    )
    return trainer.fit()


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train in this process or on Ray (per `config.ray.enabled`); returns the output folder."""
    output = Path(config.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    (output / "train_config.yaml").write_text(dump_config(config), encoding="utf-8")
    if config.ray.enabled:
        run_ray(config, output, resume)
    else:
        fit(config, RunContext(output, config.device), resume=resume)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="training YAML (configs/train_demo.yaml, configs/train_eliq.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in the output folder")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. data.shards=out/demo/shards stages[0].steps=50")
    args = parser.parse_args(argv)
    try:
        config = load_train_config(args.config, args.overrides)
        output = train(config, resume=args.resume)
    except (ConfigError, ResumeError, DatasetError, ShardFormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done: {output} (final/, best/, metrics.csv, training.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
