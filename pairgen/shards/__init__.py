"""The pair shard format: WebDataset tars with `{key}.json`, `{key}.pos.png`, `{key}.neg.png`."""

from pairgen.shards.format import (
    MANIFEST_NAME,
    MEMBERS,
    RESOLVED_CONFIG_NAME,
    ShardFormatError,
    decode_png,
    encode_png,
    marker_path,
    shard_name,
)
from pairgen.shards.manifest import build_manifest, load_manifest, write_manifest
from pairgen.shards.reader import Pair, decode_pair, iter_pairs, iter_raw_samples, list_shards, refuse_unsafe_members, shard_urls
from pairgen.shards.writer import ShardStats, encode_pair, is_complete, write_bytes_atomic, write_shard

__all__ = [
    "refuse_unsafe_members",
    "MANIFEST_NAME",
    "MEMBERS",
    "RESOLVED_CONFIG_NAME",
    "Pair",
    "ShardFormatError",
    "ShardStats",
    "build_manifest",
    "decode_pair",
    "decode_png",
    "encode_pair",
    "encode_png",
    "is_complete",
    "iter_pairs",
    "iter_raw_samples",
    "list_shards",
    "load_manifest",
    "marker_path",
    "shard_name",
    "shard_urls",
    "write_bytes_atomic",
    "write_manifest",
    "write_shard",
]
