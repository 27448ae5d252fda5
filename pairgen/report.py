"""After a build: `stats.json`, a short `stats.md`, and `preview.png` (a labelled contact sheet).

Counts come from the shards' completion markers, so they describe the whole dataset whether its
shards were built in this run, an earlier one, or both; timings describe this run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pairgen.shards import Pair, ShardStats, encode_png, iter_pairs, list_shards, marker_path, write_bytes_atomic

COUNTED = ("aspect", "family", "corruption", "severity", "dropped")


def dataset_counts(directory: Path, subsets: dict[str, str]) -> dict[str, Any]:
    """Totals over every complete shard: pairs by generator/collection and by each record field."""
    totals: dict[str, Counter] = defaultdict(Counter)
    pairs = 0
    for shard in list_shards(directory):
        stats = ShardStats.from_file(marker_path(shard))
        pairs += stats.nsamples
        totals["generator"][subsets.get(shard.name, "?")] += stats.nsamples
        for name in COUNTED:
            totals[name].update(stats.counts.get(name, {}))
    return {"pairs": pairs, **{name: dict(sorted(totals[name].items())) for name in ("generator", *COUNTED)}}


def stage_rates(seconds: dict[str, float], pairs_built: int) -> dict[str, dict[str, float]]:
    """Busy seconds per stage (summed over workers) and the pairs/s each stage would sustain alone
    (None for a stage that did no measurable work, e.g. `generate` when every image already exists)."""
    rates = {}
    for stage, total in sorted(seconds.items()):
        busy = round(total, 3)
        rates[stage] = {"busy_seconds": busy, "pairs_per_second": round(pairs_built / busy, 2) if busy > 0 else None}
    return rates


def write_stats(directory: Path, stats: dict[str, Any]) -> None:
    write_bytes_atomic(directory / "stats.json", (json.dumps(stats, indent=1) + "\n").encode("utf-8"))
    write_bytes_atomic(directory / "stats.md", render_markdown(stats).encode("utf-8"))


def render_markdown(stats: dict[str, Any]) -> str:
    counts = stats["counts"]
    lines = [
        f"# Pair dataset `{stats['name']}`",
        "",
        f"- pairs: **{counts['pairs']}** in {stats['shards']['total']} shard(s) "
        f"({stats['shards']['built']} built this run, {stats['shards']['skipped']} already complete)",
        f"- wall time this run: {stats['wall_seconds']:.1f} s; {stats['pairs_per_second'] or 0:.2f} pairs/s end to end",
        f"- config hash: `{stats['config_hash']}`, toolkit {stats['toolkit_version']}",
        "",
    ]
    for name in ("generator", "aspect", "family", "severity", "corruption", "dropped"):
        if counts.get(name):
            lines += [f"## {name}", "", "| value | pairs |", "| --- | ---: |"]
            lines += [f"| {k} | {v} |" for k, v in counts[name].items()]
            lines.append("")
    if stats.get("stages"):
        lines += ["## stages (this run)", "", "| stage | busy s | pairs/s |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['busy_seconds']} | {v['pairs_per_second']} |" for k, v in stats["stages"].items()]
        lines.append("")
    return "\n".join(lines)


def sample_for_preview(directory: Path, count: int, scan_limit: int = 2000) -> list[Pair]:
    """Up to `count` pairs, round-robin over (aspect, corruption) so every kind shows up."""
    groups: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for index, pair in enumerate(iter_pairs(directory)):
        if index >= scan_limit:
            break
        group = groups[(pair.record.aspect, pair.record.corruption)]
        if len(group) < count:
            group.append(pair)
    chosen: list[Pair] = []
    queues = [groups[k] for k in sorted(groups)]
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    scale = size / max(image.shape[:2])
    resized = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 255, np.uint8)
    top, left = (size - resized.shape[0]) // 2, (size - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def _label(width: int, lines: list[str]) -> np.ndarray:
    panel = np.full((16 * len(lines) + 6, width, 3), 255, np.uint8)
    for row, text in enumerate(lines):
        cv2.putText(panel, text, (4, 16 * row + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (20, 20, 20), 1, cv2.LINE_AA)
    return panel


def render_contact_sheet(pairs: list[Pair], thumb: int = 160, columns: int = 3) -> np.ndarray:
    """Tiles of `positive | negative` with aspect, corruption, severity and the prompt's start."""
    tiles = []
    for pair in pairs:
        record = pair.record
        images = np.concatenate([_fit(pair.pos, thumb), np.full((thumb, 4, 3), 255, np.uint8), _fit(pair.neg, thumb)], axis=1)
        neg_prompt = f"neg: {record.neg_prompt[:38]}" if record.neg_prompt else ""
        lines = [f"{record.aspect} | {record.corruption[:28]} | sev {record.severity}", f"{record.prompt[:44]}", neg_prompt]
        tiles.append(np.concatenate([images, _label(images.shape[1], lines)], axis=0))
    if not tiles:
        return _label(2 * thumb + 4, ["no pairs"])
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles]
    tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % columns)
    rows = [np.concatenate([np.pad(t, ((6, 6), (6, 6), (0, 0)), constant_values=235) for t in tiles[i : i + columns]], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def write_preview(directory: Path, count: int) -> Path:
    sheet = render_contact_sheet(sample_for_preview(directory, count))
    path = directory / "preview.png"
    write_bytes_atomic(path, encode_png(sheet))
    return path
