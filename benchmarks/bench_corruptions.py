"""Speed of every corruption on a 512x512 photo, against the reference ImageNet-C implementation.

    .venv/bin/pip install --no-deps imagecorruptions-imaug && .venv/bin/pip install numba
    .venv/bin/python benchmarks/bench_corruptions.py [--repeats 5] [--json out.json]

For each corruption: the median wall time of `apply` over `repeats` x severities 1..5 (each call
a fresh seed). For the types the reference `imagecorruptions` package also has, its `corrupt()`
is timed in the same loop, interleaved with ours, so both see the same machine load. Lossless PNG
encoding of the same image is the bar no corruption should exceed: OpenCV at zlib level 3 (what the
shard writer uses) and Pillow's default (level 6). Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image
from skimage import data

from pairgen.corruptions import get_corruption, list_corruptions

# ours -> reference name. The first ten are the ImageNet-C types implemented from the same level
# tables; the others are the same distortion type with KADID's levels (noted as "analogue").
SAME_TYPE = {
    "shot_noise": "shot_noise",
    "speckle_noise": "speckle_noise",
    "defocus_blur": "defocus_blur",
    "glass_blur": "glass_blur",
    "zoom_blur": "zoom_blur",
    "fog": "fog",
    "snow": "snow",
    "spatter": "spatter",
    "elastic_transform": "elastic_transform",
    "saturate": "saturate",
}
ANALOGUE = {
    "white_noise": "gaussian_noise",
    "impulse_noise": "impulse_noise",
    "gaussian_blur": "gaussian_blur",
    "motion_blur": "motion_blur",
    "jpeg": "jpeg_compression",
    "pixelate": "pixelate",
    "contrast_change": "contrast",
    "brighten": "brightness",
}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def png_pillow(image: np.ndarray) -> None:
    Image.fromarray(image).save(io.BytesIO(), format="PNG")


def png_opencv(image: np.ndarray) -> None:
    cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])


def geometric_mean(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="", help="also write the raw figures here")
    args = parser.parse_args()

    try:
        from imagecorruptions import corrupt
    except ImportError:
        corrupt = None
        print("imagecorruptions not installed: reference columns left empty (see the module docstring)")

    image = cv2.resize(data.astronaut(), (512, 512), interpolation=cv2.INTER_AREA)
    pairs = {**SAME_TYPE, **ANALOGUE}
    rows = []
    png: dict[str, list[float]] = {"pillow": [], "opencv": []}
    for name in list_corruptions():
        corruption = get_corruption(name)
        reference = pairs.get(name) if corrupt is not None else None
        ours, theirs = [], []
        for severity in range(1, 6):  # warm-up: caches, numba JIT in the reference
            corruption.apply(image, severity, np.random.default_rng(0))
            if reference:
                corrupt(image, severity=severity, corruption_name=reference)
        for repeat in range(args.repeats):
            png["pillow"].append(timed(lambda: png_pillow(image)))
            for severity in range(1, 6):
                rng = np.random.default_rng(repeat)
                ours.append(timed(lambda: corruption.apply(image, severity, rng)))
                png["opencv"].append(timed(lambda: png_opencv(image)))  # interleaved: same machine load
                if reference:
                    theirs.append(timed(lambda: corrupt(image, severity=severity, corruption_name=reference)))
        row = {"name": name, "family": corruption.family, "ms": statistics.median(ours)}
        if reference:
            row.update(reference=reference, reference_ms=statistics.median(theirs), kind="same" if name in SAME_TYPE else "analogue")
            row["speedup"] = row["reference_ms"] / row["ms"]
        rows.append(row)

    png = {key: statistics.median(values) for key, values in png.items()}
    same = [r["speedup"] for r in rows if r.get("kind") == "same"]
    every = [r["speedup"] for r in rows if "speedup" in r]

    print(f"512x512 RGB, median of {args.repeats} x severities 1..5; {platform.machine()}, {os.cpu_count()} CPUs, "
          f"{cv2.getNumThreads()} OpenCV threads, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| corruption | family | ours ms | reference | reference ms | speed-up |")
    print("|---|---|---:|---|---:|---:|")
    for r in rows:
        ref = f"{r['reference']}{' (analogue)' if r.get('kind') == 'analogue' else ''}" if "reference" in r else ""
        ref_ms = f"{r['reference_ms']:.1f}" if "reference" in r else ""
        speed = f"{r['speedup']:.1f}x" if "speedup" in r else ""
        print(f"| {r['name']} | {r['family']} | {r['ms']:.1f} | {ref} | {ref_ms} | {speed} |")
    print(f"\nPNG encoding (lossless) of the same image: OpenCV level 3 (shard writer) {png['opencv']:.1f} ms, Pillow default {png['pillow']:.1f} ms")
    slowest = max(rows, key=lambda r: r["ms"])
    print(f"slowest corruption: {slowest['name']} {slowest['ms']:.1f} ms; "
          f"slower than Pillow PNG: {[r['name'] for r in rows if r['ms'] > png['pillow']] or 'none'}; "
          f"slower than OpenCV PNG: {[r['name'] for r in rows if r['ms'] > png['opencv']] or 'none'}")
    if same:
        print(f"geometric-mean speed-up: {geometric_mean(same):.1f}x over the {len(same)} ImageNet-C types, "
              f"{geometric_mean(every):.1f}x over all {len(every)} shared types (incl. analogues)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": rows, "png_ms": png}, handle, indent=1)


if __name__ == "__main__":
    main()
