"""Reading pair shards with webdataset and safe decoders only.

No member is ever unpickled or `torch.load`ed: `.json` goes through `json`, `.png` through OpenCV,
and any other member is an error. Use `decode_pair` as a stage in your own webdataset pipeline
(the trainer does), or `iter_pairs` for a plain iterator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webdataset as wds

from pairgen.records import PairRecord, RecordError
from pairgen.shards.format import (
    MANIFEST_NAME,
    MEMBERS,
    SHARD_PATTERN,
    ShardFormatError,
    check_member_name,
    decode_png,
    marker_path,
)
from pairgen.shards.manifest import load_manifest


@dataclass(frozen=True)
class Pair:
    """A decoded pair: `pos` is better than `neg` on `record.aspect`."""

    record: PairRecord
    pos: np.ndarray
    neg: np.ndarray
    url: str


def decode_pair(sample: dict) -> Pair:
    """webdataset stage: check and decode one raw sample (members as bytes) into a `Pair`."""
    key, url = sample.get("__key__", "?"), sample.get("__url__", "?")
    where = f"{url}: sample {key}"
    members = sorted(k for k in sample if not k.startswith("__"))
    for member in members:
        check_member_name(f"{key}.{member}", url)
    if members != sorted(MEMBERS):
        missing = sorted(set(MEMBERS) - set(members))
        raise ShardFormatError(f"{where}: missing member(s) {missing}" if missing else f"{where}: unexpected members {members}")
    try:
        record = PairRecord.from_json_bytes(sample["json"])
    except RecordError as exc:
        raise ShardFormatError(f"{where}: {exc}") from None
    if record.key != key:
        raise ShardFormatError(f"{where}: record key {record.key!r} does not match the member names")
    pos = decode_png(sample["pos.png"], f"{where}: pos.png")
    neg = decode_png(sample["neg.png"], f"{where}: neg.png")
    for name, image, size in (("pos", pos, record.pos_size), ("neg", neg, record.neg_size)):
        if (image.shape[1], image.shape[0]) != tuple(size):
            raise ShardFormatError(f"{where}: {name}.png is {image.shape[1]}x{image.shape[0]}, record says {size[0]}x{size[1]}")
    return Pair(record=record, pos=pos, neg=neg, url=url)


def list_shards(directory: str | Path) -> list[Path]:
    """Complete shards of a dataset folder, in order: those in the manifest, else those with markers.

    Temporary `*.tmp` files and shards without a completion marker are never returned.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"shard folder not found: {directory}")
    if (directory / MANIFEST_NAME).is_file():
        shards = []
        for entry in load_manifest(directory)["shardlist"]:
            if not SHARD_PATTERN.match(str(entry.get("url"))):
                raise ShardFormatError(f"{directory / MANIFEST_NAME}: shardlist url {entry.get('url')!r} is not a shard name in this folder")
            shards.append(directory / entry["url"])
    else:
        shards = sorted(p for p in directory.glob("*.tar") if SHARD_PATTERN.match(p.name))
    return [p for p in shards if marker_path(p).is_file()]


def shard_urls(source: str | Path | list[str | Path]) -> list[str]:
    """Local shard paths for webdataset; refuses `pipe:` and remote URLs (which gopen would run or fetch)."""
    paths = list_shards(source) if isinstance(source, (str, Path)) and Path(source).is_dir() else source
    if isinstance(paths, (str, Path)):
        paths = [paths]
    urls = []
    for path in paths:
        text = str(path)
        if ":" in text.split("/", 1)[0]:
            raise ValueError(f"only local shard files are read here, got {text!r}")
        if not Path(text).is_file():
            raise FileNotFoundError(f"shard not found: {text}")
        urls.append(str(Path(text).resolve()))
    return urls


def iter_raw_samples(source: str | Path | list[str | Path]) -> Iterator[dict]:
    """Raw samples (`__key__`, `__url__`, members as the stored bytes), member names checked.

    For consumers that need the exact stored bytes (exports); `iter_pairs` decodes them.
    """
    urls = shard_urls(source)
    if not urls:
        return iter(())
    return iter(
        wds.DataPipeline(
            wds.SimpleShardList(urls),
            wds.tariterators.url_opener,
            wds.tariterators.tar_file_expander,
            refuse_unsafe_members,
            wds.tariterators.group_by_keys,
        )
    )


def iter_pairs(source: str | Path | list[str | Path]) -> Iterator[Pair]:
    """All pairs of a dataset folder (or a list of shard files), in shard order."""
    return map(decode_pair, iter_raw_samples(source))


def refuse_unsafe_members(files: Iterator[dict]) -> Iterator[dict]:
    """webdataset stage between tar expansion and grouping: every member name must be flat and known.

    Checking before grouping means a bad name is refused even when it would form a sample of its own.
    """
    for item in files:
        if item:  # webdataset marks the end of each shard with an empty dict
            check_member_name(item["fname"], item.get("__url__", "?"))
        yield item
