"""Pair shards -> training batches with webdataset, safe decoders and the backbone's own processor.

Training streams resample shards (each DDP rank and loader worker draws with its own deterministic
seed), so every rank gets an endless stream and the same number of batches per step count. Held-out
pairs are chosen by key (a stable hash), never by shard, so they never enter training whatever the
shard layout. Decoding goes through `pairgen.shards.decode_pair` (JSON and PNG only, no pickle).
With `on_error: skip`, corrupt shards and samples are skipped and each batch reports how many.
"""

from __future__ import annotations

import fnmatch
import random
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import webdataset as wds
from torch import Tensor

from pairgen.config_base import digest
from pairgen.records import PairRecord, RecordError
from pairgen.shards import Pair, ShardFormatError, ShardStats, decode_pair, marker_path, shard_urls
from trainer.config import DataConfig
from trainer.instructions import conversations_for_pair
from trainer.losses import ASPECT_INDEX


class DatasetError(ValueError):
    """The dataset cannot feed training (empty, or nothing left after the held-out split)."""


@dataclass
class PairBatch:
    """`inputs` holds 2B items, positives first: (pos, prompt) then (neg, neg_prompt or prompt)."""

    inputs: dict[str, Tensor]
    aspect: Tensor
    text_side: Tensor
    """[B] bool: the pair is a text-side alignment pair (one image, its prompt against a perturbed one)."""
    keys: list[str]
    skipped: int = 0

    def to(self, device: torch.device) -> PairBatch:
        inputs = {k: v.to(device, non_blocking=True) for k, v in self.inputs.items()}
        return PairBatch(inputs, self.aspect.to(device), self.text_side.to(device), self.keys, self.skipped)

    def __len__(self) -> int:
        return len(self.keys)


def is_heldout(group: str, percent: float) -> bool:
    """Whether a split group (`PairRecord.split_group`: the prompt, or the source image of a pair
    without one) is held out. Whole groups are held out so that sibling pairs of one prompt never
    sit on both sides: held-out accuracy then measures generalisation to unseen prompts."""
    return int(digest(group, size=4), 16) % 10_000 < percent * 100


def _record_of(sample: dict) -> PairRecord | None:
    """The record of a raw sample, read from its JSON before any image is decoded; None if broken
    (the decode stage reports it under the error policy)."""
    try:
        return PairRecord.from_json_bytes(sample["json"])
    except (KeyError, RecordError):
        return None


def _is_heldout_sample(sample: dict, config: DataConfig, record: PairRecord | None) -> bool:
    return is_heldout(record.split_group if record else sample["__key__"], config.heldout_percent)


def _for_training(sample: dict, config: DataConfig) -> bool:
    return not _is_heldout_sample(sample, config, _record_of(sample))


def _for_selection(sample: dict, config: DataConfig) -> bool:
    """Held out, and not left out of model selection by `DataConfig.heldout_exclude`."""
    record = _record_of(sample)
    if not _is_heldout_sample(sample, config, record):
        return False
    return record is None or not any(fnmatch.fnmatchcase(record.corruption, pattern) for pattern in config.heldout_exclude)


def resolve_shards(shards: str | list[str]) -> tuple[list[str], int]:
    """Shard paths and their total pair count (from completion markers, else the tar headers)."""
    urls = shard_urls(shards)
    if not urls:
        raise DatasetError(f"empty dataset: no complete shards in {shards} (a shard counts once its .stats.json marker exists)")
    total = sum(_count_pairs(Path(url)) for url in urls)
    if total == 0:
        raise DatasetError(f"empty dataset: {len(urls)} shard(s) in {shards} hold no pairs")
    return urls, total


def _count_pairs(path: Path) -> int:
    marker = marker_path(path)
    if marker.is_file():
        return ShardStats.from_file(marker).nsamples
    try:
        with tarfile.open(path) as tar:
            return len({name.split(".", 1)[0] for name in tar.getnames()})
    except (tarfile.TarError, OSError) as exc:
        raise ShardFormatError(f"{path}: not a readable tar ({exc})") from None


@dataclass
class ErrorPolicy:
    """Raise with the shard named, or count and skip. Lives inside each loader worker."""

    skip: bool
    count: int = 0

    def handle(self, exn: Exception) -> bool:
        if not self.skip:
            if isinstance(exn, ShardFormatError):
                raise exn
            raise ShardFormatError(f"corrupt or truncated shard: {' '.join(str(a) for a in exn.args if a is not None)}") from exn
        self.count += 1
        return True

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


