"""Export a pair dataset to the Hugging Face Hub or to a local folder.

    python pipelines/export_hub.py --shards DIR --repo-id USER/NAME [--private]
    python pipelines/export_hub.py --shards DIR --to-disk OUT
    python pipelines/export_hub.py --shards DIR --repo-id USER/NAME --format webdataset
    python pipelines/export_hub.py --shards DIR --repo-id USER/NAME --dry-run

The token comes from HF_TOKEN or `hf auth login`. Exit codes: 0 done, 1 the Hub failed, 2 bad input.
All the work is in `pairgen.export`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pairgen.export import PARQUET, WEBDATASET, ExportError, ExportOptions, HubError, describe_plan, run_export


def parse_args(argv: list[str] | None) -> ExportOptions:
    parser = argparse.ArgumentParser(prog="export_hub.py", description=__doc__.split("\n")[0])
    parser.add_argument("--shards", type=Path, required=True, help="validated shard folder (pairs-NNNNNN.tar, manifest.json)")
    destination = parser.add_mutually_exclusive_group(required=True)
    destination.add_argument("--repo-id", help="Hub dataset repo USER/NAME")
    destination.add_argument("--to-disk", type=Path, metavar="OUT", help="write the Hub layout to a new local folder instead")
    parser.add_argument("--format", choices=[PARQUET, WEBDATASET], default=PARQUET, help="Parquet splits (default) or the original tars")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--validation-fraction", type=float, default=0.05, help="share of prompts in the validation split (default 0.05)")
    parser.add_argument("--max-shard-size", default="500MB", help="largest Parquet shard, e.g. 500MB, 2GB (default 500MB)")
    parser.add_argument("--license", default="other", help="licence id for the card (default: other)")
    parser.add_argument("--dry-run", action="store_true", help="list the files, sizes and card without writing or uploading")
    parser.add_argument("--tmp-dir", type=Path, help="where the Arrow build files go (about the dataset's size; default: system temp)")
    args = parser.parse_args(argv)
    return ExportOptions(
        shards=args.shards,
        repo_id=args.repo_id,
        to_disk=args.to_disk,
        format=args.format,
        private=args.private,
        validation_fraction=args.validation_fraction,
        max_shard_size=args.max_shard_size,
        license=args.license,
        dry_run=args.dry_run,
        tmp_dir=args.tmp_dir,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        plan = run_export(options, log=print)
    except HubError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    destination = f"hf://datasets/{options.repo_id}" if options.repo_id else str(options.to_disk)
    if options.dry_run:
        print(describe_plan(plan.files, destination))
        print("\n--- README.md ---\n" + plan.card)
    else:
        splits = ", ".join(f"{name}={plan.summary.splits[name].rows}" for name in plan.summary.nonempty_splits())
        print(f"exported {plan.summary.rows} pair(s) ({splits}) as {options.format} to {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
