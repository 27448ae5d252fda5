"""`python -m pairgen.validate DIR`: check every shard of a pair dataset, name every problem.

Checks, per shard: a completion marker exists; size, sha256 and sample count match it; every member
is a flat regular file named `{key}.{json|pos.png|neg.png}`; every sample has all three members;
the JSON matches the record schema and its key; both PNGs decode to the recorded sizes; no key appears
twice in the dataset. The manifest,
when present, must list exactly the complete shards with the same digests. `*.tmp` files (left by an
interrupted writer) are reported and ignored. Exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pairgen.shards.format import (
    MANIFEST_NAME,
    SHARD_PATTERN,
    TMP_SUFFIX,
    ShardFormatError,
    check_member_name,
    marker_path,
)
from pairgen.shards.manifest import load_manifest, shard_entry
from pairgen.shards.reader import decode_pair
from pairgen.shards.writer import ShardStats, file_digests


@dataclass
class ValidationReport:
    shards: int = 0
    samples: int = 0
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [f"{self.shards} shard(s), {self.samples} pair(s): " + ("OK" if self.ok else f"{len(self.problems)} problem(s)")]
        for name in ("aspect", "family", "corruption", "severity"):
            if self.counts[name]:
                lines.append(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts[name].items())))
        lines += [f"  ignored: {item}" for item in self.ignored]
        lines += [f"  PROBLEM {item}" for item in self.problems]
        return "\n".join(lines)


def _samples(shard: Path) -> Iterator[dict]:
    """Raw samples of a tar, one at a time (members of a sample are contiguous), names checked."""
    current: dict | None = None
    with tarfile.open(shard, "r:") as tar:
        for info in tar:
            if not info.isfile():
                raise ShardFormatError(f"{shard.name}: member {info.name!r} is not a regular file")
            key, member = check_member_name(info.name, shard.name)
            if current is not None and current["__key__"] != key:
                yield current
                current = None
            if current is None:
                current = {"__key__": key, "__url__": shard.name}
            if member in current:
                raise ShardFormatError(f"{shard.name}: member {info.name!r} appears twice")
            current[member] = tar.extractfile(info).read()
    if current is not None:
        yield current


def _check_members(shard: Path, report: ValidationReport, seen_keys: dict[str, str]) -> int:
    """Check every sample with the reader's own decoder; return the number of valid samples."""
    valid = 0
    try:
        for sample in _samples(shard):
            key = sample["__key__"]
            if key in seen_keys:
                report.problems.append(f"{shard.name}: sample {key}: key also in {seen_keys[key]} (a key must appear once per dataset)")
                continue
            seen_keys[key] = shard.name
            try:
                record = decode_pair(sample).record
            except ShardFormatError as exc:
                report.problems.append(str(exc))
                continue
            for name in ("aspect", "family", "corruption", "severity"):
                report.counts[name][str(getattr(record, name))] += 1
            valid += 1
    except (tarfile.TarError, EOFError) as exc:
        report.problems.append(f"{shard.name}: not a readable tar ({exc})")
    except ShardFormatError as exc:
        report.problems.append(str(exc))
    return valid


def validate_shard(shard: Path, report: ValidationReport, seen_keys: dict[str, str]) -> ShardStats | None:
    report.shards += 1
    marker = marker_path(shard)
    if not marker.is_file():
        report.problems.append(f"{shard.name}: no completion marker {marker.name} (incomplete shard; re-run the job to rebuild it)")
        return None
    try:
        stats = ShardStats.from_file(marker)
    except ShardFormatError as exc:
        report.problems.append(str(exc))
        return None
    size, sha256, _ = file_digests(shard)
    if size != stats.filesize or sha256 != stats.sha256:
        report.problems.append(
            f"{shard.name}: content does not match its marker (size {size} vs {stats.filesize}, "
            f"sha256 {sha256[:12]}… vs {stats.sha256[:12]}…): the file was altered or truncated"
        )
        return None
    count = _check_members(shard, report, seen_keys)
    report.samples += count
    if count != stats.nsamples:
        report.problems.append(f"{shard.name}: {count} valid sample(s), marker says {stats.nsamples}")
    return stats


def _check_manifest(directory: Path, found: dict[str, ShardStats], report: ValidationReport) -> None:
    try:
        manifest = load_manifest(directory)
    except (ShardFormatError, FileNotFoundError) as exc:
        report.problems.append(str(exc))
        return
    listed = {entry["url"]: entry for entry in manifest["shardlist"]}
    for url, entry in listed.items():
        stats = found.get(url)
        if stats is None:
            report.problems.append(f"{MANIFEST_NAME}: lists {url}, which is missing or invalid")
        elif entry != shard_entry(stats):
            report.problems.append(f"{MANIFEST_NAME}: entry for {url} does not match its marker")
    for url in sorted(set(found) - set(listed)):
        report.problems.append(f"{MANIFEST_NAME}: does not list the complete shard {url}")


def validate_dataset(directory: str | Path) -> ValidationReport:
    directory = Path(directory)
    report = ValidationReport()
    if not directory.is_dir():
        report.problems.append(f"{directory}: not a folder")
        return report
    report.ignored = sorted(p.name for p in directory.glob(f"*{TMP_SUFFIX}"))
    shards = sorted(p for p in directory.glob("*.tar") if SHARD_PATTERN.match(p.name))
    strays = sorted(p.name for p in directory.glob("*.tar") if not SHARD_PATTERN.match(p.name))
    report.problems += [f"{name}: not a shard name (expected PREFIX-NNNNNN.tar)" for name in strays]
    for marker in sorted(directory.glob("*.stats.json")):
        if not marker.with_name(marker.name.removesuffix(".stats.json") + ".tar").is_file():
            report.problems.append(f"{marker.name}: completion marker without its shard")
    if not shards:
        report.problems.append(f"{directory}: no shards (*.tar) found")
    found, seen_keys = {}, {}
    for shard in shards:
        stats = validate_shard(shard, report, seen_keys)
        if stats is not None:
            found[shard.name] = stats
    if (directory / MANIFEST_NAME).exists():
        _check_manifest(directory, found, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pairgen.validate", description=__doc__.split("\n")[0])
    parser.add_argument("directory", help="folder with pairs-NNNNNN.tar shards")
    args = parser.parse_args(argv)
    report = validate_dataset(args.directory)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
