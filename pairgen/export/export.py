"""The export job: validate, summarize, render the card, plan, then write to disk or push to the Hub.

Every check that can fail on user input (destination, repo id, token, shard validation) runs before
anything is written or uploaded. `--to-disk` writes into a hidden sibling folder and renames it at
the end, so an interrupted export never leaves a half-written dataset that `load_dataset` would read.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, NamedSplit
from huggingface_hub import HfApi

from pairgen.export.card import PARQUET, WEBDATASET, CardOptions, render_card
from pairgen.export.errors import ExportError
from pairgen.export.hub import check_access, check_repo_id, commit_files, create_repo, has_token, push_parquet, resolve_token
from pairgen.export.plan import PlannedFile, parquet_path, parse_size, plan_files, shard_counts
from pairgen.export.rows import FEATURES, split_rows
from pairgen.export.summary import DatasetSummary, summarize
from pairgen.shards import MANIFEST_NAME, load_manifest
from pairgen.validate import validate_dataset

FORMATS = (PARQUET, WEBDATASET)
Log = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    shards: Path
    repo_id: str | None = None
    to_disk: Path | None = None
    format: str = PARQUET
    private: bool = False
    validation_fraction: float = 0.05
    max_shard_size: str | int = "500MB"
    license: str = "other"
    dry_run: bool = False
    tmp_dir: Path | None = None  # where `datasets` builds its Arrow files (about the dataset's size)


@dataclass(frozen=True)
class ExportPlan:
    summary: DatasetSummary
    card: str
    files: list[PlannedFile]
    num_shards: dict[str, int]  # Parquet shards per split (empty for webdataset)


def check_options(options: ExportOptions) -> None:
    """Refuse bad arguments before reading a single shard."""
    if (options.repo_id is None) == (options.to_disk is None):
        raise ExportError("give exactly one destination: --repo-id USER/NAME or --to-disk OUT")
    if options.format not in FORMATS:
        raise ExportError(f"--format: expected one of {list(FORMATS)}, got {options.format!r}")
    if not 0 <= options.validation_fraction < 1:
        raise ExportError(f"--validation-fraction: expected 0 <= fraction < 1, got {options.validation_fraction}")
    parse_size(options.max_shard_size)
    if options.repo_id is not None:
        check_repo_id(options.repo_id)
    if options.to_disk is not None and options.to_disk.exists() and (not options.to_disk.is_dir() or any(options.to_disk.iterdir())):
        raise ExportError(f"--to-disk {options.to_disk}: exists and is not empty; choose a new folder (old shards there would be loaded too)")


def load_validated(directory: Path) -> dict[str, Any] | None:
    """Validate the shard folder (every shard, record and image) and return its manifest, if any."""
    report = validate_dataset(directory)
    if not report.ok:
        raise ExportError(
            f"{directory}: refusing to export, validation found {len(report.problems)} problem(s), first: "
            f"{report.problems[0]} (run `python -m pairgen.validate {directory}` for all)"
        )
    return load_manifest(directory) if (directory / MANIFEST_NAME).is_file() else None


def plan_export(options: ExportOptions) -> ExportPlan:
    """Everything an export will write, computed from the validated shards without writing anything."""
    manifest = load_validated(options.shards)
    # The tars are uploaded as they are, so a webdataset export has the one split they form.
    fraction = options.validation_fraction if options.format == PARQUET else 0.0
    summary = summarize(options.shards, fraction)
    if not summary.rows:
        raise ExportError(f"{options.shards}: the shards hold no pairs; nothing to export")
    card_options = CardOptions(
        name=options.repo_id or options.to_disk.name,
        format=options.format,
        license=options.license,
        validation_fraction=fraction,
    )
    card = render_card(summary, manifest, card_options)
    max_shard_size = parse_size(options.max_shard_size)
    num_shards = shard_counts(summary, max_shard_size) if options.format == PARQUET else {}
    return ExportPlan(summary, card, plan_files(options.shards, options.format, summary, card, max_shard_size), num_shards)


def build_dataset(directory: Path, splits: list[str], validation_fraction: float, cache_dir: Path) -> DatasetDict:
    """One `Dataset` per split, streamed from the shards into Arrow files under `cache_dir`."""
    return DatasetDict(
        {
            split: Dataset.from_generator(
                split_rows,
                features=FEATURES,
                gen_kwargs={"directory": str(directory), "split": split, "validation_fraction": validation_fraction},
                cache_dir=str(cache_dir),
                split=NamedSplit(split),
            )
            for split in splits
        }
    )


def write_parquet(dataset: DatasetDict, out: Path, num_shards: dict[str, int]) -> None:
    """The Parquet shards, named and cut as `push_to_hub` names and cuts them."""
    for split, count in num_shards.items():
        for index in range(count):
            path = out / parquet_path(split, index, count)
            path.parent.mkdir(parents=True, exist_ok=True)
            dataset[split].shard(num_shards=count, index=index, contiguous=True).to_parquet(str(path))


def write_files(files: list[PlannedFile], out: Path) -> None:
    """The planned files that are copied (shards, preview) or written (card)."""
    for file in files:
        target = out / file.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(file.source, Path):
            shutil.copyfile(file.source, target)
        elif file.source is not None:
            target.write_bytes(file.source)


def export_to_disk(options: ExportOptions, plan: ExportPlan, log: Log) -> None:
    out = options.to_disk
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        if plan.num_shards:
            with tempfile.TemporaryDirectory(dir=options.tmp_dir) as cache:
                log(f"building splits {list(plan.num_shards)} from {options.shards}")
                dataset = build_dataset(options.shards, list(plan.num_shards), options.validation_fraction, Path(cache))
                write_parquet(dataset, partial, plan.num_shards)
        write_files(plan.files, partial)
        if out.exists():
            out.rmdir()  # checked empty in check_options
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def export_to_hub(options: ExportOptions, plan: ExportPlan, api: HfApi, token: str, log: Log) -> None:
    """Create the repo, push the Parquet splits (or nothing, for webdataset), then commit the planned files."""
    create_repo(api, options.repo_id, options.private)
    if plan.num_shards:
        with tempfile.TemporaryDirectory(dir=options.tmp_dir) as cache:
            log(f"building splits {list(plan.num_shards)} from {options.shards}")
            dataset = build_dataset(options.shards, list(plan.num_shards), options.validation_fraction, Path(cache))
            push_parquet(dataset, options.repo_id, token, options.private, plan.num_shards)
    # After push_to_hub, which writes its own README: the card replaces it in the same commit as the rest.
    commit_files(api, options.repo_id, plan.files, f"Upload pair dataset ({options.format}) and card (pairgen export)")


def run_export(options: ExportOptions, log: Log = lambda _: None) -> ExportPlan:
    """Check, plan and (unless a dry run) write or push; returns the plan that was carried out."""
    check_options(options)
    pushing = options.repo_id is not None and not options.dry_run
    if pushing:
        token = resolve_token()
        api = HfApi(token=token)
        check_access(api)
    elif options.repo_id is not None:
        log("token: " + ("found (HF_TOKEN or stored login)" if has_token() else "none; a real push needs HF_TOKEN or `hf auth login`"))
    log(f"validating {options.shards}")
    plan = plan_export(options)
    if pushing:
        export_to_hub(options, plan, api, token, log)
    elif not options.dry_run:
        export_to_disk(options, plan, log)
    return plan
