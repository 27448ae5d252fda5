"""What an export writes: every file with its path in the repo (or under the output folder) and size.

The same plan drives the dry run (printed), `--to-disk` (written) and the Hub upload (committed), so
the three cannot disagree. Parquet shards are written by `datasets`; their names are exact (the shard
count is fixed here and passed on) and their sizes are estimates from the stored bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datasets.utils.py_utils import convert_file_size_to_int

from pairgen.export.card import PREVIEW_NAME, WEBDATASET
from pairgen.export.errors import ExportError
from pairgen.export.summary import DatasetSummary
from pairgen.report import render_contact_sheet, sample_for_preview
from pairgen.shards import MANIFEST_NAME, RESOLVED_CONFIG_NAME, encode_png, list_shards

CARD_NAME = "README.md"
JOB_REPORTS = ("stats.json", "stats.md")
PREVIEW_PAIRS = 12


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative, '/'-separated: the path in the repo and under the output folder
    size: int
    source: Path | bytes | None  # a file to copy, bytes to write, or None: a Parquet shard `datasets` writes

    @property
    def estimated(self) -> bool:
        return self.source is None


def parse_size(size: str | int) -> int:
    """'500MB' / '1GB' / bytes -> bytes, with the same units as `push_to_hub(max_shard_size=...)`."""
    try:
        value = convert_file_size_to_int(int(size) if isinstance(size, str) and size.isdigit() else size)
    except (ValueError, TypeError):
        value = None
    if not isinstance(value, int) or value <= 0:
        raise ExportError(f"max shard size: expected a positive size such as '500MB' or '2GB', got {size!r}")
    return value


def shard_counts(summary: DatasetSummary, max_shard_size: int) -> dict[str, int]:
    """Parquet shards per split, by the rule `push_to_hub` uses (estimated bytes // max size + 1), at most one per row."""
    splits = {name: summary.splits[name] for name in summary.nonempty_splits()}
    return {name: min(split.rows, split.nbytes // max_shard_size + 1) for name, split in splits.items()}


def parquet_path(split: str, index: int, count: int) -> str:
    """`push_to_hub`'s shard name, so `--to-disk` writes the layout the Hub gets."""
    return f"data/{split}-{index:05d}-of-{count:05d}.parquet"


def _extra_files(directory: Path, names: tuple[str, ...]) -> list[PlannedFile]:
    paths = [directory / name for name in names if (directory / name).is_file()]
    return [PlannedFile(path.name, path.stat().st_size, path) for path in paths]


def preview_file(directory: Path) -> PlannedFile:
    """The job's `preview.png`, or a contact sheet rendered now when the folder has none."""
    path = directory / PREVIEW_NAME
    if path.is_file():
        return PlannedFile(PREVIEW_NAME, path.stat().st_size, path)
    sheet = encode_png(render_contact_sheet(sample_for_preview(directory, PREVIEW_PAIRS, scan_limit=10 * PREVIEW_PAIRS)))
    return PlannedFile(PREVIEW_NAME, len(sheet), sheet)


def plan_files(directory: Path, format: str, summary: DatasetSummary, card: str, max_shard_size: int) -> list[PlannedFile]:
    """Every file of the export, the card first."""
    card_bytes = card.encode("utf-8")
    files = [PlannedFile(CARD_NAME, len(card_bytes), card_bytes)]
    if format == WEBDATASET:
        files += [PlannedFile(shard.name, shard.stat().st_size, shard) for shard in list_shards(directory)]
        return files + _extra_files(directory, (MANIFEST_NAME, RESOLVED_CONFIG_NAME, *JOB_REPORTS)) + [preview_file(directory)]
    for split, count in shard_counts(summary, max_shard_size).items():
        size = summary.splits[split].nbytes // count
        files += [PlannedFile(parquet_path(split, index, count), size, None) for index in range(count)]
    return files + [preview_file(directory)]


def human_size(size: int) -> str:
    value: float = size
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def describe_plan(files: list[PlannedFile], destination: str) -> str:
    """The dry-run listing: one line per file, then the total."""
    lines = [f"would write {len(files)} file(s) to {destination}:"]
    width = max(len(f.path) for f in files)
    for f in files:
        lines.append(f"  {f.path:<{width}}  {('~' if f.estimated else '') + human_size(f.size):>10}")
    lines.append(f"  total {'~' if any(f.estimated for f in files) else ''}{human_size(sum(f.size for f in files))}")
    return "\n".join(lines)
