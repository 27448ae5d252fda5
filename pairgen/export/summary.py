"""What a dataset folder holds, per split: counts, corruption families, generators, versions.

One pass over the records (no image decoding) feeds the card, the dry-run size estimates, and the
choice of which splits to build (`datasets` refuses to build an empty split).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pairgen.export.rows import iter_samples, split_of

COUNTED_FIELDS = ("aspect", "family", "severity", "corruption")


@dataclass
class SplitSummary:
    rows: int = 0
    nbytes: int = 0  # stored bytes (PNGs + JSON): what the Parquet shards will roughly weigh
    counts: dict[str, Counter] = field(default_factory=lambda: {name: Counter() for name in COUNTED_FIELDS})


@dataclass
class DatasetSummary:
    splits: dict[str, SplitSummary] = field(default_factory=lambda: defaultdict(SplitSummary))
    corruptions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # family -> names
    generators: Counter = field(default_factory=Counter)  # canonical JSON of a generator dict -> pairs
    toolkit_versions: Counter = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return sum(split.rows for split in self.splits.values())

    def nonempty_splits(self) -> list[str]:
        return [name for name, split in sorted(self.splits.items()) if split.rows]

    def total_counts(self, name: str) -> Counter:
        return sum((split.counts[name] for split in self.splits.values()), Counter())


def summarize(directory: str | Path, validation_fraction: float) -> DatasetSummary:
    """Summarize a validated dataset folder as it will be split for export."""
    summary = DatasetSummary()
    for record, sample in iter_samples(directory):
        split = summary.splits[split_of(record, validation_fraction)]
        split.rows += 1
        split.nbytes += sum(len(sample[member]) for member in ("json", "pos.png", "neg.png"))
        for name in COUNTED_FIELDS:
            split.counts[name][str(getattr(record, name))] += 1
        summary.corruptions[record.family].add(record.corruption)
        for generator in (record.generator, record.neg_generator):
            if generator is not None:
                summary.generators[json.dumps(generator, sort_keys=True, ensure_ascii=False)] += 1
        summary.toolkit_versions[record.toolkit_version] += 1
    return summary
