"""`python -m pairgen.validate DIR`: check every shard of a pair dataset, name every problem.

Checks, per shard: a completion marker exists; size, sha256 and sample count match it; every member
is a flat regular file named `{key}.{json|pos.png|neg.png}`; every sample has all three members;
the JSON matches the record schema and its key; both PNGs decode to the recorded sizes. The manifest,
when present, must list exactly the complete shards with the same digests. `*.tmp` files (left by an
interrupted writer) are reported and ignored. Exits 1 on any problem.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pairgen.records import PairRecord, RecordError
from pairgen.shards.format import (
    MANIFEST_NAME,
    MEMBERS,
    SHARD_PATTERN,
    TMP_SUFFIX,
    ShardFormatError,
    check_member_name,
    decode_png,
    marker_path,
)
from pairgen.shards.manifest import load_manifest, shard_entry
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


def _check_members(shard: Path, report: ValidationReport, check_images: bool) -> int:
    """Check the tar's contents; return the number of complete samples."""
    samples: dict[str, dict[str, bytes]] = defaultdict(dict)
    try:
        with tarfile.open(shard, "r:") as tar:
            for info in tar:
                where = shard.name
                if not info.isfile():
                    report.problems.append(f"{where}: member {info.name!r} is not a regular file")
                    continue
                key, member = check_member_name(info.name, where)
                if member in samples[key]:
                    raise ShardFormatError(f"{where}: member {info.name!r} appears twice")
                samples[key][member] = tar.extractfile(info).read()
    except (tarfile.TarError, EOFError) as exc:
        report.problems.append(f"{shard.name}: not a readable tar ({exc})")
        return 0
    except ShardFormatError as exc:
        report.problems.append(str(exc))
        return 0
    complete = 0
    for key, members in samples.items():
        where = f"{shard.name}: sample {key}"
        missing = sorted(set(MEMBERS) - set(members))
        if missing:
            report.problems.append(f"{where}: missing member(s) {missing}")
            continue
        try:
            record = PairRecord.from_json_bytes(members["json"])
        except RecordError as exc:
            report.problems.append(f"{where}: {exc}")
            continue
        if record.key != key:
            report.problems.append(f"{where}: record key {record.key!r} does not match the member names")
            continue
        if check_images:
            try:
                for name, size in (("pos.png", record.pos_size), ("neg.png", record.neg_size)):
                    image = decode_png(members[name], f"{where}: {name}")
                    if (image.shape[1], image.shape[0]) != tuple(size):
                        raise ShardFormatError(f"{where}: {name} is {image.shape[1]}x{image.shape[0]}, record says {size[0]}x{size[1]}")
            except ShardFormatError as exc:
                report.problems.append(str(exc))
                continue
        for name in ("aspect", "family", "corruption", "severity"):
            report.counts[name][str(getattr(record, name))] += 1
        complete += 1
    return complete


def validate_shard(shard: Path, report: ValidationReport, check_images: bool = True) -> ShardStats | None:
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
    count = _check_members(shard, report, check_images)
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


def validate_dataset(directory: str | Path, check_images: bool = True) -> ValidationReport:
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
    found = {}
    for shard in shards:
        stats = validate_shard(shard, report, check_images)
        if stats is not None:
            found[shard.name] = stats
    if (directory / MANIFEST_NAME).exists():
        _check_manifest(directory, found, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pairgen.validate", description=__doc__.split("\n")[0])
    parser.add_argument("directory", help="folder with pairs-NNNNNN.tar shards")
    parser.add_argument("--skip-images", action="store_true", help="do not decode PNGs (faster)")
    args = parser.parse_args(argv)
    report = validate_dataset(args.directory, check_images=not args.skip_images)
    print(report.summary())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
