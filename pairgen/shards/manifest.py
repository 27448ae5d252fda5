"""The dataset manifest: a wids shard index plus provenance and dataset versions.

`manifest.json` is a valid `wids-shard-index-v1` (so `wids.ShardListDataset("manifest.json")` opens
the dataset) and also records the toolkit version, the resolved config and, per build, which shards
it added (incremental builds append a version).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pairgen import __version__
from pairgen.shards.format import MANIFEST_NAME, ShardFormatError
from pairgen.shards.writer import ShardStats, write_bytes_atomic

WIDS_KIND = "wids-shard-index-v1"


def shard_entry(stats: ShardStats) -> dict[str, Any]:
    """The wids shardlist entry of one finished shard (from its `ShardStats`)."""
    return {
        "url": stats.shard,
        "nsamples": stats.nsamples,
        "filesize": stats.filesize,
        "md5sum": stats.md5sum,
        "sha256": stats.sha256,
    }


def build_manifest(
    *,
    name: str,
    shard_stats: list[ShardStats],
    config: dict[str, Any],
    config_hash: str,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A manifest listing `shard_stats` (sorted by name); appends a dataset version when shards changed."""
    shardlist = [shard_entry(s) for s in sorted(shard_stats, key=lambda s: s.shard)]
    versions = list(previous.get("versions", [])) if previous else []
    known = {url for version in versions for url in version["shards"]}
    added = [entry["url"] for entry in shardlist if entry["url"] not in known]
    if added or not versions:
        versions.append(
            {
                "version": len(versions) + 1,
                "config_hash": config_hash,
                "toolkit_version": __version__,
                "shards": added,
                "nsamples": sum(e["nsamples"] for e in shardlist if e["url"] in added),
            }
        )
    return {
        "__kind__": WIDS_KIND,
        "wids_version": 1,
        "name": name,
        "shardlist": shardlist,
        "nsamples": sum(e["nsamples"] for e in shardlist),
        "toolkit_version": __version__,
        "config_hash": config_hash,
        "config": config,
        "versions": versions,
    }


def load_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {directory}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardFormatError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("__kind__") != WIDS_KIND or not isinstance(manifest.get("shardlist"), list):
        raise ShardFormatError(f"{path}: expected a {WIDS_KIND} with a 'shardlist', got kind {manifest.get('__kind__')!r}")
    return manifest


def write_manifest(directory: str | Path, manifest: dict[str, Any]) -> Path:
    """Write `manifest.json` atomically (it is rewritten after every build)."""
    path = Path(directory) / MANIFEST_NAME
    write_bytes_atomic(path, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return path
