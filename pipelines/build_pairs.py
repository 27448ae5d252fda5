"""Build a pair dataset: the Ray Data job.

    python pipelines/build_pairs.py --config configs/demo.yaml [key.sub=value ...]
    ray job submit --working-dir . -- python pipelines/build_pairs.py --config configs/eliq.yaml

Plan (driver, no images) -> per generator, an actor pool generating whole shards' images
(`map_batches` with a callable class, GPUs per actor from the config) -> pair construction and the
atomic shard write (CPU actors, one writer per shard) -> manifest, stats and preview (driver).

Re-running the same config skips complete shards (marker present, sha256 matches) and rebuilds the
rest from the saved plan, so the result is byte-identical to an uninterrupted run. Adding a
generator, collection or prompts builds only new shards and records a new dataset version.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

# `ray job submit --working-dir .` runs this file from the repo root without installing the toolkit.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pairgen import __version__  # noqa: E402
from pairgen.build import ShardBuilder, ShardGenerator, ShardResult, pack_generated, run_in_process, unpack_generated  # noqa: E402
from pairgen.config import BuildConfig, load_build_config, resolved_config  # noqa: E402
from pairgen.config_base import ConfigError, dump_config  # noqa: E402
from pairgen.generators.config import GeneratorConfig  # noqa: E402
from pairgen.generators.loading import find_pipeline_folder  # noqa: E402
from pairgen.plan import PlanError, ShardPlan, plan_build, save_plan  # noqa: E402
from pairgen.prompts import PromptSourceError  # noqa: E402
from pairgen.report import dataset_counts, stage_rates, write_preview, write_stats  # noqa: E402
from pairgen.sources import CollectionError  # noqa: E402
from pairgen.shards import (  # noqa: E402
    RESOLVED_CONFIG_NAME,
    ShardStats,
    build_manifest,
    is_complete,
    load_manifest,
    marker_path,
    write_bytes_atomic,
    write_manifest,
)

log = logging.getLogger("build_pairs")


class BuildError(RuntimeError):
    """A job failure with a message for the user (no traceback needed)."""


# ---- Ray stages: thin adapters from Ray Data batches to the pairgen stages ---------------------


class GenerateStage:
    """One actor of a generator's pool: generates every image of the shards it receives."""

    def __init__(self, generator_config: dict[str, Any]):
        self.generate = ShardGenerator(GeneratorConfig.model_validate(generator_config))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        payloads, seconds = [], []
        for shard_json in batch["shard"]:
            started = time.perf_counter()
            payloads.append(pack_generated(self.generate(ShardPlan.from_dict(json.loads(shard_json)))))
            seconds.append(time.perf_counter() - started)
        return {**batch, "images": payloads, "generate_seconds": seconds}


class BuildStage:
    """One pair-construction actor: corruptions, records, PNG encoding, atomic shard write."""

    def __init__(self, config: dict[str, Any], directory: str):
        self.config = BuildConfig.model_validate(config)
        self.build = ShardBuilder(self.config, Path(directory))
        self.directory = Path(directory)
        self.shards_done = 0

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        results = []
        for shard_json, images, generate_seconds in zip(batch["shard"], batch["images"], batch["generate_seconds"]):
            self._maybe_die()
            started = time.perf_counter()
            shard = ShardPlan.from_dict(json.loads(shard_json))
            try:
                result = self.build(shard, unpack_generated(images))
            except Exception as exc:  # a bad input or write error: report it (the driver names every failed shard)
                results.append(json.dumps({"error": f"{shard.name}: {type(exc).__name__}: {exc}"}))
                continue
            result.seconds = {"generate": float(generate_seconds), "build": time.perf_counter() - started}
            results.append(json.dumps(result.to_dict()))
            self.shards_done += 1
        return {"result": results}

    def _maybe_die(self) -> None:
        """Fault injection for tests: exit this worker process once, after N shards."""
        after = self.config.runtime.kill_worker_after_shards
        if after is not None and self.shards_done >= after:
            flag = self.directory / ".fault-injected"
            try:
                flag.touch(exist_ok=False)
            except FileExistsError:
                return
            log.warning("fault injection: worker %d exits after %d shard(s)", os.getpid(), self.shards_done)
            os._exit(1)


