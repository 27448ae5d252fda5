"""Atomic, byte-reproducible shard writing.

The tar goes to a private `*.tar.{pid}.tmp`, is fsynced and renamed; the `*.stats.json` completion marker is written
last the same way. Samples are sorted by key and every tar header field is fixed, so the same pairs
give the same sha256 whatever order they arrived in.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

from pairgen import __version__
from pairgen.records import PairRecord
from pairgen.shards.format import (
    MEMBERS,
    TAR_MTIME,
    TAR_USER,
    TMP_SUFFIX,
    ShardFormatError,
    encode_png,
    marker_path,
)

Sample = dict[str, Any]  # webdataset convention: {"__key__": key, "json": b"...", "pos.png": b"...", ...}


def encode_pair(record: PairRecord, pos: np.ndarray, neg: np.ndarray) -> Sample:
    """A pair as a raw webdataset sample, ready for `write_shard`."""
    for name, image in (("pos", pos), ("neg", neg)):
        height, width = image.shape[:2]
        expected = record.pos_size if name == "pos" else record.neg_size
        if (width, height) != tuple(expected):
            raise ValueError(f"record {record.key}: {name} image is {width}x{height}, record says {expected[0]}x{expected[1]}")
    return {
        "__key__": record.key,
        "json": record.to_json_bytes(),
        "pos.png": encode_png(pos),
        "neg.png": encode_png(neg),
    }


@dataclass(frozen=True)
class ShardStats:
    """What the completion marker says about a finished shard."""

    shard: str
    nsamples: int
    filesize: int
    sha256: str
    md5sum: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    toolkit_version: str = __version__

    def to_json_bytes(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, indent=1) + "\n").encode("utf-8")

    @classmethod
    def from_file(cls, path: Path) -> ShardStats:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            raise ShardFormatError(f"{path}: unreadable completion marker ({exc})") from None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(path: Path) -> Path:
    """`pairs-000003.tar` -> `pairs-000003.tar.{pid}.tmp`: private to this writer.

    Unique per process so that two writers of the same shard (a retried task racing a worker that
    outlived its driver) never interleave bytes in one file; both write the same content and the
    last rename wins whole.
    """
    return path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a private temporary file, fsync, rename: readers see the old file or the whole new one."""
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _check_sample(sample: Sample, shard: str) -> str:
    key = sample.get("__key__")
    members = sorted(k for k in sample if not k.startswith("__"))
    if members != sorted(MEMBERS):
        raise ShardFormatError(f"{shard}: sample {key}: members {members}, expected {sorted(MEMBERS)}")
    return key


def _count(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counters: dict[str, Counter] = {name: Counter() for name in ("aspect", "family", "corruption", "severity")}
    for record in records:
        for name, counter in counters.items():
            counter[str(record[name])] += 1
    return {name: dict(sorted(counter.items())) for name, counter in counters.items()}


def write_shard(directory: str | Path, name: str, samples: Iterable[Sample], dropped: dict[str, int] | None = None) -> ShardStats:
    """Write one complete shard atomically and then its completion marker.

    `samples` may arrive in any order; they are written sorted by key. A failure while writing
    leaves no file under the final name (the partial `.tmp` is removed) and re-raises with the shard
    named. An empty shard is valid and gets a marker too. `dropped` (planned pairs that were not
    built, by reason) is kept in the marker so job stats can be rebuilt from markers alone.
    """
    directory = Path(directory)
    final = directory / name
    tmp = temporary_path(final)
    ordered = sorted(samples, key=lambda s: s["__key__"])
    keys = [_check_sample(s, name) for s in ordered]
    duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)
    if duplicates:
        raise ShardFormatError(f"{name}: duplicate key(s) {duplicates[:5]}; a key must appear once per dataset")
    records = [json.loads(s["json"]) for s in ordered]
    try:
        with open(tmp, "wb") as handle:
            writer = wds.TarWriter(handle, user=TAR_USER, group=TAR_USER, mode=0o444, mtime=TAR_MTIME, encoder=False)
            try:
                for sample in ordered:
                    writer.write(sample)
            finally:
                writer.close()
            handle.flush()
            os.fsync(handle.fileno())
        filesize, sha256, md5sum = file_digests(tmp)
        os.replace(tmp, final)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"writing shard {final} failed: {exc.strerror or exc}") from exc
        raise
    _fsync_directory(directory)
    stats = ShardStats(
        shard=name,
        nsamples=len(ordered),
        filesize=filesize,
        sha256=sha256,
        md5sum=md5sum,
        counts={**_count(records), "dropped": dict(sorted((dropped or {}).items()))},
    )
    write_bytes_atomic(marker_path(final), stats.to_json_bytes())
    return stats


def file_digests(path: Path) -> tuple[int, str, str]:
    """(size, sha256, md5) of a file, streamed."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
            md5.update(block)
            size += len(block)
    return size, sha.hexdigest(), md5.hexdigest()


def is_complete(shard_path: Path) -> bool:
    """A shard is complete when its marker exists and its size and sha256 match the marker."""
    marker = marker_path(shard_path)
    if not (shard_path.is_file() and marker.is_file()):
        return False
    try:
        stats = ShardStats.from_file(marker)
    except ShardFormatError:
        return False
    size, sha256, _ = file_digests(shard_path)
    return size == stats.filesize and sha256 == stats.sha256
