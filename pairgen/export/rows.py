"""Pair records <-> `datasets` rows: flat metadata columns plus the stored PNG bytes.

Rows carry the shard's PNG bytes unchanged (`{"bytes": ..., "path": None}`), so the export is
byte-for-byte lossless. Scalar record fields become one column each; the open-ended dicts (`params`,
`generator`, `neg_generator`, `extra`) become canonical JSON strings, because their keys vary
between records and a Parquet schema cannot.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Features, Image, Value

from pairgen.records import PairRecord
from pairgen.shards import iter_raw_samples

Sample = dict[str, Any]
TRAIN, VALIDATION = "train", "validation"
JSON_FIELDS = ("params", "generator", "neg_generator", "extra")

FEATURES = Features(
    {
        "key": Value("string"),
        "positive": Image(),
        "negative": Image(),
        "aspect": Value("string"),
        "family": Value("string"),
        "corruption": Value("string"),
        "severity": Value("int32"),
        "prompt": Value("string"),
        "neg_prompt": Value("string"),
        "prompt_id": Value("string"),
        "source": Value("string"),
        "seed": Value("int64"),
        "pos_width": Value("int32"),
        "pos_height": Value("int32"),
        "neg_width": Value("int32"),
        "neg_height": Value("int32"),
        "generator": Value("string"),
        "neg_generator": Value("string"),
        "params": Value("string"),
        "extra": Value("string"),
        "config_hash": Value("string"),
        "toolkit_version": Value("string"),
        "schema_version": Value("int32"),
    }
)


def iter_samples(directory: str | Path) -> Iterator[tuple[PairRecord, Sample]]:
    """Each pair's record with its raw members (PNG bytes as stored), in shard order.

    `pairgen.shards.iter_pairs` decodes the PNGs, which would lose the stored bytes. Call this on a
    folder that `validate_dataset` accepted: it has already decoded and checked every image, so
    decoding again here would only double the export time.
    """
    for sample in iter_raw_samples(directory):
        yield PairRecord.from_json_bytes(sample["json"]), sample


def split_of(record: PairRecord, validation_fraction: float) -> str:
    """`train` or `validation`, from a hash of `record.split_group` (the prompt, or the source image
    of a pair without one): deterministic, and no prompt or image lands in both splits."""
    group = record.split_group
    position = int.from_bytes(hashlib.sha256(group.encode("utf-8")).digest()[:8], "big") / 2**64
    return VALIDATION if position < validation_fraction else TRAIN


def _to_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def to_row(record: PairRecord, sample: Sample) -> dict[str, Any]:
    """One `FEATURES` row: the record flattened, the PNG bytes as stored."""
    row = {
        "key": record.key,
        "positive": {"bytes": sample["pos.png"], "path": None},
        "negative": {"bytes": sample["neg.png"], "path": None},
        "pos_width": record.pos_size[0],
        "pos_height": record.pos_size[1],
        "neg_width": record.neg_size[0],
        "neg_height": record.neg_size[1],
    }
    row |= {name: _to_json(getattr(record, name)) for name in JSON_FIELDS}
    row |= {name: getattr(record, name) for name in FEATURES if name not in row}
    return row


def record_from_row(row: dict[str, Any]) -> PairRecord:
    """The `PairRecord` a row was made from (for consumers of the exported dataset)."""
    data = {name: row[name] for name in FEATURES if name not in ("positive", "negative")}
    for name in JSON_FIELDS:
        data[name] = None if data[name] is None else json.loads(data[name])
    data["pos_size"] = (data.pop("pos_width"), data.pop("pos_height"))
    data["neg_size"] = (data.pop("neg_width"), data.pop("neg_height"))
    return PairRecord.from_dict(data)


def split_rows(directory: str, split: str, validation_fraction: float) -> Iterator[dict[str, Any]]:
    """`Dataset.from_generator` source: the rows of one split, streamed from the shards."""
    for record, sample in iter_samples(directory):
        if split_of(record, validation_fraction) == split:
            yield to_row(record, sample)