def run_with_ray(config: BuildConfig, pending: list[ShardPlan], directory: Path, on_result) -> None:
    import ray

    address = config.runtime.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, ignore_reinit_error=True)
    else:
        # A local Ray gets enough logical CPUs for every actor pool to start, even on a 2-core machine.
        subsets = {s.subset for s in pending}
        needed = config.runtime.cpu_workers + sum(
            config.runtime.actors_per_generator * config.runtime.cpus_per_cpu_generator
            for g in config.generators
            if g.id in subsets and not g.num_gpus
        )
        ray.init(num_cpus=max(os.cpu_count() or 1, needed), include_dashboard=False, ignore_reinit_error=True)
    gpus_available = ray.cluster_resources().get("GPU", 0)
    retries = {"max_restarts": config.runtime.max_retries, "max_task_retries": config.runtime.max_retries}
    rows = [{"shard": json.dumps(s.to_dict()), "subset": s.subset} for s in pending]
    branches = []
    for generator in config.generators:
        mine = [r for r in rows if r["subset"] == generator.id]
        if not mine:
            continue
        if generator.num_gpus > gpus_available:
            raise BuildError(
                f"generator {generator.id!r} asks for {generator.num_gpus} GPU(s) per actor but the Ray cluster has "
                f"{gpus_available:g}; set generators[].num_gpus: 0 to generate on CPU"
            )
        branches.append(
            ray.data.from_items(mine, override_num_blocks=len(mine)).map_batches(
                GenerateStage,
                fn_constructor_args=(generator.model_dump(mode="json"),),
                batch_size=1,
                concurrency=config.runtime.actors_per_generator,
                num_gpus=generator.num_gpus,
                num_cpus=0 if generator.num_gpus else config.runtime.cpus_per_cpu_generator,
                **retries,
            )
        )
    generated_ids = {g.id for g in config.generators}
    collected = [{**r, "images": b"", "generate_seconds": 0.0} for r in rows if r["subset"] not in generated_ids]
    if collected:
        branches.append(ray.data.from_items(collected, override_num_blocks=len(collected)))
    dataset = branches[0].union(*branches[1:]) if len(branches) > 1 else branches[0]
    built = dataset.map_batches(
        BuildStage,
        fn_constructor_args=(config.model_dump(mode="json"), str(directory)),
        batch_size=1,
        concurrency=config.runtime.cpu_workers,
        num_cpus=1,
        **retries,
    )
    failures = []
    for row in built.iter_rows():
        outcome = json.loads(row["result"])
        if "error" in outcome:
            failures.append(outcome["error"])
        else:
            on_result(ShardResult.from_dict(outcome))
    if failures:
        raise BuildError(
            f"{len(failures)} shard(s) failed (complete shards are kept; fix the cause and re-run):\n  " + "\n  ".join(failures)
        )


# ---- the job --------------------------------------------------------------------------------


