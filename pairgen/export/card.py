"""The dataset card (README.md): YAML metadata that `datasets` reads, and provenance for people.

The card is a pure function of the dataset summary, the manifest and the export options, so a dry
run shows exactly the card that the export writes. The YAML `configs:` point at the files the
export writes (Parquet shards under `data/`, or the original tars), which is how
`load_dataset(repo_or_folder)` finds the splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from pairgen.export.rows import FEATURES, JSON_FIELDS
from pairgen.export.summary import COUNTED_FIELDS, DatasetSummary

PARQUET, WEBDATASET = "parquet", "webdataset"
PREVIEW_NAME = "preview.png"
TAGS = ["image-quality-assessment", "synthetic", "preference-pairs", "pairgen"]


@dataclass(frozen=True)
class CardOptions:
    name: str  # the repo id or output folder name, shown as the title and in the usage snippet
    format: str = PARQUET
    license: str = "other"
    validation_fraction: float = 0.05


def data_files(format: str, splits: list[str]) -> list[dict[str, str]]:
    """The `configs:` data files of the layout each format writes."""
    if format == WEBDATASET:
        return [{"split": "train", "path": "*.tar"}]
    return [{"split": split, "path": f"data/{split}-*"} for split in splits]


def size_category(rows: int) -> str:
    """The Hub's `size_categories` bucket for a row count."""
    for limit, label in ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"), (10**7, "1M<n<10M")):
        if rows < limit:
            return label
    return "n>10M" if rows < 10**9 else "n>1T"


def card_metadata(summary: DatasetSummary, options: CardOptions) -> DatasetCardData:
    splits = summary.nonempty_splits()
    data = DatasetCardData(
        license=options.license,
        pretty_name=options.name,
        tags=TAGS,
        size_categories=size_category(summary.rows),
    )
    MetadataConfigs({"default": {"data_files": data_files(options.format, splits)}}).to_dataset_card_data(data)
    if options.format == PARQUET:
        split_dict = SplitDict()
        for name in splits:
            split = summary.splits[name]
            split_dict.add(SplitInfo(name=name, num_bytes=split.nbytes, num_examples=split.rows))
        DatasetInfosDict({"default": DatasetInfo(features=FEATURES, splits=split_dict)}).to_dataset_card_data(data)
    return data


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _sort_key(value: str) -> tuple[int, Any]:
    return (0, int(value)) if value.isdigit() else (1, value)


def counts_tables(summary: DatasetSummary, splits: list[str]) -> list[str]:
    """One table per counted field: pairs per value, per split and in total."""
    lines = []
    for name in COUNTED_FIELDS:
        total = summary.total_counts(name)
        rows = [
            [value] + [summary.splits[s].counts[name][value] for s in splits] + [total[value]]
            for value in sorted(total, key=_sort_key)
        ]
        lines += ["", f"### Pairs per {name}", ""] + _table([name, *splits, "total"], rows)
    return lines


def _usage(options: CardOptions) -> list[str]:
    if options.format == WEBDATASET:
        load = f'load_dataset("webdataset", data_files={{"train": "hf://datasets/{options.name}/*.tar"}})'
        note = "Each sample has `json` (the pair record), `pos.png` and `neg.png` (the original shard members)."
    else:
        load = f'load_dataset("{options.name}")'
        note = (
            "`positive` is better than `negative` on `aspect`. `positive`/`negative` hold the original lossless PNGs; "
            f"{', '.join(f'`{n}`' for n in JSON_FIELDS)} are JSON strings."
        )
    return ["## Usage", "", "```python", "from datasets import load_dataset", "", f"ds = {load}", "```", "", note]


def _provenance(summary: DatasetSummary, manifest: dict[str, Any] | None) -> list[str]:
    lines = ["## Provenance", ""]
    versions = ", ".join(f"{v} ({n} pairs)" for v, n in sorted(summary.toolkit_versions.items()))
    lines.append(f"- Records written by toolkit version(s): {versions or 'none'}")
    if manifest is None:
        lines.append("- No `manifest.json` in the shard folder: the resolved config is unknown.")
        return lines
    lines.append(f"- Manifest toolkit version: {manifest.get('toolkit_version')}; config hash `{manifest.get('config_hash')}`")
    lines += ["", "### Dataset versions", ""]
    lines += _table(
        ["version", "config hash", "toolkit", "shards added", "pairs added"],
        [[v["version"], v["config_hash"], v["toolkit_version"], len(v["shards"]), v["nsamples"]] for v in manifest.get("versions", [])],
    )
    config = yaml.safe_dump(manifest.get("config", {}), sort_keys=False, allow_unicode=True).rstrip()
    lines += ["", "### Resolved config", "", "```yaml", config, "```"]
    return lines


def render_card(summary: DatasetSummary, manifest: dict[str, Any] | None, options: CardOptions) -> str:
    """The full README.md text."""
    splits = summary.nonempty_splits()
    body = [f"# {options.name}", "", "Ranked image pairs for label-free quality assessment of AI-generated images, built with pairgen."]
    body += ["", f"![preview]({PREVIEW_NAME})"]
    body += [""] + _usage(options)
    body += ["", "## Splits", ""]
    if options.format == PARQUET:
        body.append(
            f"Split by a SHA-256 hash of the prompt (of `prompt_id` when the prompt is empty), validation fraction "
            f"{options.validation_fraction}: no prompt is in both splits."
        )
    else:
        body.append("The original shards, as one `train` split (re-split by the `prompt` field of the record if needed).")
    body += [""] + _table(["split", "pairs"], [[s, summary.splits[s].rows] for s in splits] + [["total", summary.rows]])
    body += ["", "## Counts"] + counts_tables(summary, splits)
    body += ["", "## Corruption families", ""]
    body += _table(["family", "corruptions"], [[f, ", ".join(sorted(c))] for f, c in sorted(summary.corruptions.items())])
    body += ["", "## Generators", "", "Each distinct generator (model, resolved revision, sampling settings) and the images it made."]
    body += [""] + _table(["generator", "images"], [[f"`{g}`", n] for g, n in sorted(summary.generators.items())])
    body += [""] + _provenance(summary, manifest)
    body += ["", "## Licence", "", f"Released under `{options.license}`. Generated images may also be subject to the licences of the generators listed above."]
    return str(DatasetCard("---\n" + card_metadata(summary, options).to_yaml() + "\n---\n\n" + "\n".join(body) + "\n"))