@dataclass
class PairBatcher:
    """Stacks decoded pairs into `PairBatch`es; runs the processor in the loader worker."""

    processor: Any
    batch_size: int
    errors: ErrorPolicy
    partial: bool = False

    def __call__(self, pairs: Iterator[Pair]) -> Iterator[PairBatch]:
        buffer: list[Pair] = []
        for pair in pairs:
            buffer.append(pair)
            if len(buffer) == self.batch_size:
                yield self.collate(buffer)
                buffer = []
        if buffer and self.partial:
            yield self.collate(buffer)

    def collate(self, pairs: list[Pair]) -> PairBatch:
        images = [p.pos for p in pairs] + [p.neg for p in pairs]
        prompts = [p.record.prompt for p in pairs] + [p.record.neg_text for p in pairs]
        aspect = torch.tensor([ASPECT_INDEX[p.record.aspect] for p in pairs])
        text_side = torch.tensor([p.record.neg_prompt is not None for p in pairs])
        return PairBatch(self.processor(images, prompts), aspect, text_side, [p.record.key for p in pairs], self.errors.take())


@dataclass
class ConversationBatcher(PairBatcher):
    """Instruction-tuning batches: the conversations of `batch_size` pairs, with LM labels."""

    seed: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def collate(self, pairs: list[Pair]) -> dict[str, Any]:
        conversations = [c for p in pairs for c in conversations_for_pair(p, self.rng)]
        return {"inputs": self.processor.conversations(conversations), "skipped": self.errors.take()}


def _hopeless_after(total: int) -> int:
    """Samples skipped in a row after which an endless (resampled) stream of `total` pairs can never
    yield one: every pair has been seen several times over."""
    return 4 * total + 100


def _decode(errors: ErrorPolicy, total: int) -> Callable[[Iterator[dict]], Iterator[Pair]]:
    """Safe decoding; when skipping, a stream in which every sample fails is an error, not a hang."""

    def stage(samples: Iterator[dict]) -> Iterator[Pair]:
        failed_in_a_row = 0
        for sample in samples:
            try:
                pair = decode_pair(sample)
            except ShardFormatError as exc:
                errors.handle(exc)
                failed_in_a_row += 1
                if failed_in_a_row > _hopeless_after(total):
                    raise DatasetError(f"every pair fails to decode (skipped {failed_in_a_row} in a row); last error: {exc}") from None
                continue
            failed_in_a_row = 0
            yield pair

    return stage


def _select(keep: Callable[[dict], bool], limit: int | None, total: int) -> Callable[[Iterator[dict]], Iterator[dict]]:
    """Filter raw samples before decoding; an endless (training) stream that rejects everything is an
    error, not a hang."""

    def stage(samples: Iterator[dict]) -> Iterator[dict]:
        kept = rejected_in_a_row = 0
        for sample in samples:
            if keep(sample):
                rejected_in_a_row = 0
                kept += 1
                yield sample
                if limit is not None and kept >= limit:
                    return
            else:
                rejected_in_a_row += 1
                if rejected_in_a_row > _hopeless_after(total):
                    raise DatasetError(f"no training pairs: all {total} pairs fall in the held-out split; lower data.heldout_percent")

    return stage


def _loader(stages: list[Any], config: DataConfig) -> wds.WebLoader:
    return wds.WebLoader(wds.DataPipeline(*stages), batch_size=None, num_workers=config.num_workers,
                         persistent_workers=config.num_workers > 0)


def train_batches(config: DataConfig, batcher: PairBatcher, seed: int) -> wds.WebLoader:
    """An endless stream of training batches (held-out keys excluded)."""
    urls, total = resolve_shards(config.shards)
    errors = batcher.errors
    if config.resampled:
        source = [wds.ResampledShards(urls, seed=seed, deterministic=True)]
    else:  # shards shuffled once (seeded), split across ranks and workers, repeated
        ranks = torch.distributed.get_world_size() if torch.distributed.is_available() and torch.distributed.is_initialized() else 1
        if len(urls) < ranks * max(1, config.num_workers):
            raise DatasetError(
                f"data.resampled: false needs at least one shard per rank and loader worker ({ranks} x "
                f"{max(1, config.num_workers)}), got {len(urls)} shard(s); use resampled: true or write smaller shards"
            )
        source = [wds.SimpleShardList(urls, seed=seed), wds.split_by_node, wds.split_by_worker]
    stages = [
        *source,
        wds.tarfile_to_samples(handler=errors.handle),
        _select(lambda sample: _for_training(sample, config), None, total),
        wds.shuffle(config.shuffle_buffer, initial=min(config.shuffle_buffer, 64), seed=seed),
        _decode(errors, total),
        batcher,
    ]
    loader = _loader(stages, config)
    return loader if config.resampled else loader.repeat()


def heldout_batches(config: DataConfig, batcher: PairBatcher, world_size: int = 1) -> wds.WebLoader:
    """The held-out pairs, in a fixed order, split across ranks (at most `heldout_max_pairs` in all)."""
    urls, total = resolve_shards(config.shards)
    batcher.partial = True
    stages = [
        wds.SimpleShardList(urls),
        wds.split_by_node,
        wds.split_by_worker,
        wds.tarfile_to_samples(handler=batcher.errors.handle),
        _select(lambda sample: _for_selection(sample, config), max(1, config.heldout_max_pairs // world_size), total),
        _decode(batcher.errors, total),
        batcher,
    ]
    return _loader(stages, config)