def prepare_output(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-probe.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BuildError(f"output folder {directory} is not writable: {exc.strerror or exc}") from None


def check_generators(config: BuildConfig, subsets: set[str]) -> None:
    """Fail before starting Ray when a generator's model cannot be found (names the generator).

    Its revision is not resolved here: that hashes a local folder's weights, which each generator
    actor does anyway when it loads the model.
    """
    for generator in config.generators:
        if generator.id in subsets:
            try:
                find_pipeline_folder(generator.model, generator.revision, generator.variant)
            except Exception as exc:  # loading raises several types; all mean "this generator cannot load"
                raise BuildError(f"generator {generator.id!r} ({generator.model}) failed to load: {exc}") from None


def build(config: BuildConfig, executor: str = "ray") -> dict[str, Any]:
    """Run the whole job; returns the stats written to `stats.json`."""
    started = time.perf_counter()
    directory = Path(config.output.dir)
    prepare_output(directory)
    plan = plan_build(config, directory)
    if plan.units == 0:
        raise BuildError("no positives to build: the prompt sources and image collections are empty")
    config_hash = config.config_hash()
    pending = [s for s in plan.shards if not is_complete(directory / s.name)]
    foreign = [s for s in pending if s.config_hash != config_hash]
    if foreign:
        raise BuildError(
            f"{len(foreign)} incomplete shard(s) ({', '.join(s.name for s in foreign[:3])}{', ...' if len(foreign) > 3 else ''}) "
            f"were planned by another config (hash {foreign[0].config_hash}; it is saved in {directory / 'plan.json'} "
            f"under configs). Finish them by re-running that config, then change it; or build into a new output.dir"
        )
    save_plan(directory, plan)
    write_bytes_atomic(directory / RESOLVED_CONFIG_NAME, dump_config(config).encode("utf-8"))
    if plan.stale_units:
        log.warning(
            "%d planned unit(s) would get different negatives under this config; they keep their saved plan "
            "(existing shards are never changed; use a new output.dir to build with the new settings)",
            plan.stale_units,
        )
    log.info("plan: %d shard(s), %d unit(s), %d planned pairs; %d already complete, %d to build (%d new in the plan)",
             len(plan.shards), plan.units, plan.planned_pairs, len(plan.shards) - len(pending), len(pending), len(plan.new_shards))
    check_generators(config, {s.subset for s in pending})

    seconds: Counter = Counter()
    drops: Counter = Counter()
    built_pairs = 0

    def on_result(result: ShardResult) -> None:
        nonlocal built_pairs
        seconds.update(result.seconds)
        drops.update(result.drops)
        built_pairs += result.stats.nsamples

    planned = time.perf_counter()
    if pending:
        if executor == "ray":
            run_with_ray(config, pending, directory, on_result)
        else:
            run_in_process(config, pending, directory, on_result)

    executed = time.perf_counter()
    all_stats = [ShardStats.from_file(marker_path(directory / s.name)) for s in plan.shards]
    previous = load_manifest(directory) if (directory / "manifest.json").is_file() else None
    manifest = build_manifest(
        name=config.name, shard_stats=all_stats, config=resolved_config(config), config_hash=config_hash, previous=previous
    )
    write_manifest(directory, manifest)
    wall = time.perf_counter() - started
    stats = {
        "name": config.name,
        "toolkit_version": __version__,
        "config_hash": config_hash,
        "dataset_version": manifest["versions"][-1]["version"],
        "executor": executor,
        "shards": {"total": len(plan.shards), "built": len(pending), "skipped": len(plan.shards) - len(pending)},
        "counts": dataset_counts(directory, {s.name: s.subset for s in plan.shards}),
        "prompts_duplicates_dropped": plan.prompts_dropped,
        "wall_seconds": round(wall, 3),
        # plan: config, sources, plan.json; execute: the stages (incl. Ray start-up); finish: manifest, stats
        "phases_seconds": {
            "plan": round(planned - started, 3),
            "execute": round(executed - planned, 3),
            "finish": round(time.perf_counter() - executed, 3),
        },
        "pairs_built": built_pairs,
        "pairs_per_second": round(built_pairs / wall, 3) if built_pairs else None,
        "stages": stage_rates(dict(seconds), built_pairs),
        "drops_this_run": dict(sorted(drops.items())),
    }
    write_stats(directory, stats)
    write_preview(directory, config.output.preview_pairs)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. output.dir=out/x generators[0].steps=4")
    parser.add_argument("--executor", choices=("ray", "local"), default="ray", help="local: both stages in this process, no Ray (debugging, baselines)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_build_config(args.config, args.overrides)
        stats = build(config, args.executor)
    except (ConfigError, BuildError, PlanError, PromptSourceError, CollectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = stats["counts"]
    print(
        f"built {stats['pairs_built']} pair(s) in {stats['shards']['built']} shard(s) ({stats['shards']['skipped']} already complete); "
        f"dataset {config.output.dir}: {counts['pairs']} pairs, version {stats['dataset_version']}; {stats['wall_seconds']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
